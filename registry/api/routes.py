"""The JSON API of contract section 3 (the transparency log comes later)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from sqlmodel import Session

from registry.api.deps import (
    CurrentVendor,
    RawBody,
    SessionDep,
    SettingsDep,
    TokenDep,
    is_admin,
    require_admin,
)
from registry.errors import PROBLEM_MEDIA_TYPE, ProblemError
from registry.models import KeyStatus, Label
from registry.services import keys as key_service
from registry.services import profiles, projection, queries, translog
from registry.services import vendors as vendor_service
from registry.services.ingest import ingest
from schemas import grid
from schemas.suites import suite_spec, suite_versions


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem responses a route can give."""
    return {
        status: {
            "description": "RFC 9457 problem",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


# The raw body of the routes that take a DSSE envelope, documented as one.
ENVELOPE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}},
    }
}

router = APIRouter(prefix="/v1", tags=["v1"])

SortChoice = Literal[
    "-received_at", "received_at", "-created_at", "created_at", "energy", "-energy", "co2e", "-co2e"
]
# Every string the API accepts has a maximum length (tests/test_abuse.py walks the OpenAPI).
VendorPath = Annotated[str, Path(max_length=64, description="vendor slug")]
ModelPath = Annotated[str, Path(max_length=128, description="model name (without the vendor)")]
LabelIdPath = Annotated[str, Path(max_length=36, description="label id (UUID)")]
KeyIdPath = Annotated[str, Path(max_length=64, description="key id (hex SHA-256 of the key)")]


def size_class_names() -> list[str]:
    """Every model-size class a suite of the methodology defines."""
    names = (c["name"] for v in suite_versions() for c in suite_spec(v).get("size_classes", []))
    return list(dict.fromkeys(names))


SuiteQuery = Annotated[
    str | None,
    Query(
        max_length=8,
        description="suite version of the methodology",
        json_schema_extra={"enum": suite_versions()},
    ),
]
SizeClassQuery = Annotated[
    str | None,
    Query(
        max_length=24,
        description="model-size class (suite 2 text generation)",
        json_schema_extra={"enum": size_class_names()},
    ),
]
MinQualityQuery = Annotated[
    float | None,
    Query(
        ge=0,
        le=1,
        description="only labels whose measured quality figure is at least this (0..1); labels "
        "without a measured figure are left out",
    ),
]


def invalid_query(parameter: str, message: str) -> ProblemError:
    """A 422 validation-error problem pointing at a query parameter."""
    return ProblemError(
        "validation-error",
        "the request does not match the API's schema",
        errors=[{"pointer": f"/query/{parameter}", "message": message}],
    )


def check_suite_filters(suite: str | None, size_class: str | None) -> None:
    """422 for a suite or size class the methodology does not define."""
    if suite is not None and suite not in suite_versions():
        raise invalid_query("suite", f"unknown suite; one of {suite_versions()}")
    if size_class is not None and size_class not in size_class_names():
        raise invalid_query("size_class", f"unknown size class; one of {size_class_names()}")


class VendorCreate(BaseModel):
    slug: str = Field(
        min_length=1, max_length=64, pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
    )
    display_name: str | None = Field(default=None, max_length=200)


class VendorCreated(BaseModel):
    vendor: str
    display_name: str
    token: str = Field(description="the vendor's API token: shown this once, stored hashed")


class KeyCreate(BaseModel):
    public_key: str = Field(
        max_length=128, description="base64 (standard or URL-safe) of the raw 32-byte Ed25519 key"
    )
    proof: str = Field(
        max_length=256,
        description=(
            "base64 Ed25519 signature, by this key, over the UTF-8 bytes of "
            "'carbonlabel key registration v1\\n<registry>\\n<vendor>\\n<keyid>\\n'"
        ),
    )


