"""Vendors and their API tokens (random, shown once, stored as SHA-256)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Mapping
from functools import cache
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from registry.db import read_mappings
from registry.errors import ProblemError
from registry.models import ApiToken, Vendor, utcnow

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
TOKEN_PREFIX = "clt_"  # noqa: S105  (a visible prefix, not a secret)


DISPLAY_NAME_MAX_CHARS = 200
MAX_COMBINING_MARKS = 4
# Letters, marks, numbers, punctuation, symbols and U+0020: no controls, format characters
# (bidi embeddings, overrides and isolates, zero-width characters), other spaces, line or
# paragraph separators, private-use, surrogate or unassigned code points.
_ALLOWED_CATEGORIES = frozenset("LMNPS")


def normalise_display_name(value: str) -> str:
    """A free-text name, NFC-normalised and without surrounding spaces; a 422 problem for one
    outside the allowed character set (letters, marks, numbers, punctuation, symbols, U+0020),
    empty, longer than DISPLAY_NAME_MAX_CHARS or with more than MAX_COMBINING_MARKS combining
    marks in a row."""
    name = unicodedata.normalize("NFC", value).strip(" ")
    problem = None
    if not name:
        problem = "must not be empty"
    elif len(name) > DISPLAY_NAME_MAX_CHARS:
        problem = f"must be at most {DISPLAY_NAME_MAX_CHARS} characters"
    else:
        marks = 0
        for index, char in enumerate(name):
            category = unicodedata.category(char)
            if char != " " and category[0] not in _ALLOWED_CATEGORIES:
                problem = f"must not contain U+{ord(char):04X} ({category})"
                break
            marks = marks + 1 if category[0] == "M" else 0
            if marks > MAX_COMBINING_MARKS or marks > index:
                problem = f"must not start with a combining mark, nor stack {MAX_COMBINING_MARKS}+"
                break
    if problem is not None:
        raise ProblemError(
            "validation-error",
            f"display_name {problem}",
            errors=[{"pointer": "/body/display_name", "message": problem}],
        )
    return name


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_vendor(
    session: Session, *, slug: str, display_name: str | None = None
) -> tuple[Vendor, str]:
    """Create a vendor and its first API token; returns the token in clear (the only time)."""
    if not SLUG_RE.match(slug):
        raise ProblemError(
            "validation-error",
            "vendor slug must be 1-64 lowercase letters, digits or inner hyphens",
        )
    if session.exec(select(Vendor).where(Vendor.slug == slug)).first() is not None:
        raise ProblemError("vendor-exists", f"vendor {slug!r} already exists")
    name = normalise_display_name(display_name) if display_name else slug
    vendor = Vendor(slug=slug, display_name=name)
    session.add(vendor)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ProblemError("vendor-exists", f"vendor {slug!r} already exists") from None
    token = issue_token(session, vendor=vendor)
    return vendor, token


def revoke_tokens(session: Session, *, vendor: Vendor) -> int:
    """Revoke every token of ``vendor`` still in use; returns how many."""
    live = session.exec(
        select(ApiToken).where(ApiToken.vendor_id == vendor.id, col(ApiToken.revoked_at).is_(None))
    ).all()
    for token in live:
        token.revoked_at = utcnow()
        session.add(token)
    session.flush()
    return len(live)


def issue_token(session: Session, *, vendor: Vendor) -> str:
    assert vendor.id is not None
    token = new_token()
    session.add(ApiToken(vendor_id=vendor.id, token_sha256=hash_token(token), prefix=token[:8]))
    session.flush()
    return token


def token_columns() -> tuple[Any, ...]:
    """A token's digest and revocation, and its vendor's columns: what :func:`vendor_of_token`
    reads from a row (a statement that joins ``api_tokens`` to ``vendors`` selects them)."""
    tokens, vendors = ApiToken.__table__, Vendor.__table__  # type: ignore[attr-defined]
    return (tokens.c.token_sha256, tokens.c.revoked_at, *vendors.c)


@cache
def _authenticate_statement() -> Any:
    tokens, vendors = ApiToken.__table__, Vendor.__table__  # type: ignore[attr-defined]
    return (
        select(*token_columns())
        .join_from(tokens, vendors, vendors.c.id == tokens.c.vendor_id)
        .where(tokens.c.token_sha256 == bindparam("digest"))
    )


def vendor_of_token(row: Any, digest: str) -> Vendor | None:
    """The vendor of a row of :func:`token_columns` found by a token's ``digest``, or None when
    there is no row or the token was revoked. The index lookup compares SHA-256 digests, not
    tokens: its timing could at most reveal a prefix of a stored digest, which gives nothing
    toward a token (SHA-256 is preimage resistant). The match is confirmed in constant time all
    the same."""
    if row is None or not hmac.compare_digest(row.token_sha256, digest):
        return None
    if row.revoked_at is not None:
        return None
    return detached(row._mapping)


def detached(values: Mapping[str, Any]) -> Vendor:
    """A Vendor from the vendor's columns by name, never added to a session."""
    return Vendor(
        id=values["id"],
        slug=values["slug"],
        display_name=values["display_name"],
        created_at=values["created_at"],
    )


def authenticate(session: Session, token: str) -> Vendor | None:
    """The vendor a token belongs to, or None. The lookup is by the token's SHA-256, so the
    database never compares the secret itself.

    Runs on every write request, so it is one prebuilt Core query (no ORM loading); the Vendor
    it returns is detached from the session.
    """
    digest = hash_token(token)
    row = session.connection().execute(_authenticate_statement(), {"digest": digest}).first()
    return vendor_of_token(row, digest)


def invalid_token() -> ProblemError:
    """The 401 problem for a token that names no vendor (unknown or revoked)."""
    return ProblemError(
        "unauthorized", "the API token is not valid", headers={"WWW-Authenticate": "Bearer"}
    )


def get_vendor(session: Session, slug: str) -> Vendor:
    """The vendor ``slug`` names, detached from the session: one prebuilt Core query (no ORM
    loading, which cost a vendor page a twentieth of its CPU); a not-found problem if none."""
    found = read_mappings(session.connection(), _vendor_statement(), {"slug": slug})
    if not found:
        raise ProblemError("not-found", f"no vendor {slug!r}")
    return detached(found[0])


@cache
def _vendor_statement() -> Any:
    vendors = Vendor.__table__  # type: ignore[attr-defined]
    return select(*vendors.c).where(vendors.c.slug == bindparam("slug"))
