"""Settings, read from the environment (prefix ``CARBONLABEL_``) or passed in by the caller."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr, field_validator
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
    rate_limit_per_minute: int = 600
    """Label submissions per API token per minute (0 disables the limit)."""
    rate_limit_burst: int = 60
    """Submissions a token may send at once before the per-minute rate applies."""
    badge_cache_ttl_s: float = 10.0
    """How long a rendered badge is reused in-process (capped at 300 s, the HTTP max-age)."""
    worker_threads: int = 4
    """Threads per process running the database-bound routes. Few threads suffice (the
    database is local and fast) and fewer threads contend less for Python's GIL."""

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def resolved_database_url(self) -> str:
        url = self.database_url or default_database_url(self.demo)
        if url.startswith(("postgresql://", "postgres://")):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return url

    def check_runnable(self) -> None:
        """Refuse to serve without a real admin token, unless in demo mode."""
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
