"""Vendor ranking for a suite, task and phase (optionally one hardware class, one zone, one
model-size class, and labels of at least a measured quality).

Everything comes from the typed columns of ``labels``, read through ``ix_labels_vendor_ranking``
(migrations 0003, 0006); the JSON predicate is never read. Two queries: per-vendor counts and
grades (GROUP BY in SQL), and the (vendor, model, measured, figure, quality) rows of current labels
in vendor and model order, whose medians are taken here (portable to SQLite and PostgreSQL alike).
Labels of different suites are never ranked together: their workloads differ. Without a suite the
ranking is of the newest suite that has current measured labels for the task and phase
(``default_suite``).

Score: for each vendor, the median over its models of the graded figure (the upper bound of the
95% confidence interval of gross energy per functional unit, ``energy_ci95_high_wh``) of each
model's *current* *measured* label in the group. ``current`` marks the newest label of a model for
its task, phase and hardware class, so with a hardware class given every model contributes exactly
one label; without one, a model labelled on several hardware classes first gets the median of its
labels, so that it still counts once. Lower is better. Vendors whose current labels in the group
are all estimated have no score and are listed after the ranked ones.

Median quality: the same per-model-then-per-vendor median of the measured quality figures
(``quality``: the registry's recomputation of the per-item outcomes; declared figures never count)
of the vendor's current labels in the group that have one.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import statistics
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby
from typing import Any

from sqlalchemy import case, exists, func

# SQLModel's select is typed for at most four columns; the aggregates take more.
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from registry.db import read_mappings
from registry.errors import ProblemError
from registry.models import Label, Vendor, VendorStanding
from registry.services.ranking_rows import RankingPage, VendorRank
from registry.services.ranking_stored import stored_page
from registry.services.standings import ALL
from schemas.suites import suite_versions, suites_offering


@dataclass(frozen=True)
class _Group:
    task: str
    phase: str
    suite: str
    hardware_class: str | None = None
    zone: str | None = None
    size_class: str | None = None
    min_quality: float | None = None

    def where(self) -> list[Any]:
        """The WHERE clause: columns of ``ix_labels_vendor_ranking``."""
        where: list[Any] = [
            col(Label.task) == self.task,
            col(Label.phase) == self.phase,
            col(Label.suite) == self.suite,
            col(Label.current),
            # a shrunk suite-2 run is stored and shown, but never compared (workloads.py)
            col(Label.standard_workload),
        ]
        if self.hardware_class is not None:
            where.append(col(Label.hardware_class) == self.hardware_class)
        if self.zone is not None:
            where.append(col(Label.zone) == self.zone)
        if self.size_class is not None:
            where.append(col(Label.size_class) == self.size_class)
        if self.min_quality is not None:  # labels without a measured figure drop out
            where.append(col(Label.quality) >= self.min_quality)
        return where


def default_suite(session: Session, *, task: str, phase: str) -> str:
    """The suite a ranking of this task and phase shows when none is asked for: the newest with
    a current measured label (else the newest with a current label, else the newest suite)."""
    probes, statement = _default_suite_probes(task, phase)
    (found,) = read_mappings(session.connection(), statement, {})
    for (version, _), hit in zip(probes, found.values(), strict=True):
        if hit:
            return version
    return probes[0][0]


@lru_cache(maxsize=64)
def _default_suite_probes(task: str, phase: str) -> tuple[list[tuple[str, bool]], Any]:
    """The probes (suite, measured) in the order they are tried, and the one statement of EXISTS
    probes that answers them: built once per task and phase (building it cost more than running
    it), from the vendors' standings over all hardware and size classes (a vendor has a row
    there when it has a current standard-workload label in the group), on their primary key,
    whatever the number of labels."""
    newest_first = list(reversed(suites_offering(task, phase))) or list(reversed(suite_versions()))
    standings = VendorStanding.__table__  # type: ignore[attr-defined]

    def present(version: str, measured: bool) -> Any:
        probe = sa_select(standings.c.vendor_id).where(
            standings.c.suite == version,
            standings.c.task == task,
            standings.c.phase == phase,
            standings.c.hardware_class == ALL,
            standings.c.size_class == ALL,
        )
        return exists(probe.where(standings.c.measured > 0) if measured else probe)

    probes = [(version, measured) for measured in (True, False) for version in newest_first]
    return probes, sa_select(*(present(version, measured) for version, measured in probes))


def _median_per_model(rows: list[Any], value: int) -> float | None:
    """The median over models (``rows`` in model order) of each model's median of ``row[value]``."""
    per_model = [
        statistics.median(float(r[value]) for r in model_rows)
        for _, model_rows in groupby(rows, key=lambda r: r[1])
    ]
    return float(statistics.median(per_model)) if per_model else None


def _medians(
    session: Session, where: list[Any]
) -> tuple[dict[int, float | None], dict[int, float | None]]:
    """Each vendor's score and median quality: medians over its models of each model's figure."""
    rows = (
        session.connection()
        .execute(
            sa_select(
                col(Label.vendor_id),
                col(Label.model_id),
                col(Label.measured),
                col(Label.energy_ci95_high_wh),
                col(Label.quality),
            )
            .where(*where)
            .order_by(col(Label.vendor_id), col(Label.model_id))
        )
        .all()
    )
    scores: dict[int, float | None] = {}
    qualities: dict[int, float | None] = {}
    for vendor_id, group in groupby(rows, key=lambda r: r[0]):
        vendor_rows = list(group)
        scores[vendor_id] = _median_per_model([r for r in vendor_rows if r[2]], 3)
        qualities[vendor_id] = _median_per_model([r for r in vendor_rows if r[4] is not None], 4)
    return scores, qualities


