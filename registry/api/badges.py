"""Badges and label cards (contract section 4): flat SVG badges, shields.io endpoint JSON, the
label card, and a badge pinned to one label.

The routes are ``async``: a badge served from the per-app cache (:class:`BadgeCache`) costs no
database query and no trip to the thread pool. A miss runs one indexed query in the thread pool;
concurrent misses of the same badge wait for that one query instead of each running their own.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from sqlalchemy import Engine, or_, select
from sqlmodel import Session, col
from starlette.concurrency import run_in_threadpool

from registry import badges
from registry.api.routes import problems
from registry.errors import ProblemError
from registry.models import Label, Model, PublicKey, Standing, Tier, Vendor
from registry.services.audit import verifying_auditors
from registry.services.queries import peer_percentile

router = APIRouter(tags=["badges"])

SVG_MEDIA_TYPE = "image/svg+xml;charset=utf-8"
JSON_MEDIA_TYPE = "application/json"
MUTABLE_CACHE_CONTROL = "max-age=300, s-maxage=300"
IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"
MAX_AGE_S = 300
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

CACHE_TTL_S = 10.0
"""How long a rendered badge is served from memory before the database is asked again: a new
label shows on its model's badge at most this long after it was accepted (downstream HTTP caches
add at most ``max-age`` minus the ``Age`` this cache reports: 300 s in all)."""
CACHE_MAX_ENTRIES = 4096

# What can name a stored vendor, model, task or label: anything else is "not labelled" without
# asking the database (NUL and friends never reach it).
_VENDOR = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_TASK = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_LABEL_ID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
PHASES = ("inference", "training")
MAX_TASK_CHARS = 64
MAX_VENDOR_CHARS = 64
MAX_MODEL_CHARS = 128


# ------------------------------------------------------------------------------------------
# The cache
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """One rendered response body with its headers, encoded once for every answer from it."""

    body: bytes
    etag: str
    immutable: bool
    raw_headers: list[tuple[bytes, bytes]]
    """For a 200 (Content-Length included)."""
    raw_headers_304: list[tuple[bytes, bytes]]
    """For a 304: the same, less Content-Type and Content-Length."""
    stored_at: float = 0.0


class BadgeCache:
    """A small in-process TTL cache of rendered badges, bounded (least recently used out), with
    one renderer per key at a time. One per app (``app.state.badge_cache``)."""

    def __init__(
        self,
        ttl_s: float = CACHE_TTL_S,
        max_entries: int = CACHE_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[Hashable, Rendered] = OrderedDict()
        self._pending: dict[Hashable, asyncio.Event] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, now: float | None = None) -> Rendered | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if (self.clock() if now is None else now) - entry.stored_at >= self.ttl_s:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: Hashable, value: Rendered) -> Rendered:
        stored = replace(value, stored_at=self.clock())
        if self.ttl_s <= 0:
            return stored
        self._entries[key] = stored
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return stored

    def clear(self) -> None:
        self._entries.clear()

    async def get_or_render(self, key: Hashable, render: Callable[[], Rendered]) -> Rendered:
        """The cached entry, or ``render()`` run once in the thread pool for all who ask."""
        while True:
            hit = self.get(key)
            if hit is not None:
                return hit
            pending = self._pending.get(key)
            if pending is None:
                break
            await pending.wait()  # then look again; if that render failed, render ourselves
        done = asyncio.Event()
        self._pending[key] = done
        try:
            return self.put(key, await run_in_threadpool(render))
        finally:
            del self._pending[key]
            done.set()

    def age_s(self, entry: Rendered, now: float | None = None) -> int:
        return max(0, int((self.clock() if now is None else now) - entry.stored_at))


def _cache(request: Request) -> BadgeCache:
    state = request.app.state
    cache: BadgeCache | None = getattr(state, "badge_cache", None)
    if cache is None:
        ttl = float(state.settings.badge_cache_ttl_s)
        cache = BadgeCache(ttl_s=min(ttl, MAX_AGE_S))
        state.badge_cache = cache
    return cache


# ------------------------------------------------------------------------------------------
# Responses
# ------------------------------------------------------------------------------------------


def _rendered(body: str | bytes, *, media_type: str, immutable: bool) -> Rendered:
    data = body.encode("utf-8") if isinstance(body, str) else body
    etag = '"' + hashlib.sha256(data).hexdigest() + '"'
    headers = [
        ("cache-control", IMMUTABLE_CACHE_CONTROL if immutable else MUTABLE_CACHE_CONTROL),
        ("etag", etag),
        ("x-content-type-options", "nosniff"),
    ]
    if media_type == SVG_MEDIA_TYPE:
        headers.append(("content-security-policy", SVG_CSP))
    else:
        headers.append(("access-control-allow-origin", "*"))
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    return Rendered(
        body=data,
        etag=etag,
        immutable=immutable,
        raw_headers=[
            (b"content-type", media_type.encode("latin-1")),
            (b"content-length", str(len(data)).encode("latin-1")),
            *raw,
        ],
        raw_headers_304=raw,
    )


class PreparedResponse(Response):
    """A response from an encoded body and header list: the cached path encodes nothing."""

    def __init__(
        self, body: bytes, raw_headers: list[tuple[bytes, bytes]], status_code: int = 200
    ) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = raw_headers


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match (weak comparison): ``*`` or a list naming ``etag``."""
    if if_none_match.strip() == "*":
        return True
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


