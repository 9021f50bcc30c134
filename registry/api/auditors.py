"""Auditors (registered by the operator) and their attestations of labels."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from registry.api.deps import RawBody, SessionDep, SettingsDep, TokenDep, require_admin
from registry.api.routes import ENVELOPE_BODY, LabelIdPath, problems
from registry.errors import ProblemError
from registry.models import Label
from registry.services import audit, translog

router = APIRouter(prefix="/v1", tags=["auditors"])


class AuditorCreate(BaseModel):
    slug: str = Field(
        min_length=1, max_length=64, pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
    )
    display_name: str | None = Field(default=None, max_length=200)
    public_key: str = Field(
        max_length=128, description="base64 (standard or URL-safe) of the raw 32-byte Ed25519 key"
    )
    proof: str = Field(
        max_length=256,
        description=(
            "base64 Ed25519 signature, by this key, over the UTF-8 bytes of "
            "'carbonlabel key registration v1\\n<registry>\\nauditor:<slug>\\n<keyid>\\n'"
        ),
    )


class AuditorCreated(BaseModel):
    auditor: str
    display_name: str
    keyid: str
    token: str = Field(description="the auditor's API token: shown this once, stored hashed")


@router.post(
    "/auditors",
    status_code=201,
    response_model=AuditorCreated,
    dependencies=[Depends(require_admin)],
    responses=problems(401, 409, 413, 422),
)
def create_auditor(
    body: AuditorCreate, session: SessionDep, settings: SettingsDep, response: Response
) -> AuditorCreated:
    """Register an auditor and its key (operator); answers its API token once."""
    auditor, token = audit.register_auditor(
        session,
        slug=body.slug,
        display_name=body.display_name,
        public_key_b64=body.public_key,
        proof_b64=body.proof,
        registry=settings.public_url,
    )
    session.commit()
    response.headers["Location"] = f"{settings.public_url}/v1/auditors"
    return AuditorCreated(
        auditor=auditor.slug, display_name=auditor.display_name, keyid=auditor.keyid, token=token
    )


@router.get("/auditors", responses=problems(429))
def list_auditors(session: SessionDep) -> dict[str, Any]:
    """Every auditor with its public key and its attestation counts."""
    return {"auditors": audit.list_auditors(session)}


@router.post(
    "/labels/{label_id}/attestations",
    status_code=201,
    responses={
        200: {"description": "the same attestation was stored before: its verdict"},
        **problems(400, 401, 403, 404, 409, 413, 422, 429),
    },
    openapi_extra=ENVELOPE_BODY,
)
def submit_attestation(
    label_id: LabelIdPath,
    request: Request,
    token: TokenDep,
    body: RawBody,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> dict[str, Any]:
    """An auditor's signed attestation of a label it reproduced (DSSE over in-toto)."""
    auditor = audit.authenticate(session, token)
    if auditor is None:
        raise ProblemError(
            "unauthorized",
            "this call needs an auditor's API token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    result = audit.attest(session, auditor=auditor, label_id=label_id, body=body)
    session.commit()
    view = audit.attestation_result(result, auditor, settings.public_url)
    view["receipt"] = translog.receipt(
        session.connection(), request.app.state.log_signer, result.attestation.log_index
    )
    if result.created:
        response.headers["Location"] = view["links"]["attestations"]
    else:
        response.status_code = 200
    return view


@router.get("/labels/{label_id}/attestations", responses=problems(404))
def list_attestations(
    label_id: LabelIdPath, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """A label's tier and standing, and every auditor's attestation of it."""
    label = session.get(Label, label_id.lower())
    if label is None:
        raise ProblemError("not-found", f"no label {label_id!r}")
    return {
        "label_id": label.id,
        "tier": label.tier,
        "standing": label.standing,
        "payload_sha256": label.payload_sha256,
        "attestations": audit.attestations_view(session, label.id),
        "links": {"label": f"{settings.public_url}/v1/labels/{label.id}"},
    }
