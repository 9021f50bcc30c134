"""Figures kept up to date as labels come and go, so that rankings and pages never aggregate a
whole group per request: ``vendor_standings`` (each vendor's aggregates per ranking group),
``current_counts`` (current labels and peers per suite, task, phase, size class, hardware class
and zone) and ``peer_bins`` (peers per peer group and bin of the graded figure, for the
percentiles).

All three change only when a label's ``current`` flag changes: on ingest (a newer label replaces its
model's current one) and when a key is reported compromised (its later labels lose their
standing). Those code paths call :func:`apply_changes` in the same transaction, after taking the
transparency log's lock (which every such change takes), so changes are applied one at a time
and each recomputation reads every change committed before it. :func:`rebuild_all` computes both
tables from scratch (migration 0007, the scale benchmark's loader); the tests compare the
maintained figures with it and with the ranking computed live from the labels.

A ranking group is (suite, task, phase, hardware class, size class) where the hardware class and
the size class may each be ``*``: all of them. A vendor's row in a group holds what
``ranking.rank_vendors`` reports for it (its rank aside, which depends on the others: the
ranking query counts it from the ``score_wh`` index).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import groupby
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    cast,
    delete,
    literal,
    null,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from registry.models import CurrentCount, Label, PeerBin, RankingTotal, Vendor, VendorStanding

ALL = "*"
"""The hardware class or size class of a row that covers all of them."""

CHANGED_COLUMNS = (
    "vendor_id",
    "suite",
    "task",
    "phase",
    "size_class",
    "hardware_class",
    "zone",
    "measured",
    "standard_workload",
    "energy_ci95_high_wh",
    "current",
)
"""What :func:`apply_changes` needs of each label whose ``current`` flag changed (its new value)."""

_COUNT_KEY = ("suite", "task", "phase", "size_class", "hardware_class", "zone")
PEER_GROUP = ("suite", "task", "phase", "hardware_class", "size_class")
"""A label's peer group (``queries.peers_of``): the key of ``peer_bins`` with the bin."""

BINS_PER_OCTAVE = 16
LOWEST_BIN = -(10**6)
"""The bin of figures <= 0 (none is, in a valid label; kept apart so that the bins cover every
float)."""


def bin_floor(number: int) -> float:
    """The smallest figure in bin ``number``: ``2 ** (number / 16)``."""
    return float(2.0 ** (number / BINS_PER_OCTAVE))


def bin_of(value_wh: float) -> int:
    """The bin holding ``value_wh``: the b with ``bin_floor(b) <= value_wh < bin_floor(b + 1)``
    (found from the logarithm, then settled against ``bin_floor`` itself, so that the bins and
    the range counts inside one bin agree to the last bit)."""
    if not value_wh > 0.0:
        return LOWEST_BIN
    number = math.floor(math.log2(value_wh) * BINS_PER_OCTAVE)
    while value_wh < bin_floor(number):
        number -= 1
    while value_wh >= bin_floor(number + 1):
        number += 1
    return number


def _labels() -> Any:
    return Label.__table__  # type: ignore[attr-defined]


def _standings() -> Any:
    return VendorStanding.__table__  # type: ignore[attr-defined]


def _counts() -> Any:
    return CurrentCount.__table__  # type: ignore[attr-defined]


def _bins() -> Any:
    return PeerBin.__table__  # type: ignore[attr-defined]


def _totals() -> Any:
    return RankingTotal.__table__  # type: ignore[attr-defined]


_TOTALS_KEY = ("suite", "task", "phase", "hardware_class", "size_class")


def changed_columns() -> list[Any]:
    """The RETURNING / SELECT list for :data:`CHANGED_COLUMNS`."""
    labels = _labels()
    return [labels.c[name] for name in CHANGED_COLUMNS]


def apply_changes(
    connection: Connection,
    changed: Iterable[Mapping[str, Any]],
    slugs: Mapping[int, str] | None = None,
) -> None:
    """Labels whose ``current`` flag just changed (their new values, :data:`CHANGED_COLUMNS`):
    move the counts and recompute the standings of the vendors and groups they belong to
    (``slugs``: vendors' slugs the caller has, saving a query each).

    One read (the vendors' current labels and their standings as stored) and one write: on
    PostgreSQL a single statement moves every table, so the log's lock, which the caller holds
    until its commit, is held for two round trips here whatever changed."""
    plan = _plan(connection, changed, slugs)
    if connection.dialect.name == "postgresql":
        _write_postgresql(connection, plan)
    else:
        _write(connection, plan)


