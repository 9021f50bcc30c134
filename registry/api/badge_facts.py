"""The database look-ups of the badge routes (run in the thread pool): which label a model's
badge or card shows, and the figures of a badge, a pinned badge and a card."""

from __future__ import annotations

import functools
import re
from typing import Any

from sqlalchemy import Engine, and_, bindparam, func, or_, select
from sqlmodel import Session, col

from registry import badges
from registry.db import first_row
from registry.models import Label, LabelKind, Model, PublicKey, Standing, Tier, Vendor
from registry.services.audit import verifying_auditors
from registry.services.queries import peer_rank, serving_summary
from registry.services.workloads import NON_STANDARD_WORKLOAD
from schemas.suites import meter_bias, size_class_label

# What can name a stored vendor, model, task or label: anything else is "not labelled" without
# asking the database (NUL and friends never reach it).
_VENDOR = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_TASK = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
LABEL_ID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def _standing(standing: str) -> badges.Standing:
    """The badge's standing from ``labels.standing``, which the key-revocation service keeps:
    a label logged after its key's ``compromised_since`` has lost it."""
    return "ok" if standing == Standing.ok else "compromised"


def _tier(tier: str) -> badges.Tier:
    return "verified" if tier == Tier.verified else "self-reported"


_BADGE_COLUMNS = (
    col(Label.grade),
    col(Label.measured),
    col(Label.energy_per_unit_wh),
    col(Label.co2e_per_unit_g),
    col(Label.functional_unit),
    col(Label.standing),
    col(Label.tier),
    col(Label.suite),
    col(Label.quality),
    col(Label.quality_metric),
)

# The label a model's badge and card show: of the newest suite the model has a label for (suite
# versions are digit strings: the longer, then the greater, is the newer), its most recently
# received current label, or, when it has none (in the group asked for), its most recently
# received label that lost its standing, so that the badge warns instead of saying "not labelled".
_SHOWN_ORDER = (
    col(Label.current).desc(),
    func.length(col(Label.suite)).desc(),
    col(Label.suite).desc(),
    col(Label.received_at).desc(),
    col(Label.id).desc(),
)


def _current_label_filter(
    vendor: Any, model: Any, task: Any | None, phase: Any | None, suite: Any | None = None
) -> list[Any]:
    """The shown label's conditions; each argument a value or a bound parameter (None: any)."""
    where = [
        col(Vendor.slug) == vendor,
        col(Model.name) == model,
        # a label that lost its standing is shown (flagged) only where it would be current: a
        # benchmark label (production periods and training runs are never a badge's label)
        or_(
            col(Label.current),
            and_(col(Label.standing) != Standing.ok, col(Label.kind) == LabelKind.benchmark),
        ),
    ]
    if task is not None:
        where.append(col(Label.task) == task)
    if phase is not None:
        where.append(col(Label.phase) == phase)
    if suite is not None:
        where.append(col(Label.suite) == suite)
    return where


def _valid_model_key(vendor: str, model: str, task: str | None) -> bool:
    return bool(
        _VENDOR.match(vendor) and _MODEL.match(model) and (task is None or _TASK.match(task))
    )


# The embodied CO2e of a label, for ``metric=co2e-total`` only (it is read from the stored
# document, which a plain badge never touches).
_EMBODIED_G = col(Label.predicate)[("carbon", "embodied", "co2e_per_unit_g")].as_float()


def _facts(row: Any) -> badges.BadgeFacts:
    return badges.BadgeFacts(
        grade=row[0],
        measured=row[1],
        energy_per_unit_wh=row[2],
        co2e_per_unit_g=row[3],
        functional_unit=row[4],
        standing=_standing(row[5]),
        tier=_tier(row[6]),
        suite=row[7],
        quality=row[8],
        quality_metric=row[9],
        embodied_co2e_per_unit_g=row[10] if len(row) > 10 else None,
    )