def _if_none_match(request: Request) -> str | None:
    """The If-None-Match header (its values joined), read from the raw scope."""
    values = [v for k, v in request.scope["headers"] if k == b"if-none-match"]
    return b",".join(values).decode("latin-1") if values else None


def _respond(
    request: Request, cache: BadgeCache, entry: Rendered, now: float | None = None
) -> Response:
    condition = _if_none_match(request)
    if condition is not None and _matches(condition, entry.etag):
        body, headers, status = b"", list(entry.raw_headers_304), 304
    else:
        body, headers, status = entry.body, list(entry.raw_headers), 200
    if not entry.immutable:
        age = cache.age_s(entry, now)
        if age:  # downstream caches then keep it at most max-age minus this long
            headers.append((b"age", str(age).encode("latin-1")))
    return PreparedResponse(body, headers, status)


@dataclass(frozen=True)
class Options:
    task: str | None
    phase: str | None
    metric: badges.Metric


DEFAULT_OPTIONS = Options(None, None, "grade")
_PARSED: dict[bytes, Options] = {}
"""Valid query strings already parsed (a pure function of the bytes; a few hundred at most)."""
_PARSED_MAX = 256


def _options(request: Request) -> Options:
    """The query options, checked here (not by FastAPI) to keep the cached path short; the
    OpenAPI document declares them through ``QUERY_PARAMETERS``."""
    raw: bytes = request.scope.get("query_string", b"")
    if not raw:
        return DEFAULT_OPTIONS
    known = _PARSED.get(raw)
    if known is not None:
        return known
    options = _parse_options(request)
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[raw] = options
    return options


def _parse_options(request: Request) -> Options:
    query = request.query_params
    task = query.get("task") or None
    phase = query.get("phase") or None
    metric = query.get("metric") or "grade"
    errors = []
    if task is not None and len(task) > MAX_TASK_CHARS:
        errors.append({"pointer": "/query/task", "message": f"at most {MAX_TASK_CHARS} characters"})
    if phase is not None and phase not in PHASES:
        errors.append({"pointer": "/query/phase", "message": f"one of {', '.join(PHASES)}"})
    if metric not in badges.METRICS:
        errors.append(
            {"pointer": "/query/metric", "message": f"one of {', '.join(badges.METRICS)}"}
        )
    if errors:
        raise ProblemError(
            "validation-error", "the request does not match the API's schema", errors=errors
        )
    return Options(task, phase, metric)  # type: ignore[arg-type]


