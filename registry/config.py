"""Settings, read from the environment (prefix ``CARBONLABEL_``) or passed in by the caller."""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_ADMIN_TOKEN_CHARS = 24
_PLACEHOLDERS = {"changeme", "change-me", "secret", "admin", "password", "token"}


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/carbonlabel`` (``~/.local/share/carbonlabel`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "carbonlabel"


def default_database_url(demo: bool = False) -> str:
    name = "demo.db" if demo else "registry.db"
    return f"sqlite:///{default_data_dir() / name}"


class SettingsError(RuntimeError):
    """The settings cannot run a server (the message says which one and how to fix it)."""


def parse_signing_key(text: str, source: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8) or base64 of the 32-byte seed."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            seed = base64.b64decode(text, validate=True)
            key = Ed25519PrivateKey.from_private_bytes(seed)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise SettingsError(f"{source} is not an Ed25519 private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SettingsError(f"{source} is not an Ed25519 private key")
    return key


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARBONLABEL_", extra="ignore")

    database_url: str = ""
    """SQLAlchemy URL; empty means the SQLite file under ``default_data_dir()``."""
    admin_token: SecretStr | None = None
    """Operator token for ``POST /v1/vendors`` and key revocation. No default: required."""
    public_url: str = "http://127.0.0.1:8000"
    """The registry's own URL: labels must name it as their ``registry`` audience."""
    demo: bool = False
    max_body_bytes: int = 1_048_576
    """Request bodies larger than this get 413 ``payload-too-large`` (default 1 MiB)."""
    rate_limit_per_minute: int = Field(default=600, ge=0)
    """``/v1`` write requests per API token per minute (0 disables the limit)."""
    rate_limit_burst: int = Field(default=60, ge=0)
    """Write requests a token may send at once before the per-minute rate applies."""
    rate_limit_per_address_per_minute: int = Field(default=1200, ge=0)
    """``/v1`` requests per client address (IPv6: per /64) per minute (0 disables the limit)."""
    rate_limit_per_address_burst: int = Field(default=120, ge=0)
    """Requests an address may send at once before the per-minute rate applies."""
    rate_limit_backend: Literal["auto", "memory", "database"] = "auto"
    """Where the limits' state lives: ``database`` (the ``rate_limits`` table, shared by every
    server process), ``memory`` (per process) or ``auto`` (database on PostgreSQL, memory on
    SQLite)."""
    badge_cache_ttl_s: float = 10.0
    """How long a rendered badge is reused in-process (capped at 300 s, the HTTP max-age)."""
    log_signing_key: SecretStr | None = None
    """The registry's Ed25519 key that signs log checkpoints: PEM (PKCS#8, as written by
    ``carbonlabel keygen``) or base64 of the 32-byte seed. No default: this or the file below
    is required (the demo makes one)."""
    log_signing_key_file: Path | None = None
    """A file holding the key above (PEM or base64 seed), e.g. a mounted secret."""
    log_origin: str = ""
    """The checkpoints' origin line; empty means the public URL without its scheme."""
    worker_threads: int = 2
    """Threads per process running the database-bound routes. Few threads suffice (the
    database is local and fast: two overlap one request's database wait with another's Python)
    and fewer threads contend less for Python's GIL: at 1M labels, 2 rather than 4 gave eight
    of the nine read routes an 8 to 23 % lower p95 at 8 connections in each of two rounds (the
    ranking in one of them), for up to 9 % less rate on three (the label, the compare page, the
    badge), and the same ingest rate (docs/performance.md). More may pay where the database is
    far (each read a network round trip)."""
    database_prepared_statements: bool = True
    """PostgreSQL: let psycopg prepare a statement on the server once it has run 5 times on a
    connection (its ``prepare_threshold``). ``false`` for a pooler that cannot keep prepared
    statements, such as PgBouncer in transaction mode before 1.22 or without
    ``max_prepared_statements`` (docs/operations.md). No effect on SQLite."""
    database_generic_plans: bool = True
    """PostgreSQL, with prepared statements: each new connection sets ``plan_cache_mode =
    force_generic_plan``, so a prepared statement is planned once rather than at every run
    (``registry.db.make_engine``; docs/operations.md). No effect on SQLite or without prepared
    statements."""
    page_cache_max_bytes: int = Field(default=32 * 1024 * 1024, ge=0)
    """Bytes of rendered pages and rankings kept in memory per process (``0``: none kept;
    ETags and 304s work either way)."""
    gc_tuning: bool = True
    """Once started, freeze the app's objects out of the garbage collector's walks and raise its
    thresholds (``registry/gc_tuning.py``): no 70-110 ms full collections in the middle of
    requests. ``false`` keeps CPython's defaults."""
    metrics_cache_ttl_s: float = Field(default=30.0, ge=0)
    """How long ``/metrics`` reuses its registry-wide gauges (labels by kind and tier, the log's
    size and age) before reading the database again (``0``: at every scrape)."""

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def resolved_database_url(self) -> str:
        url = self.database_url or default_database_url(self.demo)
        if url.startswith(("postgresql://", "postgres://")):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return url

    def resolved_rate_limit_backend(self) -> Literal["memory", "database"]:
        if self.rate_limit_backend != "auto":
            return self.rate_limit_backend
        postgres = self.resolved_database_url().startswith("postgresql")
        return "database" if postgres else "memory"

    def resolved_log_origin(self) -> str:
        if self.log_origin:
            return self.log_origin
        return self.public_url.split("://", 1)[-1]

    def log_signer(self) -> Ed25519PrivateKey:
        """The checkpoint signing key, or SettingsError saying how to provide one."""
        if self.log_signing_key is not None:
            text, source = self.log_signing_key.get_secret_value(), "CARBONLABEL_LOG_SIGNING_KEY"
        elif self.log_signing_key_file is not None:
            source = str(self.log_signing_key_file)
            try:
                text = self.log_signing_key_file.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise SettingsError(f"cannot read the log signing key {source}: {exc}") from None
        else:
            raise SettingsError(
                "no log signing key: set CARBONLABEL_LOG_SIGNING_KEY_FILE to an Ed25519 private "
                "key (make one with `carbonlabel keygen --out registry-log.pem`) or "
                "CARBONLABEL_LOG_SIGNING_KEY to its PEM text"
            )
        return parse_signing_key(text, source)

    def check_runnable(self) -> None:
        """Refuse to serve without a real admin token and a log key, unless in demo mode."""
        if self.demo:
            return
        if self.admin_token is None:
            raise SettingsError(
                "CARBONLABEL_ADMIN_TOKEN is not set: the registry has no default admin token. "
                "Set one (e.g. `export CARBONLABEL_ADMIN_TOKEN=$(openssl rand -hex 32)`) "
                "or run the demo with `carbonlabel serve --demo`."
            )
        token = self.admin_token.get_secret_value()
        if len(token) < MIN_ADMIN_TOKEN_CHARS or token.lower() in _PLACEHOLDERS:
            raise SettingsError(
                f"CARBONLABEL_ADMIN_TOKEN must be a random string of at least "
                f"{MIN_ADMIN_TOKEN_CHARS} characters"
            )
        self.log_signer()
