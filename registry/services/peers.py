"""Peers and percentiles: who a label is ranked against (its current measured peers of the
same suite, task, phase, hardware class and size class) and the share of them it beats."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import accumulate
from typing import Any

from sqlalchemy import Float, Integer, String, and_, bindparam, case, func, true, tuple_
from sqlalchemy import select as core_select
from sqlmodel import Session

from registry.db import array_rows, read_mappings
from registry.models import Label, PeerBin
from registry.services.standings import PEER_GROUP, bin_floor, bin_of


def peers_of(
    columns: Any,
    *,
    suite: Any,
    task: Any,
    phase: Any,
    hardware_class: Any,
    size_class: Any,
    label_id: Any,
) -> Any:
    """Who a label is ranked against: the current measured labels of its suite, task, phase,
    hardware class and size class, itself excepted (``ix_labels_peers``). ``columns``:
    the ``.c`` of ``labels`` or of a selection of its columns; the others: values or bind
    parameters. ``label_id`` None: the caller's own condition leaves the label out (a strict
    comparison with its own figure), and the count reads the index alone (an index-only scan
    of ``ix_labels_peers``, which does not hold the id: comparing it read a row from the table
    for each peer counted)."""
    excepted = () if label_id is None else (columns.id != label_id,)
    return and_(
        columns.task == task,
        columns.phase == phase,
        columns.suite == suite,
        columns.hardware_class == hardware_class,
        columns.size_class == size_class,
        # bare booleans: the predicate of the partial index ix_labels_peers
        columns.current,
        columns.measured,
        columns.standard_workload,
        *excepted,
    )


@cache
def _peer_counts() -> Any:
    """Peers and worse peers in one statement (built once, so its compiled form is reused)."""
    labels = Label.__table__  # type: ignore[attr-defined]
    peers = peers_of(
        labels.c,
        suite=bindparam("suite"),
        task=bindparam("task"),
        phase=bindparam("phase"),
        hardware_class=bindparam("hardware_class"),
        size_class=bindparam("size_class"),
        label_id=bindparam("id"),
    )
    worse = labels.c.energy_ci95_high_wh > bindparam("value")
    return core_select(func.count(), func.count().filter(worse)).select_from(labels).where(peers)


def peer_percentile_from_scratch(session: Session, label: Label) -> float | None:
    """:func:`peer_percentile` counted over the peers themselves (two counts over
    ``ix_labels_peers``, whose cost grows with the peer group): the reference the maintained
    bins are checked against."""
    total, worse = (
        session.connection()
        .execute(
            _peer_counts(),
            {
                "suite": label.suite,
                "task": label.task,
                "phase": label.phase,
                "hardware_class": label.hardware_class,
                "size_class": label.size_class,
                "id": label.id,
                "value": label.energy_ci95_high_wh,
            },
        )
        .one()
    )
    return percentile_of(total, worse)


MIN_PEERS = 5
"""Fewer current measured peers than this: no percentile is shown, only "too few peers (n)"
(a share of two or three labels says little; docs/methodology.md)."""


@dataclass(frozen=True)
class PeerRank:
    """A label among its current measured peers (itself excepted)."""

    peers: int
    worse: int
    """Peers whose graded figure is worse (higher) than the label's."""

    @property
    def percentile(self) -> float | None:
        """The share of worse peers (0-100, one decimal); None without peers."""
        return percentile_of(self.peers, self.worse)

    @property
    def shown(self) -> float | None:
        """:attr:`percentile` from :data:`MIN_PEERS` peers on; None below."""
        return self.percentile if self.peers >= MIN_PEERS else None


def peer_percentile(
    session: Session, label: Label, pending: Iterable[Mapping[str, Any]] = ()
) -> float | None:
    """Share (0-100) of the current measured peers (same suite, task, phase, hardware class and
    size class) whose graded figure is worse (higher) than this label's; None without peers
    (whatever their number: :class:`PeerRank` says what is shown)."""
    rank = peer_rank(session, label, pending)
    return rank.percentile if rank is not None else None