def _check_names(vendor: str, model: str) -> None:
    """422 for a vendor or model name longer than any can be (the OpenAPI document's bounds)."""
    errors = [
        {"pointer": f"/path/{name}", "message": f"at most {limit} characters"}
        for name, value, limit in (
            ("vendor", vendor, MAX_VENDOR_CHARS),
            ("model", model, MAX_MODEL_CHARS),
        )
        if len(value) > limit
    ]
    if errors:
        raise ProblemError(
            "validation-error", "the request does not match the API's schema", errors=errors
        )


def _path_parameter(name: str, description: str, max_length: int) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "maxLength": max_length},
    }


# The handlers read their parameters from the request themselves (no per-request validation by
# the framework on the cached path); these declare them in the OpenAPI document.
MODEL_PATH_PARAMETERS = [
    _path_parameter("vendor", "vendor slug", MAX_VENDOR_CHARS),
    _path_parameter("model", "model name (without the vendor)", MAX_MODEL_CHARS),
]
# Not a UUID: read as a model name of the vendor "label" (see ``label_badge``), hence 128.
LABEL_PATH_PARAMETERS = [_path_parameter("label_id", "label id (UUID)", MAX_MODEL_CHARS)]
QUERY_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "task",
        "in": "query",
        "required": False,
        "allowEmptyValue": True,
        "description": "benchmark task (default: the model's most recently received label)",
        "schema": {"type": "string", "maxLength": MAX_TASK_CHARS},
    },
    {
        "name": "phase",
        "in": "query",
        "required": False,
        "allowEmptyValue": True,
        "description": "inference or training (default: any)",
        "schema": {"type": "string", "enum": list(PHASES)},
    },
    {
        "name": "metric",
        "in": "query",
        "required": False,
        "allowEmptyValue": True,
        "description": "grade (grade and energy), energy, or co2e",
        "schema": {"type": "string", "enum": list(badges.METRICS), "default": "grade"},
    },
]
MODEL_BADGE_PARAMETERS = MODEL_PATH_PARAMETERS + QUERY_PARAMETERS
CARD_PARAMETERS = MODEL_PATH_PARAMETERS + QUERY_PARAMETERS[:2]
LABEL_BADGE_PARAMETERS = [*LABEL_PATH_PARAMETERS, QUERY_PARAMETERS[2]]


def _svg_responses(immutable: bool = False) -> dict[int | str, dict[str, Any]]:
    cache = IMMUTABLE_CACHE_CONTROL if immutable else MUTABLE_CACHE_CONTROL
    return {
        200: {
            "description": f"SVG (Cache-Control: {cache}; strong ETag)",
            "content": {"image/svg+xml": {"schema": {"type": "string"}}},
        },
        304: {"description": "If-None-Match matched the ETag"},
        **problems(422),
    }


# ------------------------------------------------------------------------------------------
# Database look-ups (run in the thread pool)
# ------------------------------------------------------------------------------------------


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
)

# The label a model's badge and card show: its most recently received current label, or, when it
# has none (in the group asked for), its most recently received label that lost its standing, so
# that the badge warns instead of saying "not labelled".
_SHOWN_ORDER = (
    col(Label.current).desc(),
    col(Label.received_at).desc(),
    col(Label.id).desc(),
)


def _current_label_filter(
    vendor: str, model: str, task: str | None, phase: str | None
) -> list[Any]:
    where = [
        col(Vendor.slug) == vendor,
        col(Model.name) == model,
        or_(col(Label.current).is_(True), col(Label.standing) != Standing.ok),
    ]
    if task is not None:
        where.append(col(Label.task) == task)
    if phase is not None:
        where.append(col(Label.phase) == phase)
    return where


def _valid_model_key(vendor: str, model: str, task: str | None) -> bool:
    return bool(
        _VENDOR.match(vendor) and _MODEL.match(model) and (task is None or _TASK.match(task))
    )


def _facts(row: Any) -> badges.BadgeFacts:
    return badges.BadgeFacts(
        grade=row[0],
        measured=row[1],
        energy_per_unit_wh=row[2],
        co2e_per_unit_g=row[3],
        functional_unit=row[4],
        standing=_standing(row[5]),
        tier=_tier(row[6]),
    )