@functools.cache
def _model_badge_statement(task: bool, phase: bool, suite: bool, embodied: bool) -> Any:
    """The model badge's statement for the filters given, built once: a statement built per
    request costs more Python (its cache key) than the database spends running it."""
    return (
        select(*_BADGE_COLUMNS, *((_EMBODIED_G,) if embodied else ()))
        .join(Model, col(Model.id) == Label.model_id)
        .join(Vendor, col(Vendor.id) == Model.vendor_id)
        .where(
            *_current_label_filter(
                bindparam("vendor"),
                bindparam("model"),
                bindparam("task") if task else None,
                bindparam("phase") if phase else None,
                bindparam("suite") if suite else None,
            )
        )
        .order_by(*_SHOWN_ORDER)
        .limit(1)
    )


_LABEL_BADGE_STATEMENTS = {
    embodied: select(*_BADGE_COLUMNS, *((_EMBODIED_G,) if embodied else ())).where(
        col(Label.id) == bindparam("label_id")
    )
    for embodied in (False, True)
}


def model_badge_facts(
    engine: Engine,
    vendor: str,
    model: str,
    task: str | None,
    phase: str | None,
    suite: str | None = None,
    *,
    embodied: bool = False,
) -> badges.BadgeFacts | None:
    """The badge figures of a model's most recently received current label of the newest suite
    it has one for (with that task, phase and suite when given): one query on the unique vendor
    slug, the unique (vendor, name) of models and ``ix_labels_model_received``; None when there
    is none. ``embodied``: read the label's embodied CO2e too."""
    if not _valid_model_key(vendor, model, task):
        return None
    statement = _model_badge_statement(
        task is not None, phase is not None, suite is not None, embodied
    )
    params = {"vendor": vendor, "model": model, "task": task, "phase": phase, "suite": suite}
    row = first_row(engine, statement, params)
    return None if row is None else _facts(row)


def label_badge_facts(
    engine: Engine, label_id: str, *, embodied: bool = False
) -> badges.BadgeFacts | None:
    if not LABEL_ID.match(label_id):
        return None
    row = first_row(engine, _LABEL_BADGE_STATEMENTS[embodied], {"label_id": label_id.lower()})
    return None if row is None else _facts(row)


def model_card_facts(
    engine: Engine,
    vendor: str,
    model: str,
    task: str | None,
    phase: str | None,
    base_url: str,
    suite: str | None = None,
) -> badges.CardFacts | None:
    if not _valid_model_key(vendor, model, task):
        return None
    statement = (
        select(
            Label,
            col(Vendor.slug),
            col(Vendor.display_name),
            col(Model.name),
            col(PublicKey.status),
        )
        .join(Model, col(Model.id) == Label.model_id)
        .join(Vendor, col(Vendor.id) == Model.vendor_id)
        .outerjoin(PublicKey, col(PublicKey.keyid) == Label.keyid)
        .where(*_current_label_filter(vendor, model, task, phase, suite))
        .order_by(*_SHOWN_ORDER)
        .limit(1)
    )
    with Session(engine) as session:
        row = session.execute(statement).first()
        if row is None:
            return None
        label, slug, display_name, name, key_status = row
        rank = peer_rank(session, label)  # None when not compared
        verified_by = (
            verifying_auditors(session, [label.id]).get(label.id, [])
            if label.tier == Tier.verified
            else []
        )
    return card_facts(
        label,
        vendor=slug,
        display_name=display_name,
        model=name,
        key_status=key_status,
        standing=_standing(label.standing),
        percentile=rank.shown if rank is not None else None,
        peers=rank.peers if rank is not None else None,
        url=f"{base_url}/v1/labels/{label.id}",
        method_url=f"{base_url}/methodology",
        verified_by=tuple(verified_by),
    )


