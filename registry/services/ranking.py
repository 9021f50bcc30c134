"""Vendor ranking for a task and phase (optionally one hardware class and one zone).

Everything comes from the typed columns of ``labels``, read through ``ix_labels_vendor_ranking``
(migration 0003); the JSON predicate is never read. Two queries: per-vendor counts and grades
(GROUP BY in SQL), and the (vendor, model, figure) rows of current measured labels in vendor and
model order, whose medians are taken here (portable to SQLite and PostgreSQL alike).

Score: for each vendor, the median over its models of the graded figure (the upper bound of the
95% confidence interval of gross energy per functional unit, ``energy_ci95_high_wh``) of each
model's *current* *measured* label in the group. ``current`` marks the newest label of a model for
its task, phase and hardware class, so with a hardware class given every model contributes exactly
one label; without one, a model labelled on several hardware classes first gets the median of its
labels, so that it still counts once. Lower is better. Vendors whose current labels in the group
are all estimated have no score and are listed after the ranked ones.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from sqlalchemy import case, func

# SQLModel's select is typed for at most four columns; the aggregates take more.
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from registry.models import Label, Vendor

SCORE_DESCRIPTION = (
    "median, over the vendor's models with a current measured label in the group, of the upper "
    "bound of the 95% confidence interval of gross energy per functional unit "
    "(energy_ci95_high_wh, Wh; one figure per model: the median of its current labels when no "
    "hardware class is given); lower is better; ties share a rank; vendors with only estimated "
    "labels have no score and are listed last"
)

FIELDS = (
    "rank",
    "vendor",
    "display_name",
    "score_wh",
    "models",
    "labels",
    "measured",
    "estimated",
    "measured_share",
    "best_grade",
    "worst_grade",
)


@dataclass(frozen=True)
class VendorRank:
    rank: int  # 1 = best (lowest score); ties share a rank
    vendor: str  # slug
    display_name: str
    # the documented score (SCORE_DESCRIPTION); None when the vendor has no measured current
    # label in the group
    score_wh: float | None
    models: int  # distinct models with a current label in the group
    labels: int  # current labels in the group (measured + estimated)
    measured: int
    estimated: int
    measured_share: float  # measured / labels (0..1)
    best_grade: str | None
    worst_grade: str | None


def _group(task: str, phase: str, hardware_class: str | None, zone: str | None) -> list[Any]:
    """The WHERE clause of a group: columns of ``ix_labels_vendor_ranking``."""
    where: list[Any] = [col(Label.task) == task, col(Label.phase) == phase]
    if hardware_class is not None:
        where.append(col(Label.hardware_class) == hardware_class)
    where.append(col(Label.current).is_(True))
    if zone is not None:
        where.append(col(Label.zone) == zone)
    return where


def _scores(session: Session, where: list[Any]) -> dict[int, float]:
    """Each vendor's score: the median over its models of each model's figure."""
    rows = session.exec(
        select(Label.vendor_id, Label.model_id, Label.energy_ci95_high_wh)
        .where(*where, col(Label.measured).is_(True))
        .order_by(col(Label.vendor_id), col(Label.model_id))
    ).all()
    scores: dict[int, float] = {}
    for vendor_id, vendor_rows in groupby(rows, key=lambda r: r[0]):
        per_model = [
            statistics.median(float(r[2]) for r in model_rows)
            for _, model_rows in groupby(vendor_rows, key=lambda r: r[1])
        ]
        scores[vendor_id] = float(statistics.median(per_model))
    return scores


def rank_vendors(
    session: Session,
    *,
    task: str,
    phase: str,
    hardware_class: str | None = None,
    zone: str | None = None,
) -> list[VendorRank]:
    """Vendors with a current label in the group, best (lowest score) first.

    Ranks are competition-style (1, 1, 3); vendors without a score follow the ranked ones, all at
    the rank after the last ranked vendor, in slug order.
    """
    where = _group(task, phase, hardware_class, zone)
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
    scores = _scores(session, where) if aggregates else {}

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
            )
        )
    return ranked