def model_badge_facts(
    engine: Engine, vendor: str, model: str, task: str | None, phase: str | None
) -> badges.BadgeFacts | None:
    """The badge figures of a model's most recently received current label (with that task and
    phase when given): one query on the unique vendor slug, the unique (vendor, name) of models
    and ``ix_labels_model_received``; None when there is none."""
    if not _valid_model_key(vendor, model, task):
        return None
    statement = (
        select(*_BADGE_COLUMNS)
        .join(Model, col(Model.id) == Label.model_id)
        .join(Vendor, col(Vendor.id) == Model.vendor_id)
        .where(*_current_label_filter(vendor, model, task, phase))
        .order_by(*_SHOWN_ORDER)
        .limit(1)
    )
    with engine.connect() as connection:
        row = connection.execute(statement).first()
    return None if row is None else _facts(row)


def label_badge_facts(engine: Engine, label_id: str) -> badges.BadgeFacts | None:
    if not _LABEL_ID.match(label_id):
        return None
    statement = select(*_BADGE_COLUMNS).where(col(Label.id) == label_id.lower())
    with engine.connect() as connection:
        row = connection.execute(statement).first()
    return None if row is None else _facts(row)


def model_card_facts(
    engine: Engine,
    vendor: str,
    model: str,
    task: str | None,
    phase: str | None,
    base_url: str,
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
        .where(*_current_label_filter(vendor, model, task, phase))
        .order_by(*_SHOWN_ORDER)
        .limit(1)
    )
    with Session(engine) as session:
        row = session.execute(statement).first()
        if row is None:
            return None
        label, slug, display_name, name, key_status = row
        percentile = peer_percentile(session, label) if label.measured else None
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
        percentile=percentile,
        url=f"{base_url}/v1/labels/{label.id}",
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
) -> badges.CardFacts:
    """The card's facts: typed columns first, the rest from the stored (validated) label."""
    doc = label.predicate
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
        tier=_tier(label.tier),
        verified_by=verified_by,
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# ------------------------------------------------------------------------------------------
# Routes
# ------------------------------------------------------------------------------------------


async def _model_badge(request: Request, vendor: str, model: str, fmt: str) -> Response:
    _check_names(vendor, model)
    options = _options(request)
    cache = _cache(request)
    key = (fmt, vendor, model, options.task, options.phase, options.metric)
    now: float | None = cache.clock()
    entry = cache.get(key, now)
    if entry is None:
        engine = request.app.state.engine

        def render() -> Rendered:
            facts = model_badge_facts(engine, vendor, model, options.task, options.phase)
            text = badges.badge_text(facts, options.metric)
            if fmt == "json":
                body = orjson.dumps(badges.endpoint_json(text, cache_seconds=MAX_AGE_S))
                return _rendered(body, media_type=JSON_MEDIA_TYPE, immutable=False)
            return _rendered(badges.render_badge(text), media_type=SVG_MEDIA_TYPE, immutable=False)

        entry = await cache.get_or_render(key, render)
        now = None
    return _respond(request, cache, entry, now)


async def _pinned_badge(request: Request, label_id: str) -> Response:
    options = _options(request)
    cache = _cache(request)
    key = ("label", label_id.lower(), options.metric)
    now: float | None = cache.clock()
    entry = cache.get(key, now)
    if entry is None:
        engine = request.app.state.engine

        def render() -> Rendered:
            facts = label_badge_facts(engine, label_id)
            if facts is None:
                text = badges.BadgeText(badges.BADGE_LABEL, "label not found", "lightgrey")
            else:
                text = badges.badge_text(facts, options.metric)
            # Immutable once nothing about the badge can change but a later key compromise:
            # a self-reported label may still be verified.
            immutable = facts is not None and facts.standing == "ok" and facts.tier == "verified"
            return _rendered(
                badges.render_badge(text), media_type=SVG_MEDIA_TYPE, immutable=immutable
            )

        entry = await cache.get_or_render(key, render)
        now = None
    return _respond(request, cache, entry, now)


