"""The transparency log's read API (contract section 3): checkpoint, entries, RFC 9162 proofs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from registry.api.deps import SessionDep
from registry.api.routes import problems
from registry.services import translog

router = APIRouter(prefix="/v1/log", tags=["log"])

MAX_INDEX = 2**62


class LogInfo(BaseModel):
    origin: str = Field(description="the checkpoints' origin line (also the signing key's name)")
    verifier_key: str = Field(description="C2SP note verifier key: name+hash+base64(0x01||key)")
    tree_size: int
    root_hash: str = Field(description="base64 RFC 9162 root hash")
    checkpoint: str = Field(description="the current signed checkpoint (C2SP signed note)")


class LogEntryView(BaseModel):
    index: int
    kind: str
    leaf: str = Field(description="base64 of the leaf bytes (canonical JSON)")
    leaf_hash: str = Field(description="base64 SHA-256(0x00 || leaf)")
    entry: dict[str, Any] = Field(description="the leaf, decoded")


class InclusionProof(BaseModel):
    index: int
    tree_size: int
    leaf_hash: str
    proof: list[str] = Field(description="base64 hashes, leaf to root (RFC 9162 2.1.3)")


class ConsistencyProof(BaseModel):
    first: int
    second: int
    proof: list[str] = Field(description="base64 hashes (RFC 9162 2.1.4)")


@router.get("", response_model=LogInfo, responses=problems(429, 503))
def log_info(request: Request, session: SessionDep) -> LogInfo:
    """The log's identity (origin, verifier key) and its current checkpoint."""
    signer: translog.CheckpointSigner = request.app.state.log_signer
    head = translog.head(session.connection())
    return LogInfo(
        origin=signer.origin,
        verifier_key=signer.verifier_key,
        tree_size=head.tree_size,
        root_hash=translog.b64(head.root_hash),
        checkpoint=signer.checkpoint(head.tree_size, head.root_hash),
    )


@router.get(
    "/checkpoint",
    response_class=Response,
    responses={
        200: {
            "description": "the latest checkpoint, a C2SP signed note (tlog-checkpoint)",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **problems(429, 503),
    },
)
def checkpoint(request: Request, session: SessionDep) -> Response:
    signer: translog.CheckpointSigner = request.app.state.log_signer
    head = translog.head(session.connection())
    return Response(
        signer.checkpoint(head.tree_size, head.root_hash),
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/entries/{index}", response_model=LogEntryView, responses=problems(404, 422, 429, 503))
def get_entry(
    index: Annotated[int, PathParam(ge=0, le=MAX_INDEX)], session: SessionDep, response: Response
) -> LogEntryView:
    item = translog.entry(session.connection(), index)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return LogEntryView(**translog.entry_view(item))


@router.get(
    "/proof/inclusion", response_model=InclusionProof, responses=problems(400, 422, 429, 503)
)
def proof_inclusion(
    session: SessionDep,
    index: Annotated[int, Query(ge=0, le=MAX_INDEX, description="the entry's index")],
    tree_size: Annotated[
        int | None, Query(ge=1, le=MAX_INDEX, description="default: the current size")
    ] = None,
) -> InclusionProof:
    connection = session.connection()
    size, proof = translog.inclusion_proof(connection, index, tree_size)
    leaf_hash = translog.entry(connection, index).leaf_hash
    return InclusionProof(
        index=index,
        tree_size=size,
        leaf_hash=translog.b64(leaf_hash),
        proof=[translog.b64(h) for h in proof],
    )


@router.get(
    "/proof/consistency", response_model=ConsistencyProof, responses=problems(400, 422, 429, 503)
)
def proof_consistency(
    session: SessionDep,
    first: Annotated[int, Query(ge=1, le=MAX_INDEX, description="the older tree size")],
    second: Annotated[
        int | None, Query(ge=1, le=MAX_INDEX, description="the newer size (default: current)")
    ] = None,
) -> ConsistencyProof:
    connection = session.connection()
    newer = translog.head(connection).tree_size if second is None else second
    proof = translog.consistency_proof(connection, first, newer)
    return ConsistencyProof(first=first, second=newer, proof=[translog.b64(h) for h in proof])
