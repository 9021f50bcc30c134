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

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from sqlalchemy import Connection, and_, delete, select
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
    (``slugs``: vendors' slugs the caller has, saving a query each)."""
    deltas: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0])
    bins: dict[tuple[Any, ...], int] = defaultdict(int)
    vendors: set[tuple[int, str, str, str]] = set()
    for row in changed:
        step = 1 if row["current"] else -1
        delta = deltas[tuple(str(row[name]) for name in _COUNT_KEY)]
        delta[0] += step
        if row["measured"] and row["standard_workload"]:
            delta[1] += step
            group = tuple(str(row[name]) for name in PEER_GROUP)
            bins[(*group, bin_of(float(row["energy_ci95_high_wh"])))] += step
        vendors.add((int(row["vendor_id"]), row["suite"], row["task"], row["phase"]))
    _add(connection, _counts(), _COUNT_KEY, ("labels", "peers"), deltas)
    _add(connection, _bins(), (*PEER_GROUP, "bin"), ("peers",), {k: (d,) for k, d in bins.items()})
    for vendor_id, suite, task, phase in sorted(vendors):
        refresh_vendor(
            connection,
            vendor_id=vendor_id,
            suite=suite,
            task=task,
            phase=phase,
            slug=(slugs or {}).get(vendor_id),
        )


def _add(
    connection: Connection,
    table: Any,
    key: Sequence[str],
    values: Sequence[str],
    deltas: Mapping[tuple[Any, ...], Sequence[int]],
) -> None:
    """Add ``deltas`` (key to one delta per column of ``values``) to ``table``'s rows, inserting
    the missing ones: one upsert, in key order (so concurrent writers lock rows in one order).
    Keys whose deltas are all zero are skipped."""
    moving = {k: d for k, d in deltas.items() if any(d)}
    if not moving:
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
            for k, d in sorted(moving.items())
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


def refresh_vendor(
    connection: Connection,
    *,
    vendor_id: int,
    suite: str,
    task: str,
    phase: str,
    slug: str | None = None,
) -> None:
    """Recompute one vendor's standings for a suite, task and phase from its current labels."""
    labels, standings = _labels(), _standings()
    records = connection.execute(
        _ranked_rows()
        .where(
            labels.c.task == task,
            labels.c.phase == phase,
            labels.c.suite == suite,
            labels.c.vendor_id == vendor_id,
        )
        .order_by(labels.c.model_id)
    ).all()
    old = {
        (r[0], r[1]): r[2] is not None
        for r in connection.execute(
            delete(standings)
            .where(
                and_(
                    standings.c.suite == suite,
                    standings.c.task == task,
                    standings.c.phase == phase,
                    standings.c.vendor_id == vendor_id,
                )
            )
            .returning(standings.c.hardware_class, standings.c.size_class, standings.c.score_wh)
        )
    }
    groups = vendor_groups([_row(r) for r in records])
    new = {key: figures["score_wh"] is not None for key, figures in groups.items()}
    _add(
        connection,
        _totals(),
        _TOTALS_KEY,
        ("vendors", "scored"),
        {
            (suite, task, phase, *key): (
                int(key in new) - int(key in old),
                int(new.get(key, False)) - int(old.get(key, False)),
            )
            for key in set(old) | set(new)
        },
    )
    if not records:
        return
    if slug is None:
        vendors = Vendor.__table__  # type: ignore[attr-defined]
        slug = connection.execute(
            select(vendors.c.slug).where(vendors.c.id == vendor_id)
        ).scalar_one()
    connection.execute(
        standings.insert(),
        [
            {
                "suite": suite,
                "task": task,
                "phase": phase,
                "hardware_class": hardware_class,
                "size_class": size_class,
                "vendor_id": vendor_id,
                "vendor_slug": slug,
                **figures,
            }
            for (hardware_class, size_class), figures in groups.items()
        ],
    )