# Route order: the most requested route first (each route tried costs a few microseconds).
# ``/badge/label/{label_id}.svg`` has the shape of a model badge path of the vendor "label", so
# ``model_badge_svg`` answers it: a label id goes to the pinned badge, anything else stays a
# model badge of the vendor "label" (which keeps its badges). ``label_badge`` below declares the
# path for the OpenAPI document and answers the same way if it is ever reached first.


@router.get(
    "/badge/{vendor}/{model}.svg",
    response_class=Response,
    responses=_svg_responses(),
    openapi_extra={"parameters": MODEL_BADGE_PARAMETERS},
    summary="Flat badge of a model (shields.io layout)",
)
async def model_badge_svg(request: Request) -> Response:
    """``carbon label │ B · 12.4 Wh/1k``: the grade colour and figure of the model's latest
    current label. An unknown model gets a grey "not labelled" badge (200)."""
    params = request.path_params
    vendor, model = params["vendor"], params["model"]
    if vendor == "label" and _LABEL_ID.match(model):
        return await _pinned_badge(request, model)
    return await _model_badge(request, vendor, model, "svg")


@router.get(
    "/badge/{vendor}/{model}.json",
    response_class=Response,
    responses={
        200: {
            "description": "shields.io endpoint JSON (its schema's keys only); CORS open",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        304: {"description": "If-None-Match matched the ETag"},
        **problems(422),
    },
    openapi_extra={"parameters": MODEL_BADGE_PARAMETERS},
    summary="shields.io endpoint JSON of a model's badge",
)
async def model_badge_json(request: Request) -> Response:
    """For ``https://img.shields.io/endpoint?url=<this URL>``."""
    params = request.path_params
    return await _model_badge(request, params["vendor"], params["model"], "json")


@router.get(
    "/label/{vendor}/{model}.svg",
    response_class=Response,
    responses=_svg_responses(),
    openapi_extra={"parameters": CARD_PARAMETERS},
    summary="The label card of a model",
)
async def model_card(request: Request) -> Response:
    """The nutrition-label style card of the model's latest current label: grade and
    percentile, energy with its 95% CI, CO2e with zone, PUE and intensity, hardware, method,
    methodology and grading versions, date, verification and the label's URL."""
    vendor: str = request.path_params["vendor"]
    model: str = request.path_params["model"]
    _check_names(vendor, model)
    options = _options(request)
    cache = _cache(request)
    key = ("card", vendor, model, options.task, options.phase)
    entry = cache.get(key)  # the card is asked for rarely: no need to save a clock read
    if entry is None:
        engine = request.app.state.engine
        base_url = request.app.state.settings.public_url

        def render() -> Rendered:
            facts = model_card_facts(engine, vendor, model, options.task, options.phase, base_url)
            svg = (
                badges.render_unlabelled_card(vendor, model)
                if facts is None
                else badges.render_card(facts)
            )
            return _rendered(svg, media_type=SVG_MEDIA_TYPE, immutable=False)

        entry = await cache.get_or_render(key, render)
    return _respond(request, cache, entry)


@router.get(
    "/badge/label/{label_id}.svg",
    response_class=Response,
    responses=_svg_responses(immutable=True),
    openapi_extra={"parameters": LABEL_BADGE_PARAMETERS},
    summary="Badge pinned to one label (immutable)",
)
async def label_badge(request: Request) -> Response:
    """The badge of one label, whatever labels come later: ``Cache-Control: immutable``.

    An unknown label id gets a grey "label not found" badge (200, cacheable for 300 s only: the
    id may be published later). A path segment that is not a label id is read as a model of the
    vendor ``label``, so that vendor keeps its model badges.
    """
    label_id: str = request.path_params["label_id"]
    if _LABEL_ID.match(label_id):
        return await _pinned_badge(request, label_id)
    return await _model_badge(request, "label", label_id, "svg")