def _plan(
    connection: Connection,
    changed: Iterable[Mapping[str, Any]],
    slugs: Mapping[int, str] | None = None,
) -> _Plan:
    """What the changes do to the kept tables (the standings read from the labels now)."""
    counts: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
    bins: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0])
    vendors: set[tuple[int, str, str, str]] = set()
    for row in changed:
        step = 1 if row["current"] else -1
        delta = counts[tuple(str(row[name]) for name in _COUNT_KEY)]
        delta[0] += step
        if row["measured"] and row["standard_workload"]:
            delta[1] += step
            group = tuple(str(row[name]) for name in PEER_GROUP)
            bins[(*group, bin_of(float(row["energy_ci95_high_wh"])))][0] += step
        vendors.add((int(row["vendor_id"]), row["suite"], row["task"], row["phase"]))
    plan = _Plan(_moving(counts), _moving(bins))
    if vendors:
        _plan_standings(connection, sorted(vendors), dict(slugs or {}), plan)
    return plan


def _moving(deltas: Mapping[tuple[Any, ...], Sequence[int]]) -> dict[tuple[Any, ...], list[int]]:
    """The deltas that move something, in key order (writers then lock rows in one order)."""
    return {k: list(d) for k, d in sorted(deltas.items()) if any(d)}


@dataclass
class _Plan:
    """What one change does to the kept tables."""

    counts: dict[tuple[Any, ...], list[int]]
    """``current_counts`` key to (labels, peers) deltas."""
    bins: dict[tuple[Any, ...], list[int]]
    """``peer_bins`` key to (peers,) delta."""
    totals: dict[tuple[Any, ...], list[int]] = field(default_factory=dict)
    """``ranking_totals`` key to (vendors, scored) deltas."""
    put: list[dict[str, Any]] = field(default_factory=list)
    """``vendor_standings`` rows to write (insert or replace)."""
    gone: list[dict[str, Any]] = field(default_factory=list)
    """``vendor_standings`` keys to delete (the vendor no longer has labels there)."""


_STANDING_KEY = ("suite", "task", "phase", "hardware_class", "size_class", "vendor_id")


def standing_row(key: Sequence[Any], slug: str, figures: Mapping[str, Any]) -> dict[str, Any]:
    """A ``vendor_standings`` row: its key (:data:`_STANDING_KEY`), the vendor's slug and its
    figures (``aggregate``)."""
    return dict(zip(_STANDING_KEY, key, strict=True)) | {"vendor_slug": slug, **figures}


_VENDOR_GROUP = ("vendor_id", "suite", "task", "phase")


def _plan_standings(
    connection: Connection,
    vendors: list[tuple[int, str, str, str]],
    slugs: dict[int, str],
    plan: _Plan,
) -> None:
    """Recompute the standings of each (vendor, suite, task, phase) from its current labels,
    read in one statement with the standings stored for it."""
    records: dict[tuple[Any, ...], list[_Row]] = {group: [] for group in vendors}
    old: dict[tuple[Any, ...], dict[tuple[str, str], bool]] = {group: {} for group in vendors}
    for group in vendors:  # one, on ingest (the compromise of a key: one per vendor group)
        parameters = dict(zip(_VENDOR_GROUP, group, strict=True))
        for r in connection.execute(_read_statement(), parameters):
            if r.stored:
                old[group][(r.hardware_class, r.size_class)] = r.score_wh is not None
                slugs.setdefault(group[0], r.vendor_slug)
            else:
                records[group].append(_row(r))
    missing = sorted({group[0] for group in vendors if records[group]} - set(slugs))
    if missing:
        vendor_table = Vendor.__table__  # type: ignore[attr-defined]
        slugs |= dict(
            connection.execute(
                select(vendor_table.c.id, vendor_table.c.slug).where(vendor_table.c.id.in_(missing))
            ).all()
        )
    totals: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
    for group in vendors:
        vendor_id, suite, task, phase = group
        rows = sorted(records[group], key=lambda r: r.model_id)
        new = vendor_groups(rows)
        before = old[group]
        for key in set(before) | set(new):
            scored = new[key]["score_wh"] is not None if key in new else False
            total = totals[(suite, task, phase, *key)]
            total[0] += int(key in new) - int(key in before)
            total[1] += int(scored) - int(before.get(key, False))
        for (hardware_class, size_class), figures in sorted(new.items()):
            standing = (suite, task, phase, hardware_class, size_class, vendor_id)
            plan.put.append(standing_row(standing, slugs[vendor_id], figures))
        plan.gone += [
            dict(zip(_STANDING_KEY, (suite, task, phase, *key, vendor_id), strict=True))
            for key in sorted(set(before) - set(new))
        ]
    plan.totals = _moving(totals)