def _dig(document: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def card_facts(
    label: Label,
    *,
    vendor: str,
    display_name: str,
    model: str,
    key_status: str | None,
    standing: badges.Standing,
    percentile: float | None,
    url: str,
    verified_by: tuple[str, ...] = (),
    method_url: str = "",
    peers: int | None = None,
) -> badges.CardFacts:
    """The card's facts: typed columns first, the rest from the stored (validated) label."""
    doc = label.predicate
    quality = _dig(doc, "quality")
    items = _dig(quality, "measured", "items")
    reason = _dig(quality, "unavailable_reason")
    components = _dig(doc, "measurement", "components") or []
    count = _dig(doc, "hardware", "accelerator", "count")
    accelerator = _dig(doc, "hardware", "accelerator", "model_name")
    return badges.CardFacts(
        vendor=vendor,
        vendor_display_name=display_name,
        model=model,
        revision=label.revision,
        task=label.task,
        phase=label.phase,
        functional_unit=label.functional_unit,
        measured=label.measured,
        grade=label.grade,
        graded_under=label.graded_under,
        percentile=percentile,
        peers=peers,
        methodology_version=_str(_dig(doc, "measurement", "methodology_version")),
        energy_mean_wh=label.energy_per_unit_wh,
        energy_ci95_low_wh=_float(_dig(doc, "results", "energy_per_unit_wh", "ci95_low")),
        energy_ci95_high_wh=label.energy_ci95_high_wh,
        co2e_mean_g=label.co2e_per_unit_g,
        zone=label.zone,
        pue=_float(_dig(doc, "carbon", "pue")),
        intensity_g_per_kwh=_float(_dig(doc, "carbon", "intensity_g_per_kwh")),
        carbon_basis=_str(_dig(doc, "carbon", "basis")),
        accelerator=_str(accelerator) if accelerator != "none" else None,
        accelerator_count=count if isinstance(count, int) else None,
        hardware_class=label.hardware_class,
        components=tuple(
            (str(c.get("name", "?")), str(c.get("method", "?")))
            for c in components
            if isinstance(c, dict)
        ),
        created_at=label.created_at,
        keyid=label.keyid,
        key_status=key_status,
        standing=standing,
        url=url,
        method_url=method_url,
        tier=_tier(label.tier),
        verified_by=verified_by,
        suite=label.suite,
        size_class_label=size_class_label(label.suite, label.size_class)
        if label.size_class
        else "",
        ungraded_reason=(
            NON_STANDARD_WORKLOAD if label.measured and not label.standard_workload else None
        ),
        quality_status=badges.quality_status(label.suite, label.quality),
        quality_metric=label.quality_metric,
        quality_value=label.quality,
        quality_items=items if isinstance(items, int) and label.quality is not None else None,
        quality_reason=reason if isinstance(reason, str) else None,
        declared=badges.declared_figures(quality if isinstance(quality, dict) else None),
        energy_per_output_token_j=label.energy_per_output_token_j,
        meter_bias_relative=meter_bias(label.hardware_class)["relative"]
        if label.graded_under not in (None, "1")
        else None,
        **_serving_facts(label),
        **_footprint_facts(doc),
    )


def _footprint_facts(doc: Any) -> dict[str, Any]:
    """The card's market-based CO2e, embodied CO2e and water (``services.footprint``: figure,
    or why none)."""
    embodied = _dig(doc, "carbon", "embodied")
    water = _dig(doc, "carbon", "water")
    market = _dig(doc, "carbon", "market")
    offsite = _dig(water, "offsite", "status") if isinstance(water, dict) else None
    return {
        "dynamic_wh": _float(_dig(doc, "results", "dynamic_energy_per_unit_wh")),
        "idle_power_w": _float(_dig(doc, "results", "idle_power_w")),
        "market_g": _float(_dig(market, "co2e_per_unit_g")),
        "cfe_score": _float(_dig(market, "cfe_score")),
        "embodied_g": _float(_dig(embodied, "co2e_per_unit_g")),
        "embodied_status": str(embodied.get("status"))
        if isinstance(embodied, dict)
        else "not-reported",
        "water_l": _float(_dig(water, "per_unit_l")),
        "water_status": str(offsite) if isinstance(water, dict) else "not-reported",
    }


def _serving_facts(label: Label) -> dict[str, Any]:
    """chat-serving: the headline concurrency and the engine the card names."""
    summary = serving_summary(label.predicate) if label.task == "chat-serving" else None
    if summary is None:
        return {}
    engine = summary["engine"]
    return {
        "serving_concurrency": summary["headline_concurrency"],
        "serving_engine": " ".join(p for p in (engine["name"], engine["version"]) if p),
        "serving_engine_declared": engine["source"] == "declared",
    }


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
