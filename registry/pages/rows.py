"""Label views: what a table row shows of one label, and reading a filtered set of labels."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from registry.models import Label, Standing, Tier
from registry.pages.common import model_path, vendor_path
from registry.services import queries

VENDOR_PAGE_LABELS = 1000


@dataclass(frozen=True)
class LabelRow:
    """What a table row shows of one label."""

    label_id: str
    vendor: str
    model: str
    revision: str
    task: str
    phase: str
    hardware_class: str
    zone: str
    measured: bool
    grade: str | None
    graded_under: str | None
    percentile: float | None
    energy_wh: float
    energy_ci95_low_wh: float | None
    energy_ci95_high_wh: float
    co2e_g: float
    created_at: datetime
    current: bool
    tier: str = Tier.self_reported
    """``self-reported`` or ``verified`` (an auditor's reproduced figures agree)."""
    standing: str = Standing.ok
    """``ok`` or ``key-compromised`` (logged after its key's reported compromise)."""
    verified_by: tuple[str, ...] = ()
    """Display names of the auditors whose figures agree (filled where a page shows them)."""

    @property
    def verified(self) -> bool:
        return self.tier == Tier.verified

    @property
    def lost_standing(self) -> bool:
        return self.standing != Standing.ok

    @property
    def model_url(self) -> str:
        return model_path(self.vendor, self.model)

    @property
    def vendor_url(self) -> str:
        return vendor_path(self.vendor)


def _ci95_low(label: Label) -> float | None:
    try:
        return float(label.predicate["results"]["energy_per_unit_wh"]["ci95_low"])
    except (KeyError, TypeError, ValueError):
        return None


def label_row(
    label: Label,
    vendor: str,
    model: str,
    percentile: float | None = None,
    verified_by: Sequence[str] = (),
) -> LabelRow:
    return LabelRow(
        label_id=label.id,
        vendor=vendor,
        model=model,
        revision=label.revision,
        task=label.task,
        phase=label.phase,
        hardware_class=label.hardware_class,
        zone=label.zone,
        measured=label.measured,
        grade=label.grade,
        graded_under=label.graded_under,
        percentile=percentile,
        energy_wh=label.energy_per_unit_wh,
        energy_ci95_low_wh=_ci95_low(label),
        energy_ci95_high_wh=label.energy_ci95_high_wh,
        co2e_g=label.co2e_per_unit_g,
        created_at=label.created_at,
        current=label.current,
        tier=label.tier,
        standing=label.standing,
        verified_by=tuple(verified_by),
    )


def with_percentile(session: Session, rows: Iterable[tuple[Label, str, str]]) -> list[LabelRow]:
    return [
        label_row(label, vendor, model, queries.grade_view(session, label)["percentile"])
        for label, vendor, model in rows
    ]


def all_labels(
    session: Session, filters: queries.LabelFilters, *, cap: int
) -> list[tuple[Label, str, str]]:
    """Labels matching ``filters`` (at most ``cap``), following the service's cursor."""
    found: list[tuple[Label, str, str]] = []
    cursor: str | None = None
    while len(found) < cap:
        page, cursor = queries.list_labels(
            session, filters=filters, sort="energy", limit=min(500, cap - len(found)), cursor=cursor
        )
        found.extend(page)
        if cursor is None:
            break
    return found


def row_sort_key(name: str) -> Any:
    keys: dict[str, Any] = {
        "grade": lambda r: (r.grade is None, r.energy_ci95_high_wh, r.vendor, r.model),
        "energy": lambda r: (r.energy_wh, r.vendor, r.model),
        "co2e": lambda r: (r.co2e_g, r.vendor, r.model),
        "model": lambda r: (r.model.lower(), r.vendor, r.hardware_class),
        "vendor": lambda r: (r.vendor, r.model.lower(), r.hardware_class),
        "date": lambda r: (r.created_at, r.vendor, r.model),
    }
    return keys[name]
