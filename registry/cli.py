"""Operator commands: serve, db upgrade, vendor create.

The database and web stacks are imported inside the commands, so that the client-side commands
of the same console script start quickly.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from registry.config import Settings

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="CARBONLABEL_DATABASE_URL",
        help="SQLAlchemy URL (default: SQLite under $XDG_DATA_HOME/carbonlabel)",
        show_default=False,
    ),
]


class OperatorError(Exception):
    """A failure to report as one line with a non-zero exit code."""


def _settings(database_url: str | None, demo: bool = False) -> Settings:
    from registry.config import Settings

    return Settings(database_url=database_url or "", demo=demo)


def _upgrade(url: str, prepared_statements: bool = True) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from registry.db import upgrade

    try:
        upgrade(url, prepared_statements=prepared_statements)
    except SQLAlchemyError as exc:
        reason = str(exc.args[0]).splitlines()[0] if exc.args else ""
        raise OperatorError(
            f"cannot migrate {_safe(url)}: {exc.__class__.__name__}: {reason}"
        ) from None


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def db_upgrade(database_url: DatabaseOpt = None) -> None:
    """Apply the database migrations up to head."""
    settings = _settings(database_url)
    url = settings.resolved_database_url()
    _upgrade(url, settings.database_prepared_statements)
    out.print(f"database at head: {_safe(url)}")


def db_derived(
    repair: Annotated[
        bool, typer.Option("--repair", help="recompute them from the labels when they differ")
    ] = False,
    database_url: DatabaseOpt = None,
) -> None:
    """Check the figures kept beside the labels (vendor standings and totals, current counts,
    peer bins)
    against a computation from scratch; exit 1 when they differ (and --repair was not given)."""
    from sqlalchemy.exc import SQLAlchemyError

    from registry.db import make_engine
    from registry.services import rebuild

    settings = _settings(database_url)
    url = settings.resolved_database_url()
    engine = make_engine(url, prepared_statements=settings.database_prepared_statements)
    try:
        with engine.begin() as connection:
            differing = [
                name
                for name, stored, scratch in (
                    (
                        "vendor_standings",
                        rebuild.stored_standings,
                        rebuild.standings_from_scratch,
                    ),
                    ("current_counts", rebuild.stored_counts, rebuild.counts_from_scratch),
                    ("peer_bins", rebuild.stored_bins, rebuild.bins_from_scratch),
                    ("ranking_totals", rebuild.stored_totals, rebuild.totals_from_scratch),
                )
                if stored(connection) != scratch(connection)
            ]
            if differing and repair:
                rebuild.rebuild_all(connection)
    except SQLAlchemyError as exc:
        raise _database_error(exc) from None
    finally:
        engine.dispose()
    if not differing:
        out.print("derived figures match the labels")
    elif repair:
        out.print(f"recomputed from the labels: {', '.join(differing)}")
    else:
        raise OperatorError(
            f"derived figures differ from the labels: {', '.join(differing)}; "
            "run `carbonlabel db derived --repair`"
        )


def vendor_create(
    slug: Annotated[str, typer.Argument(help="lowercase letters, digits and hyphens")],
    name: Annotated[str | None, typer.Option("--name", help="display name")] = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Create a vendor and print its API token (shown this once)."""
    from sqlalchemy.exc import SQLAlchemyError
    from sqlmodel import Session

    from registry.db import make_engine
    from registry.errors import ProblemError
    from registry.services.vendors import create_vendor

    settings = _settings(database_url)
    url = settings.resolved_database_url()
    engine = make_engine(url, prepared_statements=settings.database_prepared_statements)
    try:
        with Session(engine) as session:
            _vendor, token = create_vendor(session, slug=slug, display_name=name)
            session.commit()
    except ProblemError as exc:
        raise OperatorError(exc.detail) from None
    except SQLAlchemyError as exc:
        raise _database_error(exc) from None
    finally:
        engine.dispose()
    console.print(f"vendor {slug} created; its API token (shown once, store it now):")
    out.print(token)


def _demo_log_key() -> Path:
    """The demo's checkpoint key: made once, kept beside the demo database (mode 0600)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from registry.config import default_data_dir

    path = default_data_dir() / "demo-log-key.pem"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
    return path


def serve(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to bind")] = 8000,
    database_url: DatabaseOpt = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="seed demo vendors, models and signed labels")
    ] = False,
    public_url: Annotated[
        str | None,
        typer.Option(envvar="CARBONLABEL_PUBLIC_URL", help="the URL labels name as audience"),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="server processes")] = 1,
    migrate: Annotated[bool, typer.Option(help="apply migrations before serving")] = True,
) -> None:
    """Run the registry with uvicorn (SQLite by default; --database-url for PostgreSQL)."""
    import uvicorn

    from registry.config import Settings
    from registry.db import make_engine

    _check_port_free(host, port)  # before anything is migrated, seeded or printed
    settings = _settings(database_url, demo=demo)
    url = settings.resolved_database_url()
    public = (public_url or f"http://{host}:{port}").rstrip("/")
    os.environ["CARBONLABEL_DATABASE_URL"] = url
    os.environ["CARBONLABEL_PUBLIC_URL"] = public
    if demo:
        os.environ["CARBONLABEL_DEMO"] = "true"
        os.environ.setdefault("CARBONLABEL_ADMIN_TOKEN", secrets.token_urlsafe(32))
        if not (
            os.environ.get("CARBONLABEL_LOG_SIGNING_KEY")
            or os.environ.get("CARBONLABEL_LOG_SIGNING_KEY_FILE")
        ):
            os.environ["CARBONLABEL_LOG_SIGNING_KEY_FILE"] = str(_demo_log_key())
    try:
        Settings().check_runnable()
    except Exception as exc:  # SettingsError or a pydantic validation error
        raise OperatorError(str(exc).splitlines()[0]) from None
    if migrate:
        _upgrade(url, settings.database_prepared_statements)
    if demo:
        from registry.demo import seed

        engine = make_engine(url, prepared_statements=settings.database_prepared_statements)
        try:
            seeded = seed(engine, public)
        finally:
            engine.dispose()
        console.print(f"[bold]demo database[/]: {_safe(url)}")
        console.print(
            f"admin token (this run): {os.environ['CARBONLABEL_ADMIN_TOKEN']}", markup=False
        )
        for vendor in seeded:
            console.print(f"vendor {vendor.slug}: token {vendor.token}", markup=False)
    console.print(f"[bold]carbonlabel registry[/] on {public}  (API docs: {public}/docs)")
    uvicorn.run(
        "registry.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


def _check_port_free(host: str, port: int) -> None:
    """One line naming --port when HOST:PORT cannot be bound (another server holds it)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OperatorError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): another server is "
                f"using it; pick a free port with --port (e.g. --port {port + 1})"
            ) from None


def _database_error(exc: Exception) -> OperatorError:
    """One line for a database that refused a command (most often: not migrated yet)."""
    return OperatorError(
        f"database error ({exc.__class__.__name__}); is it migrated? run `carbonlabel db upgrade`"
    )
