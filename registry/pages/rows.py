"""Label views: what a table row shows of one label, and reading a filtered set of labels."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from registry.badges.quality import (
    DeclaredFigure,
    QualityStatus,
    declared_figures,
    format_share,
    metric_name,
    metric_short,
    quality_status,
    short_reason,
)
from registry.models import Label, Standing, Tier
from registry.pages.common import model_path, unit_short_for, vendor_path
from registry.records import frozen_from
from registry.services import queries
from registry.services.workloads import NON_STANDARD_WORKLOAD
from schemas.suites import SUITE_1, size_class_label

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
    peers: int | None = None
    """Current measured peers (``percentile`` is None below ``MIN_PEERS`` of them); None for a
    label that is not compared."""
    tier: str = Tier.self_reported
    """``self-reported`` or ``verified`` (an auditor's reproduced figures agree)."""
    standing: str = Standing.ok
    """``ok`` or ``key-compromised`` (logged after its key's reported compromise)."""
    verified_by: tuple[str, ...] = ()
    """Display names of the auditors whose figures agree (filled where a page shows them)."""
    suite: str = SUITE_1
    size_class: str = ""
    functional_unit: str = "1k-inferences"
    quality: float | None = None
    """The MEASURED quality figure (0..1); declared figures are in ``declared``."""
    quality_metric: str | None = None
    quality_status: QualityStatus = "not-reported"
    quality_items: int | None = None
    quality_reason: str | None = None
    declared: tuple[DeclaredFigure, ...] = ()
    energy_per_output_token_j: float | None = None
    ungraded_reason: str | None = None
    """``non-standard-workload``: a shortened suite-2 run, shown but not graded."""
    serving_concurrency: int | None = None
    """chat-serving: the headline level's concurrency (the level the row's figures are of)."""
    serving_engine: str | None = None
    """chat-serving: the engine measured (``vllm 0.11.0``)."""

    @classmethod
    def of(cls, fields: dict[str, Any]) -> LabelRow:
        """A row from every field by name, without the frozen dataclass's ``__init__``
        (:func:`registry.records.frozen_from`; a leaderboard page builds 50 rows)."""
        return frozen_from(cls, fields)

    @property
    def size_class_label(self) -> str:
        """``≤ 20B parameters``; "" where the label has no size class."""
        return size_class_label(self.suite, self.size_class) if self.size_class else ""

    @property
    def unit(self) -> str:
        """The short unit of the energy figure (``Wh/1k``, ``Wh / 1k requests``)."""
        return unit_short_for(self.functional_unit)

    @property
    def quality_text(self) -> str:
        """``41.5%``, ``not reported`` or the reason there is none, shortened."""
        if self.quality_status == "measured":
            return format_share(self.quality)
        if self.quality_status == "unavailable":
            return short_reason(self.quality_reason)
        return "not reported"

    @property
    def metric_name(self) -> str:
        return metric_name(self.quality_metric)

    @property
    def metric_short(self) -> str:
        return metric_short(self.quality_metric)

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


def _quality_parts(label: Label) -> dict[str, Any]:
    """The quality fields of a row: the measured figure from its column, the items, the reason
    there is none and the declared figures from the stored label."""
    found = label.predicate.get("quality")
    stated: dict[str, Any] = found if isinstance(found, dict) else {}
    measured: dict[str, Any] = stated.get("measured") or {}
    items = measured.get("items")
    reason = stated.get("unavailable_reason")
    return {
        "quality": label.quality,
        "quality_metric": label.quality_metric,
        "quality_status": quality_status(label.suite, label.quality),
        "quality_items": items if isinstance(items, int) and label.quality is not None else None,
        "quality_reason": reason if isinstance(reason, str) else None,
        "declared": declared_figures(stated),
    }


def _serving_parts(label: Label) -> dict[str, Any]:
    """chat-serving: the headline concurrency and the engine, from the stored label."""
    summary = queries.serving_summary(label.predicate) if label.task == "chat-serving" else None
    if summary is None:
        return {}
    engine = summary["engine"]
    return {
        "serving_concurrency": summary["headline_concurrency"],
        "serving_engine": " ".join(str(p) for p in (engine["name"], engine["version"]) if p),
    }


def _ungraded_reason(label: Label) -> str | None:
    if label.measured and not label.standard_workload:
        return NON_STANDARD_WORKLOAD
    return None


def label_row(
    label: Label,
    vendor: str,
    model: str,
    percentile: float | None = None,
    verified_by: Sequence[str] = (),
    peers: int | None = None,
) -> LabelRow:
    return LabelRow.of(
        {
            "label_id": label.id,
            "vendor": vendor,
            "model": model,
            "revision": label.revision,
            "task": label.task,
            "phase": label.phase,
            "hardware_class": label.hardware_class,
            "zone": label.zone,
            "measured": label.measured,
            "grade": label.grade,
            "graded_under": label.graded_under,
            "percentile": percentile,
            "peers": peers,
            "energy_wh": label.energy_per_unit_wh,
            "energy_ci95_low_wh": _ci95_low(label),
            "energy_ci95_high_wh": label.energy_ci95_high_wh,
            "co2e_g": label.co2e_per_unit_g,
            "created_at": label.created_at,
            "current": label.current,
            "tier": label.tier,
            "standing": label.standing,
            "verified_by": tuple(verified_by),
            "suite": label.suite,
            "size_class": label.size_class,
            "functional_unit": label.functional_unit,
            "energy_per_output_token_j": label.energy_per_output_token_j,
            "ungraded_reason": _ungraded_reason(label),
            "serving_concurrency": None,
            "serving_engine": None,
            **_quality_parts(label),
            **_serving_parts(label),
        }
    )


def with_percentile(session: Session, rows: Iterable[tuple[Label, str, str]]) -> list[LabelRow]:
    """Rows with their peer percentiles (withheld for labels that lost their standing), read
    in one statement."""
    listed = list(rows)
    found = queries.peer_ranks(
        session, [label for label, _, _ in listed if label.standing == Standing.ok]
    )
    return [
        ranked_row(label, vendor, model, found.get(label.id)) for label, vendor, model in listed
    ]


def ranked_row(label: Label, vendor: str, model: str, rank: queries.PeerRank | None) -> LabelRow:
    """:func:`label_row` with the label's place among its peers (the percentile from
    ``MIN_PEERS`` peers on, and the number of peers)."""
    if rank is None:
        return label_row(label, vendor, model)
    return label_row(label, vendor, model, rank.shown, peers=rank.peers)


def all_labels(
    session: Session, filters: queries.LabelFilters, *, cap: int
) -> list[tuple[Label, str, str]]:
    """Labels matching ``filters`` (at most ``cap``), following the service's cursor; brief
    labels (``services.briefs``: no envelope, only the listed parts of the document)."""
    found: list[tuple[Label, str, str]] = []
    cursor: str | None = None
    while len(found) < cap:
        page, cursor = queries.list_labels(
            session,
            filters=filters,
            sort="energy",
            limit=min(500, cap - len(found)),
            cursor=cursor,
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
        "quality": lambda r: (r.quality is None, r.quality or 0.0, r.vendor, r.model),
    }
    return keys[name]


def sort_rows(rows: list[LabelRow], key: str, descending: bool) -> None:
    """Sort in place by a column; rows without a quality figure stay last either way."""
    rows.sort(key=row_sort_key(key), reverse=descending)
    if key == "quality":
        rows.sort(key=lambda r: r.quality is None)