@cache
def _read_statement() -> Any:
    """A vendor group's current standard-workload labels and its stored standings, in one
    statement (``stored`` tells them apart)."""
    labels, standings = _labels(), _standings()

    def none(type_: Any) -> Any:
        return cast(null(), type_)

    from_labels = _ranked_rows().add_columns(
        literal(False).label("stored"),
        none(labels.c.energy_ci95_high_wh.type).label("score_wh"),
        none(standings.c.vendor_slug.type).label("vendor_slug"),
    )
    from_labels = from_labels.where(*(labels.c[n] == bindparam(n) for n in _VENDOR_GROUP))
    from_standings = select(
        standings.c.suite,
        standings.c.task,
        standings.c.phase,
        standings.c.vendor_id,
        none(labels.c.model_id.type),
        none(labels.c.measured.type),
        none(labels.c.energy_ci95_high_wh.type),
        none(labels.c.grade.type),
        standings.c.hardware_class,
        standings.c.size_class,
        none(labels.c.quality.type),
        literal(True),
        standings.c.score_wh,
        standings.c.vendor_slug,
    ).where(*(standings.c[n] == bindparam(n) for n in _VENDOR_GROUP))
    return union_all(from_labels, from_standings)


def _write(connection: Connection, plan: _Plan) -> None:
    """The plan, one statement per table (SQLite, which serialises writers anyway)."""
    standings = _standings()
    _add(connection, _counts(), _COUNT_KEY, ("labels", "peers"), plan.counts)
    _add(connection, _bins(), (*PEER_GROUP, "bin"), ("peers",), plan.bins)
    _add(connection, _totals(), _TOTALS_KEY, ("vendors", "scored"), plan.totals)
    key = tuple_(*(standings.c[name] for name in _STANDING_KEY))
    doomed = [tuple(r[name] for name in _STANDING_KEY) for r in plan.gone + plan.put]
    if doomed:
        connection.execute(delete(standings).where(key.in_(doomed)))
    if plan.put:
        connection.execute(standings.insert(), plan.put)


def _write_postgresql(connection: Connection, plan: _Plan) -> None:
    """The plan in one statement: an upsert per table in data-modifying CTEs, each fed one
    JSON array (typed by ``jsonb_to_recordset``)."""
    if not (plan.counts or plan.bins or plan.totals or plan.put or plan.gone):
        return
    connection.execute(_postgresql_write(), _postgresql_parameters(plan))


def _json(
    key: Sequence[str], values: Sequence[str], deltas: Mapping[tuple[Any, ...], Sequence[int]]
) -> str:
    return json.dumps(
        [
            dict(zip(key, k, strict=True)) | dict(zip(values, d, strict=True))
            for k, d in deltas.items()
        ]
    )


@cache
def _postgresql_ctes() -> str:
    """The upserts of :func:`_write_postgresql` as data-modifying CTEs (``counts AS (...), ...,
    put AS (...)``), written from the tables' metadata; a statement may carry them beside its
    own (the log's append, ``translog.append``'s ``rider``)."""
    dialect = postgresql.dialect()

    def rows(table: Any, names: Sequence[str], parameter: str) -> str:
        typed = ", ".join(f"{n} {table.c[n].type.compile(dialect=dialect)}" for n in names)
        return f"jsonb_to_recordset(CAST(:{parameter} AS jsonb)) AS x({typed})"

    def adding(table: Any, key: Sequence[str], values: Sequence[str], parameter: str) -> str:
        names = [*key, *values]
        moved = ", ".join(f"{v} = t.{v} + excluded.{v}" for v in values)
        # names from the tables' metadata only; every value is bound
        return (
            f"INSERT INTO {table.name} AS t ({', '.join(names)})"  # noqa: S608
            f" SELECT {', '.join(names)} FROM {rows(table, names, parameter)}"
            f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {moved}"
        )

    standings = _standings()
    columns = [c.name for c in standings.c]
    replaced = ", ".join(f"{n} = excluded.{n}" for n in columns if n not in _STANDING_KEY)
    matches = " AND ".join(f"t.{n} = x.{n}" for n in _STANDING_KEY)
    return (
        f"counts AS ({adding(_counts(), _COUNT_KEY, ('labels', 'peers'), 'counts')}),"  # noqa: S608
        f" bins AS ({adding(_bins(), (*PEER_GROUP, 'bin'), ('peers',), 'bins')}),"
        f" totals AS ({adding(_totals(), _TOTALS_KEY, ('vendors', 'scored'), 'totals')}),"
        f" gone AS (DELETE FROM {standings.name} AS t"
        f" USING {rows(standings, _STANDING_KEY, 'gone')} WHERE {matches}),"
        f" put AS (INSERT INTO {standings.name} AS t ({', '.join(columns)})"
        f" SELECT {', '.join(columns)} FROM {rows(standings, columns, 'put')}"
        f" ON CONFLICT ({', '.join(_STANDING_KEY)}) DO UPDATE SET {replaced})"
    )


@cache
def _postgresql_write() -> Any:
    """The statement of :func:`_write_postgresql` (its CTEs alone)."""
    return text(f"WITH {_postgresql_ctes()} SELECT 1")


