"""The figures that :mod:`registry.services.standings` keeps, computed from the labels: the
tables as stored, the same tables computed from scratch (the tests and ``carbonlabel db derived``
compare the two) and :func:`rebuild_all`, which refills them (migration 0007, the scale
benchmark's loader, ``carbonlabel db derived --repair``)."""

from __future__ import annotations

from collections import defaultdict
from itertools import groupby
from typing import Any

from sqlalchemy import Connection, and_, case, delete, func, select

from registry.models import Vendor
from registry.services.standings import (
    _COUNT_KEY,
    _TOTALS_KEY,
    PEER_GROUP,
    _bins,
    _counts,
    _labels,
    _ranked_rows,
    _row,
    _standings,
    _totals,
    bin_of,
    standing_row,
    vendor_groups,
)


def counts_from_scratch(connection: Connection) -> dict[tuple[str, ...], tuple[int, int]]:
    """``current_counts`` computed from the labels: key to (labels, peers), non-empty keys only."""
    labels = _labels()
    peer = case((and_(labels.c.measured, labels.c.standard_workload), 1), else_=0)
    rows = connection.execute(
        select(*(labels.c[name] for name in _COUNT_KEY), func.count(), func.sum(peer))
        .where(labels.c.current)
        .group_by(*(labels.c[name] for name in _COUNT_KEY))
    ).all()
    return {tuple(r[:6]): (int(r[6]), int(r[7] or 0)) for r in rows}


def standings_from_scratch(connection: Connection) -> dict[tuple[Any, ...], dict[str, Any]]:
    """``vendor_standings`` computed from the labels: (suite, task, phase, hardware class, size
    class, vendor id) to the vendor's figures."""
    labels = _labels()
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    records = connection.execute(
        _ranked_rows().order_by(
            labels.c.suite, labels.c.task, labels.c.phase, labels.c.vendor_id, labels.c.model_id
        )
    )
    for (suite, task, phase, vendor_id), group in groupby(
        records, key=lambda r: (r.suite, r.task, r.phase, int(r.vendor_id))
    ):
        for (hardware_class, size_class), figures in vendor_groups(
            [_row(r) for r in group]
        ).items():
            found[(suite, task, phase, hardware_class, size_class, vendor_id)] = figures
    return found


def stored_counts(connection: Connection) -> dict[tuple[str, ...], tuple[int, int]]:
    """``current_counts`` as stored, non-empty keys only."""
    counts = _counts()
    rows = connection.execute(
        select(*(counts.c[name] for name in _COUNT_KEY), counts.c.labels, counts.c.peers)
    ).all()
    return {tuple(r[:6]): (int(r[6]), int(r[7])) for r in rows if (r[6], r[7]) != (0, 0)}


def bins_from_scratch(connection: Connection) -> dict[tuple[Any, ...], int]:
    """``peer_bins`` computed from the labels: (peer group, bin) to peers, non-empty bins only."""
    labels = _labels()
    found: dict[tuple[Any, ...], int] = defaultdict(int)
    rows = connection.execute(
        select(*(labels.c[name] for name in PEER_GROUP), labels.c.energy_ci95_high_wh).where(
            labels.c.current, labels.c.measured, labels.c.standard_workload
        )
    )
    for row in rows:
        found[(*row[:5], bin_of(float(row[5])))] += 1
    return dict(found)


def stored_bins(connection: Connection) -> dict[tuple[Any, ...], int]:
    """``peer_bins`` as stored, non-empty bins only."""
    bins = _bins()
    rows = connection.execute(
        select(*(bins.c[name] for name in PEER_GROUP), bins.c.bin, bins.c.peers)
    ).all()
    return {tuple(r[:6]): int(r[6]) for r in rows if r[6]}


def totals_from_scratch(connection: Connection) -> dict[tuple[Any, ...], tuple[int, int]]:
    """``ranking_totals`` computed from the labels: group to (vendors, scored vendors)."""
    found: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
    for key, figures in standings_from_scratch(connection).items():
        total = found[key[:5]]
        total[0] += 1
        total[1] += figures["score_wh"] is not None
    return {key: (v, n) for key, (v, n) in found.items()}


def stored_totals(connection: Connection) -> dict[tuple[Any, ...], tuple[int, int]]:
    """``ranking_totals`` as stored, non-empty groups only."""
    totals = _totals()
    rows = connection.execute(
        select(*(totals.c[name] for name in _TOTALS_KEY), totals.c.vendors, totals.c.scored)
    ).all()
    return {tuple(r[:5]): (int(r[5]), int(r[6])) for r in rows if (r[5], r[6]) != (0, 0)}


def stored_standings(connection: Connection) -> dict[tuple[Any, ...], dict[str, Any]]:
    """``vendor_standings`` as stored, in the form of :func:`standings_from_scratch`."""
    standings = _standings()
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in connection.execute(select(standings)).mappings():
        key = tuple(
            r[k] for k in ("suite", "task", "phase", "hardware_class", "size_class", "vendor_id")
        )
        found[key] = {
            k: r[k]
            for k in (
                "models",
                "labels",
                "measured",
                "best_grade",
                "worst_grade",
                "score_wh",
                "median_quality",
            )
        }
    return found


def rebuild_all(connection: Connection) -> None:
    """Recompute the three tables from the labels (a migration, a bulk load)."""
    standings, counts, bins, totals = _standings(), _counts(), _bins(), _totals()
    for table in (standings, counts, bins, totals):
        connection.execute(delete(table))
    group_totals = [
        dict(zip(_TOTALS_KEY, key, strict=True)) | {"vendors": v, "scored": n}
        for key, (v, n) in totals_from_scratch(connection).items()
    ]
    if group_totals:
        connection.execute(totals.insert(), group_totals)
    peer_bins = [
        dict(zip((*PEER_GROUP, "bin"), key, strict=True)) | {"peers": n}
        for key, n in bins_from_scratch(connection).items()
    ]
    if peer_bins:
        connection.execute(bins.insert(), peer_bins)
    vendors = Vendor.__table__  # type: ignore[attr-defined]
    slugs: dict[int, str] = {
        int(r[0]): str(r[1]) for r in connection.execute(select(vendors.c.id, vendors.c.slug))
    }
    batch: list[dict[str, Any]] = []
    for key, figures in standings_from_scratch(connection).items():
        batch.append(standing_row(key, slugs[key[5]], figures))
        if len(batch) >= 5000:
            connection.execute(standings.insert(), batch)
            batch = []
    if batch:
        connection.execute(standings.insert(), batch)
    rows = [
        dict(zip(_COUNT_KEY, key, strict=True)) | {"labels": n, "peers": p}
        for key, (n, p) in counts_from_scratch(connection).items()
    ]
    if rows:
        connection.execute(counts.insert(), rows)
