"""Peers and percentiles: who a label is ranked against (its current measured peers of the
same suite, task, phase, hardware class and size class) and the share of them it beats."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, func
from sqlalchemy import select as core_select
from sqlmodel import Session

from registry.models import Label


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
    parameters."""
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
        columns.id != label_id,
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


def peer_percentile(session: Session, label: Label) -> float | None:
    """Share (0-100) of the current measured peers (same suite, task, phase, hardware class and
    size class) whose graded figure is worse (higher) than this label's; None without peers."""
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


def peer_percentiles(session: Session, labels: Sequence[Label]) -> dict[str, float | None]:
    """:func:`peer_percentile` of many labels in one statement (two index-only counts per label
    over ``ix_labels_peers``); labels that are not compared (estimates, shortened runs) get
    None without a query."""
    compared = [label for label in labels if label.measured and label.standard_workload]
    found: dict[str, float | None] = {label.id: None for label in labels}
    if not compared:
        return found
    table = Label.__table__  # type: ignore[attr-defined]
    own = table.alias("own")
    peer = table.alias("peer")
    peers = peers_of(
        peer.c,
        suite=own.c.suite,
        task=own.c.task,
        phase=own.c.phase,
        hardware_class=own.c.hardware_class,
        size_class=own.c.size_class,
        label_id=own.c.id,
    )
    total = core_select(func.count()).select_from(peer).where(peers).scalar_subquery()
    worse = (
        core_select(func.count())
        .select_from(peer)
        .where(peers, peer.c.energy_ci95_high_wh > own.c.energy_ci95_high_wh)
        .scalar_subquery()
    )
    rows = session.connection().execute(
        core_select(own.c.id, total, worse).where(own.c.id.in_([label.id for label in compared]))
    )
    for label_id, peer_count, worse_count in rows:
        found[label_id] = percentile_of(peer_count, worse_count)
    return found


def percentile_of(peers: int, worse: int) -> float | None:
    """``worse`` of ``peers`` as a percentage (one decimal); None without peers."""
    if not peers:
        return None
    return round(100.0 * worse / peers, 1)