def _postgresql_parameters(plan: _Plan) -> dict[str, str]:
    return {
        "counts": _json(_COUNT_KEY, ("labels", "peers"), plan.counts),
        "bins": _json((*PEER_GROUP, "bin"), ("peers",), plan.bins),
        "totals": _json(_TOTALS_KEY, ("vendors", "scored"), plan.totals),
        "put": json.dumps(plan.put, allow_nan=False),
        "gone": json.dumps(plan.gone),
    }


def rider(
    connection: Connection,
    changed: Iterable[Mapping[str, Any]],
    slugs: Mapping[int, str] | None = None,
) -> tuple[str, dict[str, Any]] | None:
    """:func:`apply_changes` for a caller that holds the log's lock and is about to append:
    the read happens now; on PostgreSQL the write is returned as CTEs and their parameters, to
    ride in the log's own write statement (``translog.append(..., rider=...)``: one round trip
    less under the lock); on SQLite it is done now and None is returned."""
    plan = _plan(connection, changed, slugs)
    if connection.dialect.name != "postgresql":
        _write(connection, plan)
        return None
    return _postgresql_ctes(), _postgresql_parameters(plan)


def _add(
    connection: Connection,
    table: Any,
    key: Sequence[str],
    values: Sequence[str],
    deltas: Mapping[tuple[Any, ...], Sequence[int]],
) -> None:
    """Add ``deltas`` (key to one delta per column of ``values``, none all zero) to ``table``'s
    rows, inserting the missing ones: one upsert, in key order."""
    if not deltas:
        return
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(key),
        set_={name: table.c[name] + statement.excluded[name] for name in values},
    )
    connection.execute(
        statement,
        [
            dict(zip(key, k, strict=True)) | dict(zip(values, d, strict=True))
            for k, d in sorted(deltas.items())
        ],
    )


@dataclass(frozen=True)
class _Row:
    """One current, standard-workload label as the ranking reads it."""

    model_id: int
    measured: bool
    energy_ci95_high_wh: float
    grade: str | None
    hardware_class: str
    size_class: str
    quality: float | None


def _median_per_model(rows: list[_Row], value: str) -> float | None:
    """The median over models (``rows`` in model order) of each model's median of ``value``."""
    per_model = [
        statistics.median(float(getattr(r, value)) for r in model_rows)
        for _, model_rows in groupby(rows, key=lambda r: r.model_id)
    ]
    return float(statistics.median(per_model)) if per_model else None


def aggregate(rows: list[_Row]) -> dict[str, Any]:
    """A vendor's figures over its current labels in one group (``rows`` in model order)."""
    grades = [r.grade for r in rows if r.grade is not None]
    measured = [r for r in rows if r.measured]
    return {
        "models": len({r.model_id for r in rows}),
        "labels": len(rows),
        "measured": len(measured),
        "best_grade": min(grades) if grades else None,  # letters: the smallest is the best
        "worst_grade": max(grades) if grades else None,
        "score_wh": _median_per_model(measured, "energy_ci95_high_wh"),
        "median_quality": _median_per_model([r for r in rows if r.quality is not None], "quality"),
    }


def vendor_groups(rows: list[_Row]) -> dict[tuple[str, str], dict[str, Any]]:
    """A vendor's rows in every ranking group its labels of one suite, task and phase fall in:
    ``(hardware class or *, size class or *)`` to its aggregates."""
    hardware = {r.hardware_class for r in rows}
    sizes = {r.size_class for r in rows}
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for hardware_class in [ALL, *sorted(hardware)]:
        for size_class in [ALL, *sorted(sizes)]:
            selected = [
                r
                for r in rows
                if hardware_class in (ALL, r.hardware_class) and size_class in (ALL, r.size_class)
            ]
            if selected:
                found[(hardware_class, size_class)] = aggregate(selected)
    return found


def _ranked_rows() -> Any:
    """Current standard-workload labels (ix_labels_vendor_ranking holds every column read)."""
    labels = _labels()
    return select(
        labels.c.suite,
        labels.c.task,
        labels.c.phase,
        labels.c.vendor_id,
        labels.c.model_id,
        labels.c.measured,
        labels.c.energy_ci95_high_wh,
        labels.c.grade,
        labels.c.hardware_class,
        labels.c.size_class,
        labels.c.quality,
    ).where(labels.c.current, labels.c.standard_workload)


def _row(record: Any) -> _Row:
    return _Row(
        model_id=int(record.model_id),
        measured=bool(record.measured),
        energy_ci95_high_wh=float(record.energy_ci95_high_wh),
        grade=record.grade,
        hardware_class=record.hardware_class,
        size_class=record.size_class,
        quality=record.quality,
    )