def peer_rank(
    session: Session, label: Label, pending: Iterable[Mapping[str, Any]] = ()
) -> PeerRank | None:
    """The label's peers and worse peers; None for a label that is not compared (an estimate,
    a shortened run).

    :func:`peer_ranks` for one label, in one statement built once (the figures of a new
    label's answer and of a label's page). ``pending``: changes of current flags made in this
    transaction but not yet in ``peer_bins`` (``standings.apply_changes``'s input), counted as
    if they were: a new label's rank is then read before the log's lock is taken."""
    if not (label.measured and label.standard_workload):
        return None
    own_bin = bin_of(label.energy_ci95_high_wh)
    (found,) = read_mappings(
        session.connection(),
        _one_label(),
        {
            **{name: getattr(label, name) for name in PEER_GROUP},
            "bin": own_bin,
            "value": label.energy_ci95_high_wh,
            "ceiling": bin_floor(own_bin + 1),
        },
    )
    total, worse = found["peers"], found["worse"]
    group = _group(label)
    for change in pending:
        if not (change["measured"] and change["standard_workload"]):
            continue
        if tuple(str(change[name]) for name in PEER_GROUP) == group:
            step = 1 if change["current"] else -1
            total += step
            worse += step if bin_of(float(change["energy_ci95_high_wh"])) > own_bin else 0
    return PeerRank(int(total) - (1 if label.current else 0), int(worse))


@cache
def _one_label() -> Any:
    """Peers (from the group's bins) and worse peers (the higher bins' peers and a count over
    ``ix_labels_peers`` inside the label's own bin) of one label, in one statement."""
    bins = PeerBin.__table__  # type: ignore[attr-defined]
    labels = Label.__table__  # type: ignore[attr-defined]
    group = and_(*(bins.c[name] == bindparam(name) for name in PEER_GROUP))
    higher = case((bins.c.bin > bindparam("bin"), bins.c.peers), else_=0)
    from_bins = core_select(
        func.coalesce(func.sum(bins.c.peers), 0).label("peers"),
        func.coalesce(func.sum(higher), 0).label("higher"),
    ).where(group)
    inside = (
        core_select(func.count())
        .select_from(labels)
        .where(
            # strictly worse: the label itself is not counted (no id to compare)
            peers_of(labels.c, **{name: bindparam(name) for name in PEER_GROUP}, label_id=None),
            labels.c.energy_ci95_high_wh > bindparam("value"),
            labels.c.energy_ci95_high_wh < bindparam("ceiling"),
        )
        .scalar_subquery()
    )
    counted = from_bins.subquery()
    return core_select(counted.c.peers, (counted.c.higher + inside).label("worse"))


def _read_bins(connection: Any, groups: list[tuple[str, ...]]) -> Any:
    """SQLite: the non-empty bins of the peer groups ``groups`` (an IN list of them): (the
    group's five columns, bin, peers) rows."""
    bins = PeerBin.__table__  # type: ignore[attr-defined]
    return connection.execute(
        core_select(*(bins.c[name] for name in PEER_GROUP), bins.c.bin, bins.c.peers).where(
            tuple_(*(bins.c[name] for name in PEER_GROUP)).in_(groups), bins.c.peers != 0
        )
    )


def _group(label: Label) -> tuple[str, ...]:
    return tuple(str(getattr(label, name)) for name in PEER_GROUP)


def _worse_inside(connection: Any, ceilings: dict[str, float]) -> dict[str, int]:
    """SQLite: per label id, its peers worse than it but below ``ceilings[id]`` (the floor of
    the next bin), counted over ``ix_labels_peers`` (a CASE over the ids)."""
    own, peer, same_group = _inside_parts()
    ceiling = case(ceilings, value=own.c.id)
    inside = (
        core_select(func.count())
        .select_from(peer)
        .where(same_group, peer.c.energy_ci95_high_wh < ceiling)
        .scalar_subquery()
    )
    found = connection.execute(core_select(own.c.id, inside).where(own.c.id.in_(list(ceilings))))
    return {label_id: int(count) for label_id, count in found}


@cache
def _inside_parts() -> tuple[Any, Any, Any]:
    """The aliases and the peer condition of the count inside a bin (built once)."""
    table = Label.__table__  # type: ignore[attr-defined]
    own = table.alias("own")
    peer = table.alias("peer")
    same_group = and_(
        peers_of(
            peer.c,
            suite=own.c.suite,
            task=own.c.task,
            phase=own.c.phase,
            hardware_class=own.c.hardware_class,
            size_class=own.c.size_class,
            label_id=None,  # strictly worse than it: the label itself is not counted
        ),
        peer.c.energy_ci95_high_wh > own.c.energy_ci95_high_wh,
    )
    return own, peer, same_group


def peer_percentiles(session: Session, labels: Sequence[Label]) -> dict[str, float | None]:
    """:func:`peer_percentile` of many labels (:func:`peer_ranks`' shares)."""
    return {
        label_id: rank.percentile if rank is not None else None
        for label_id, rank in peer_ranks(session, labels).items()
    }