def rank_vendors(
    session: Session,
    *,
    task: str,
    phase: str,
    hardware_class: str | None = None,
    zone: str | None = None,
    suite: str | None = None,
    size_class: str | None = None,
    min_quality: float | None = None,
) -> list[VendorRank]:
    """Vendors with a current label in the group, best (lowest score) first (``suite`` None:
    ``default_suite``).

    Ranks are competition-style (1, 1, 3); vendors without a score follow the ranked ones, all at
    the rank after the last ranked vendor, in slug order.
    """
    if suite is None:
        suite = default_suite(session, task=task, phase=phase)
    where = _Group(task, phase, suite, hardware_class, zone, size_class, min_quality).where()
    measured_count = func.sum(case((col(Label.measured).is_(True), 1), else_=0))
    # Aggregated over the labels alone (from ix_labels_vendor_ranking), then joined to vendors.
    per_vendor = (
        sa_select(
            col(Label.vendor_id).label("vendor_id"),
            func.count(func.distinct(Label.model_id)).label("models"),
            func.count().label("labels"),
            measured_count.label("measured"),
            func.min(Label.grade).label("best_grade"),  # letters: the smallest is the best
            func.max(Label.grade).label("worst_grade"),
        )
        .where(*where)
        .group_by(col(Label.vendor_id))
        .subquery()
    )
    aggregates = (
        session.connection()
        .execute(
            sa_select(
                per_vendor.c.vendor_id,
                col(Vendor.slug),
                col(Vendor.display_name),
                per_vendor.c.models,
                per_vendor.c.labels,
                per_vendor.c.measured,
                per_vendor.c.best_grade,
                per_vendor.c.worst_grade,
            ).join(Vendor, col(Vendor.id) == per_vendor.c.vendor_id)
        )
        .all()
    )
    scores, qualities = _medians(session, where) if aggregates else ({}, {})

    def order(row: Any) -> tuple[bool, float, str]:
        score = scores.get(row[0])
        return (score is None, score if score is not None else 0.0, row[1])

    ranked: list[VendorRank] = []
    previous: float | None = None
    rank = 0
    for position, row in enumerate(sorted(aggregates, key=order), start=1):
        vendor_id, slug, display_name, models, labels, measured, best, worst = row
        score = scores.get(vendor_id)
        if position == 1 or score != previous:  # equal scores (or both None) share a rank
            rank = position
        previous = score
        measured = int(measured or 0)
        labels = int(labels)
        ranked.append(
            VendorRank(
                rank=rank,
                vendor=slug,
                display_name=display_name,
                score_wh=score,
                models=int(models),
                labels=labels,
                measured=measured,
                estimated=labels - measured,
                measured_share=measured / labels if labels else 0.0,
                best_grade=best,
                worst_grade=worst,
                median_quality=qualities.get(vendor_id),
            )
        )
    return ranked


def _encode_cursor(score: float | None, slug: str) -> str:
    raw = json.dumps([score, slug], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float | None, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        score, slug = json.loads(raw)
        if not isinstance(slug, str) or len(slug) > 64:
            raise TypeError("not a slug")
        if score is not None:
            if isinstance(score, bool) or not isinstance(score, int | float):
                raise TypeError("not a number")
            if not math.isfinite(score):
                raise TypeError("not finite")
            score = float(score)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise ProblemError("invalid-cursor", "cursor is not one this API issued") from None
    return score, slug


def _after(row_score: float | None, row_slug: str, cursor: tuple[float | None, str]) -> bool:
    """Whether a row comes after the cursor in ranking order (no score last, then slug)."""
    score, slug = cursor
    if score is None:
        return row_score is None and row_slug > slug
    if row_score is None:
        return True
    return row_score > score or (row_score == score and row_slug > slug)


def ranking_page(
    session: Session,
    *,
    task: str,
    phase: str,
    suite: str,
    hardware_class: str | None = None,
    zone: str | None = None,
    size_class: str | None = None,
    min_quality: float | None = None,
    limit: int = 100,
    cursor: str | None = None,
    vendors: list[str] | None = None,
) -> RankingPage:
    """One page of the ranking, in the order and with the ranks of :func:`rank_vendors`
    (``vendors``: only these slugs, at their ranks in the whole group).

    Without a zone or a quality floor the figures come from ``vendor_standings`` (maintained on
    every change, services/standings.py), read in rank order from ``ix_vendor_standings_rank``:
    the cost does not grow with the number of labels. With either, the group is aggregated from
    the labels per request (``rank_vendors``), as those filters cut across the stored groups."""
    after = _decode_cursor(cursor) if cursor else None
    if zone is not None or min_quality is not None:
        ranked = rank_vendors(
            session,
            task=task,
            phase=phase,
            hardware_class=hardware_class,
            zone=zone,
            suite=suite,
            size_class=size_class,
            min_quality=min_quality,
        )
        chosen = [
            r
            for r in ranked
            if (vendors is None or r.vendor in vendors)
            and (after is None or _after(r.score_wh, r.vendor, after))
        ]
        page = chosen[:limit]
        more = len(chosen) > limit
        total = len(ranked)
    else:
        page, more, total = stored_page(
            session,
            (
                suite,
                task,
                phase,
                hardware_class or ALL,
                size_class if size_class is not None else ALL,
            ),
            limit=limit,
            after=after,
            vendors=vendors,
        )
    next_cursor = _encode_cursor(page[-1].score_wh, page[-1].vendor) if more and page else None
    return RankingPage(vendors=page, total=total, next_cursor=next_cursor)
