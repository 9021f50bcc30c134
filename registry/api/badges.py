"""Badges and label cards (contract section 4): flat SVG badges, shields.io endpoint JSON, the
label card, and a badge pinned to one label.

The routes are ``async``: a badge served from the per-app cache (:class:`BadgeCache`) costs no
database query and no trip to the thread pool. A miss runs one indexed query in the thread pool;
concurrent misses of the same badge wait for that one query instead of each running their own.

This module holds the routes, their query options and their OpenAPI declarations; the cache and
the HTTP answers are in ``badge_cache``, the database look-ups in ``badge_facts`` (their public
names are importable from here too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from registry import badges
from registry.api.badge_cache import (
    CACHE_MAX_ENTRIES,
    CACHE_TTL_S,
    IMMUTABLE_CACHE_CONTROL,
    JSON_MEDIA_TYPE,
    MAX_AGE_S,
    MUTABLE_CACHE_CONTROL,
    SVG_CSP,
    SVG_MEDIA_TYPE,
    BadgeCache,
    PreparedResponse,
    Rendered,
    cache_of,
    rendered,
    respond,
)
from registry.api.badge_facts import (
    LABEL_ID,
    card_facts,
    label_badge_facts,
    model_badge_facts,
    model_card_facts,
)
from registry.api.routes import problems
from registry.errors import ProblemError
from schemas.suites import suite_versions

router = APIRouter(tags=["badges"])

__all__ = [
    "CACHE_MAX_ENTRIES",
    "CACHE_TTL_S",
    "CARD_PARAMETERS",
    "DEFAULT_OPTIONS",
    "IMMUTABLE_CACHE_CONTROL",
    "JSON_MEDIA_TYPE",
    "LABEL_BADGE_PARAMETERS",
    "LABEL_PATH_PARAMETERS",
    "MAX_AGE_S",
    "MAX_MODEL_CHARS",
    "MAX_TASK_CHARS",
    "MAX_VENDOR_CHARS",
    "MODEL_BADGE_PARAMETERS",
    "MODEL_PATH_PARAMETERS",
    "MUTABLE_CACHE_CONTROL",
    "PHASES",
    "QUERY_PARAMETERS",
    "SVG_CSP",
    "SVG_MEDIA_TYPE",
    "BadgeCache",
    "Options",
    "PreparedResponse",
    "Rendered",
    "card_facts",
    "label_badge",
    "label_badge_facts",
    "model_badge_json",
    "model_badge_svg",
    "model_card",
    "model_card_facts",
    "router",
]

PHASES = ("inference", "training")
MAX_TASK_CHARS = 64
MAX_VENDOR_CHARS = 64
MAX_MODEL_CHARS = 128


@dataclass(frozen=True)
class Options:
    task: str | None
    phase: str | None
    metric: badges.Metric
    suite: str | None = None
    """None: the newest suite the model has a label for."""
    quality: bool = False
    """``?quality=true``: the message ends with the measured quality figure."""


DEFAULT_OPTIONS = Options(None, None, "grade")
BOOLEANS = {"true": True, "false": False}
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
    suite = query.get("suite") or None
    quality = query.get("quality") or "false"
    errors = []
    if task is not None and len(task) > MAX_TASK_CHARS:
        errors.append({"pointer": "/query/task", "message": f"at most {MAX_TASK_CHARS} characters"})
    if phase is not None and phase not in PHASES:
        errors.append({"pointer": "/query/phase", "message": f"one of {', '.join(PHASES)}"})
    if metric not in badges.METRICS:
        errors.append(
            {"pointer": "/query/metric", "message": f"one of {', '.join(badges.METRICS)}"}
        )
    if suite is not None and suite not in suite_versions():
        errors.append(
            {"pointer": "/query/suite", "message": f"one of {', '.join(suite_versions())}"}
        )
    if quality not in BOOLEANS:
        errors.append({"pointer": "/query/quality", "message": "true or false"})
    if errors:
        raise ProblemError(
            "validation-error", "the request does not match the API's schema", errors=errors
        )
    return Options(task, phase, metric, suite, BOOLEANS[quality])  # type: ignore[arg-type]


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


# A URL carrying NUL is refused before routing (400, registry/middleware.py): the schemas say so.
NO_NUL = "^[^\\u0000]*$"


def _path_parameter(name: str, description: str, max_length: int) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "maxLength": max_length, "pattern": NO_NUL},
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
        "schema": {"type": "string", "maxLength": MAX_TASK_CHARS, "pattern": NO_NUL},
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
        "description": "grade (grade and energy), energy, co2e (operational), or co2e-total "
        "(operational + embodied; 'operational only' when the label has no embodied figure)",
        "schema": {"type": "string", "enum": list(badges.METRICS), "default": "grade"},
    },
    {
        "name": "suite",
        "in": "query",
        "required": False,
        "allowEmptyValue": True,
        "description": "suite version of the label shown (default: the newest suite the model "
        "has a label for)",
        "schema": {"type": "string", "enum": suite_versions()},
    },
    {
        "name": "quality",
        "in": "query",
        "required": False,
        "allowEmptyValue": True,
        "description": "true: the message ends with the label's measured quality figure and its "
        "metric (` · 41.5% GSM8K`), or `quality not reported` (suite 1) / `quality unavailable` "
        "(a suite-2 label that says why it has none); declared figures are never shown. false "
        "(default): the message is unchanged",
        "schema": {"type": "string", "enum": list(BOOLEANS), "default": "false"},
    },
]
_PARAMETER = {p["name"]: p for p in QUERY_PARAMETERS}
MODEL_BADGE_PARAMETERS = MODEL_PATH_PARAMETERS + QUERY_PARAMETERS
CARD_PARAMETERS = MODEL_PATH_PARAMETERS + [_PARAMETER[n] for n in ("task", "phase", "suite")]
LABEL_BADGE_PARAMETERS = [*LABEL_PATH_PARAMETERS, _PARAMETER["metric"], _PARAMETER["quality"]]


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
# Routes
# ------------------------------------------------------------------------------------------


async def _model_badge(request: Request, vendor: str, model: str, fmt: str) -> Response:
    _check_names(vendor, model)
    options = _options(request)
    cache = cache_of(request)
    key = (fmt, vendor, model, options)
    now: float | None = cache.clock()
    entry = cache.get(key, now)
    if entry is None:
        engine = request.app.state.engine

        def render() -> Rendered:
            facts = model_badge_facts(
                engine,
                vendor,
                model,
                options.task,
                options.phase,
                options.suite,
                embodied=options.metric == "co2e-total",
            )
            text = badges.badge_text(facts, options.metric, quality=options.quality)
            if fmt == "json":
                body = orjson.dumps(badges.endpoint_json(text, cache_seconds=MAX_AGE_S))
                return rendered(body, media_type=JSON_MEDIA_TYPE, immutable=False)
            return rendered(badges.render_badge(text), media_type=SVG_MEDIA_TYPE, immutable=False)

        entry = await cache.get_or_render(key, render)
        now = None
    return respond(request, cache, entry, now)


async def _pinned_badge(request: Request, label_id: str) -> Response:
    options = _options(request)
    cache = cache_of(request)
    key = ("label", label_id.lower(), options.metric, options.quality)
    now: float | None = cache.clock()
    entry = cache.get(key, now)
    if entry is None:
        engine = request.app.state.engine

        def render() -> Rendered:
            facts = label_badge_facts(engine, label_id, embodied=options.metric == "co2e-total")
            if facts is None:
                text = badges.BadgeText(badges.BADGE_LABEL, "label not found", "lightgrey")
            else:
                text = badges.badge_text(facts, options.metric, quality=options.quality)
            # Immutable once nothing about the badge can change but a later key compromise:
            # a self-reported label may still be verified.
            immutable = facts is not None and facts.standing == "ok" and facts.tier == "verified"
            return rendered(
                badges.render_badge(text), media_type=SVG_MEDIA_TYPE, immutable=immutable
            )

        entry = await cache.get_or_render(key, render)
        now = None
    return respond(request, cache, entry, now)


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
    current label of the newest suite it has one for (``suite`` picks another). ``quality=true``
    appends the label's measured quality figure (``B · 39.6 Wh/1k requests · 62.0% GSM8K``, or
    ``quality not reported`` / ``quality unavailable``); without it the message is unchanged. An
    unknown model gets a grey "not labelled" badge (200)."""
    params = request.path_params
    vendor, model = params["vendor"], params["model"]
    if vendor == "label" and LABEL_ID.match(model):
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
    """For ``https://img.shields.io/endpoint?url=<this URL>``: the same message as the SVG badge
    with the same options (``quality=true`` appends the measured quality figure)."""
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
    """The nutrition-label style card of the model's latest current label (of the newest suite
    it has one for, or ``suite``): grade with its model-size class and percentile, energy with
    its 95% CI (and per output token for text generation), quality (the measured figure with its
    metric and items, why there is none, or "not reported"; declared figures flagged), CO2e with
    zone, PUE and intensity, hardware, method, suite, methodology and grading versions, date,
    verification and the label's URL."""
    vendor: str = request.path_params["vendor"]
    model: str = request.path_params["model"]
    _check_names(vendor, model)
    options = _options(request)
    cache = cache_of(request)
    key = ("card", vendor, model, options.task, options.phase, options.suite)
    entry = cache.get(key)  # the card is asked for rarely: no need to save a clock read
    if entry is None:
        engine = request.app.state.engine
        base_url = request.app.state.settings.public_url

        def render() -> Rendered:
            facts = model_card_facts(
                engine, vendor, model, options.task, options.phase, base_url, options.suite
            )
            svg = (
                badges.render_unlabelled_card(vendor, model)
                if facts is None
                else badges.render_card(facts)
            )
            return rendered(svg, media_type=SVG_MEDIA_TYPE, immutable=False)

        entry = await cache.get_or_render(key, render)
    return respond(request, cache, entry)


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
    if LABEL_ID.match(label_id):
        return await _pinned_badge(request, label_id)
    return await _model_badge(request, "label", label_id, "svg")