def _at_most_64_chars(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 64:
        raise ValueError("at most 64 characters")
    return value


# An RFC 3339 instant; the parser alone would take any number of fraction digits.
Instant = Annotated[
    datetime,
    BeforeValidator(_at_most_64_chars),
    WithJsonSchema({"type": "string", "format": "date-time", "maxLength": 64}),
]


class KeyRevoke(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={  # compromised_since only with reason 'compromised'
            "if": {"properties": {"reason": {"const": "retired"}}},
            "then": {"properties": {"compromised_since": {"type": "null"}}},
        }
    )

    reason: Literal["retired", "compromised"]
    compromised_since: Instant | None = Field(
        default=None, description="RFC 3339; only with reason 'compromised' (default: now)"
    )


@router.post(
    "/vendors",
    status_code=201,
    response_model=VendorCreated,
    dependencies=[Depends(require_admin)],
    responses=problems(401, 409, 413, 422),
)
def create_vendor(
    body: VendorCreate, session: SessionDep, settings: SettingsDep, response: Response
) -> VendorCreated:
    # Not logged: it changes no answer that had a validator (its page was a 404; http_cache.py).
    vendor, token = vendor_service.create_vendor(
        session, slug=body.slug, display_name=body.display_name
    )
    session.commit()
    response.headers["Location"] = f"{settings.public_url}/v1/vendors/{vendor.slug}"
    return VendorCreated(vendor=vendor.slug, display_name=vendor.display_name, token=token)


@router.post(
    "/vendors/{vendor}/keys", status_code=201, responses=problems(401, 403, 404, 409, 413, 422)
)
def register_key(
    vendor: VendorPath,
    body: KeyCreate,
    session: SessionDep,
    caller: CurrentVendor,
    settings: SettingsDep,
    response: Response,
) -> dict[str, Any]:
    if caller.slug != vendor:
        raise ProblemError("forbidden", f"the token belongs to {caller.slug!r}, not {vendor!r}")
    key = key_service.register_key(
        session,
        vendor=caller,
        public_key_b64=body.public_key,
        proof_b64=body.proof,
        registry=settings.public_url,
    )
    session.commit()
    response.headers["Location"] = f"{settings.public_url}/v1/vendors/{vendor}"
    return profiles.key_view(key)


@router.post("/vendors/{vendor}/keys/{keyid}/revoke", responses=problems(401, 403, 404, 413, 422))
def revoke_key(
    vendor: VendorPath,
    keyid: KeyIdPath,
    body: KeyRevoke,
    session: SessionDep,
    settings: SettingsDep,
    token: TokenDep,
) -> dict[str, Any]:
    if not is_admin(settings, token):
        caller = vendor_service.authenticate(session, token)
        if caller is None:
            raise ProblemError("unauthorized", "the API token is not valid")
        if caller.slug != vendor:
            raise ProblemError("forbidden", f"the token belongs to {caller.slug!r}, not {vendor!r}")
    owner = vendor_service.get_vendor(session, vendor)
    key = key_service.get_key(session, vendor=owner, keyid=keyid)
    key_service.revoke_key(
        session,
        vendor=owner,
        key=key,
        reason=KeyStatus(body.reason),
        compromised_since=body.compromised_since,
    )
    session.commit()
    return profiles.key_view(key)


JSON_OBJECT: dict[int | str, dict[str, Any]] = {
    200: {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
}


def json_response(body: Any) -> Response:
    """A JSON answer serialised once by orjson (no model validation of the label documents it
    carries: they were validated when accepted)."""
    return Response(orjson.dumps(body), media_type="application/json")


@router.post(
    "/labels",
    status_code=201,
    responses={
        201: JSON_OBJECT[200] | {"description": "Created: the stored label"},
        200: JSON_OBJECT[200]
        | {"description": "the same envelope was stored before: the stored label"},
        **problems(400, 401, 403, 409, 413, 422, 429),
    },
    openapi_extra=ENVELOPE_BODY,
    response_class=Response,
)
def submit_label(
    request: Request,
    token: TokenDep,
    body: RawBody,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    # Authenticated by ingest rather than through the CurrentVendor dependency: the hot path
    # then makes one trip to the thread pool instead of two, and the token is checked in the
    # statement that reads the vendor's keys (a 401 still comes before any other refusal).
    # (carbonlabel_label_submissions_total counts the answer, in registry/metrics.py)
    result = ingest(session, token=token, body=body, audience=settings.public_url)
    session.commit()
    caller = result.vendor
    label = result.label
    view = queries.label_summary(label, caller.slug, result.model_name, settings.public_url)
    if result.logged is not None:  # no reads needed: all of it came with the store
        view["grade"] = queries.grade_view(session, label, result.rank)
        view["receipt"] = translog.appended_receipt(request.app.state.log_signer, result.logged)
    else:
        view["grade"] = queries.grade_view(session, label)
        view["receipt"] = label_receipt(session, request, label)
    t = result.timings
    response = json_response(view)
    response.headers["Server-Timing"] = (
        f"verify;dur={t.verify_s * 1000:.3f}, validate;dur={t.validate_s * 1000:.3f}, "
        f"store;dur={t.store_s * 1000:.3f}"
    )
    if result.created:
        response.status_code = 201
        response.headers["Location"] = view["links"]["self"]
    return response


@router.get("/labels", responses={**JSON_OBJECT, **problems(400, 422)})
def list_labels(
    session: SessionDep,
    settings: SettingsDep,
    vendor: Annotated[str | None, Query(max_length=64)] = None,
    model: Annotated[
        str | None, Query(max_length=193, description="'vendor/name' or a bare name")
    ] = None,
    task: Annotated[str | None, Query(max_length=64)] = None,
    phase: Literal["inference", "training"] | None = None,
    hardware: Annotated[
        str | None, Query(max_length=64, description="reference hardware class")
    ] = None,
    zone: Annotated[str | None, Query(max_length=64)] = None,
    current: Annotated[
        bool | None, Query(description="only the newest label of each model (per group)")
    ] = None,
    suite: SuiteQuery = None,
    size_class: SizeClassQuery = None,
    min_quality: MinQualityQuery = None,
    kind: Annotated[
        Literal["benchmark", "training-run", "operational"] | None,
        Query(
            description="only labels of this kind (benchmark labels are the graded ones; "
            "training-run: whole training runs; operational: production periods)"
        ),
    ] = None,
    sort: SortChoice = "-received_at",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    check_suite_filters(suite, size_class)
    filters = queries.LabelFilters(
        vendor=vendor,
        model=model,
        task=task,
        phase=phase,
        hardware_class=hardware,
        zone=zone,
        current=current,
        suite=suite,
        size_class=size_class,
        min_quality=min_quality,
        kind=kind,
    )
    page, next_cursor = queries.list_labels(
        session, filters=filters, sort=sort, limit=limit, cursor=cursor
    )
    base = settings.public_url
    return json_response(
        {
            "items": [queries.label_summary(lbl, v, m, base) for lbl, v, m in page],
            "next_cursor": next_cursor,
        }
    )


@router.get("/labels/{label_id}", responses={**JSON_OBJECT, **problems(404)})
def get_label(
    label_id: LabelIdPath, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    label, vendor, model, key_status, attested, logged = queries.get_label_with_key(
        session, label_id
    )
    view = queries.label_detail(
        session, label, vendor, model, settings.public_url, key_status, attested
    )
    # the entry and the head came with the label: the receipt reads only the proof's nodes
    view["receipt"] = (
        None
        if label.log_index is None
        else translog.receipt_from(
            session.connection(), request.app.state.log_signer, label.log_index, *logged
        )
    )
    return json_response(view)


def label_receipt(session: Session, request: Request, label: Label) -> dict[str, Any] | None:
    """The label's log receipt: index, leaf hash, inclusion proof and a signed checkpoint."""
    if label.log_index is None:
        return None
    signer = request.app.state.log_signer
    return translog.receipt(session.connection(), signer, label.log_index)


@router.get("/labels/{label_id}/projection", responses={**JSON_OBJECT, **problems(404, 422)})
def get_projection(
    label_id: LabelIdPath,
    session: SessionDep,
    zone: Annotated[
        str | None,
        Query(
            max_length=51,
            pattern=grid.ZONE_PATTERN,
            description="ISO 3166-1 alpha-2 zone, optionally -region (default: the label's)",
        ),
    ] = None,
    pue: Annotated[
        float | None, Query(ge=1.0, le=5.0, description="PUE, 1 to 5 (default: the label's)")
    ] = None,
    profile: Annotated[
        str | None,
        Query(
            max_length=2000,
            pattern=r"^[0-9.eE+-]+(,[0-9.eE+-]+){0,167}$",
            description="an hour profile: comma-separated g CO2e/kWh, one per hour the work "
            "runs (1 to 168); its mean replaces the zone's yearly intensity",
        ),
    ] = None,
) -> Response:
    """What if: the label's measured energy under another zone's yearly intensity, another PUE
    or an hour profile. A projection, never a label (not signed, stored, graded or ranked)."""
    label, _, _ = queries.get_label(session, label_id)
    hours = projection.parse_profile(profile)
    return json_response(projection.project(label.predicate, zone, pue, hours))


@router.get(
    "/labels/{label_id}/envelope",
    responses={
        200: {
            "description": "the envelope bytes exactly as received",
            "content": {"application/json": {}},
        },
        **problems(404),
    },
    response_class=Response,
)
def get_envelope(label_id: LabelIdPath, session: SessionDep) -> Response:
    label, _, _ = queries.get_label(session, label_id)
    return Response(
        content=label.envelope,
        media_type="application/json",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


@router.get("/models/{vendor}/{model}", responses=problems(404))
def get_model(
    vendor: VendorPath, model: ModelPath, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    return profiles.model_view(session, vendor, model, settings.public_url)


@router.get("/vendors/{vendor}", responses=problems(404))
def get_vendor(vendor: VendorPath, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    owner = vendor_service.get_vendor(session, vendor)
    return profiles.vendor_profile(session, owner, settings.public_url)


@router.get("/whoami", responses=problems(401))
def whoami(vendor: CurrentVendor, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """Who a token belongs to, the audience labels for this registry must name and the vendor's
    keys with their status: what ``carbonlabel bench --submit`` checks before it measures."""
    return {
        "vendor": vendor.slug,
        "display_name": vendor.display_name,
        "audience": settings.public_url,
        "keys": profiles.vendor_keys(session, vendor),
    }