def peer_ranks(session: Session, labels: Sequence[Label]) -> dict[str, PeerRank | None]:
    """:func:`peer_rank` of many labels, at a cost that does not grow with the peer groups: the
    groups' bins (``peer_bins``, services/standings.py) give the peers and those in higher bins;
    a count over ``ix_labels_peers`` inside each label's own bin gives the rest. PostgreSQL: one
    statement, a row per label; SQLite: two (the bins, then the counts), summed here. Labels
    that are not compared (estimates, shortened runs) get None without a query."""
    compared = [label for label in labels if label.measured and label.standard_workload]
    found: dict[str, PeerRank | None] = {label.id: None for label in labels}
    if not compared:
        return found
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        found.update(_ranks_in_one_read(connection, compared))
        return found
    group_of = {label.id: _group(label) for label in compared}
    bin_at = {label.id: bin_of(label.energy_ci95_high_wh) for label in compared}
    groups = sorted(set(group_of.values()))
    per_group: dict[tuple[str, ...], list[tuple[int, int]]] = {group: [] for group in groups}
    for row in _read_bins(connection, groups):
        per_group[tuple(row[:5])].append((int(row[5]), int(row[6])))
    # per group: its bins in order, and the peers in each bin and those above it
    tails: dict[tuple[str, ...], tuple[list[int], list[int]]] = {}
    for group, counts in per_group.items():
        counts.sort()
        from_here = list(accumulate(n for _, n in reversed(counts)))[::-1]
        tails[group] = ([b for b, _ in counts], [*from_here, 0])
    ceilings = {label.id: bin_floor(bin_at[label.id] + 1) for label in compared}
    worse_inside = _worse_inside(connection, ceilings)
    for label in compared:
        bins, from_bin = tails[group_of[label.id]]
        # the label itself is in the bins when it is current (it is measured, standard)
        total = from_bin[0] - (1 if label.current else 0)
        higher = from_bin[bisect_right(bins, bin_at[label.id])]
        found[label.id] = PeerRank(total, higher + int(worse_inside.get(label.id, 0)))
    return found


def _ranks_in_one_read(connection: Any, labels: Sequence[Label]) -> dict[str, PeerRank]:
    """PostgreSQL: :func:`peer_ranks` of ``labels`` by one statement (:func:`_ranks_arrays`),
    which sums each label's group's bins where they are stored and answers a row per label."""
    bins = {label.id: bin_of(label.energy_ci95_high_wh) for label in labels}
    current = {label.id: label.current for label in labels}
    rows = read_mappings(
        connection,
        _ranks_arrays(),
        {
            "ids": list(bins),
            "bins": list(bins.values()),
            "ceilings": [bin_floor(b + 1) for b in bins.values()],
        },
    )
    # the label itself is in the bins when it is current (it is measured, standard)
    return {
        r["id"]: PeerRank(
            int(r["peers"]) - (1 if current[r["id"]] else 0), int(r["higher"]) + int(r["inside"])
        )
        for r in rows
    }


@cache
def _ranks_arrays() -> Any:
    """:func:`_ranks_in_one_read`'s statement: per label given (``unnest`` of its id, bin and
    the next bin's floor), its group's peers and those in higher bins (``peer_bins``, on its
    primary key) and its peers worse than it inside its own bin (``ix_labels_peers``)."""
    own, peer, same_group = _inside_parts()
    bins = PeerBin.__table__  # type: ignore[attr-defined]
    given = array_rows("given", ("id", String), ("bin", Integer), ("ceiling", Float))
    in_group = and_(*(bins.c[name] == own.c[name] for name in PEER_GROUP))
    # the group's peers and those in higher bins in one pass over its bins (a LATERAL
    # subquery: one scan of the group's bins per label, not two)
    higher = case((bins.c.bin > given.c.bin, bins.c.peers), else_=0)
    from_bins = (
        core_select(
            func.coalesce(func.sum(bins.c.peers), 0).label("peers"),
            func.coalesce(func.sum(higher), 0).label("higher"),
        )
        .where(in_group)
        .lateral("from_bins")
    )
    inside = (
        core_select(func.count())
        .select_from(peer)
        .where(same_group, peer.c.energy_ci95_high_wh < given.c.ceiling)
        .scalar_subquery()
    )
    return core_select(
        own.c.id, from_bins.c.peers, from_bins.c.higher, inside.label("inside")
    ).select_from(given.join(own, own.c.id == given.c.id).join(from_bins, true()))


def percentile_of(peers: int, worse: int) -> float | None:
    """``worse`` of ``peers`` as a percentage (one decimal); None without peers."""
    if not peers:
        return None
    return round(100.0 * worse / peers, 1)
