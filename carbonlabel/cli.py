"""The ``carbonlabel`` console script. Every failure prints one line and exits non-zero."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from bench_runner import (
    advise_cli,
    attest_cli,
    bench_cli,
    interop_cli,
    meters_cli,
    track_cli,
    watch_cli,
)
from bench_runner import cli as runner_cli
from registry import cli as registry_cli

app = typer.Typer(
    name="carbonlabel",
    help="Measure, sign, verify and serve carbon labels for ML models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database operations.", no_args_is_help=True)
vendor_app = typer.Typer(help="Vendor operations (operator).", no_args_is_help=True)
key_app = typer.Typer(help="Signing keys.", no_args_is_help=True)
meters_app = typer.Typer(
    help="Energy meters: check NVML against a reference.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(vendor_app, name="vendor")
app.add_typer(key_app, name="key")
app.add_typer(meters_app, name="meters")
track_app = typer.Typer(
    help="Whole training runs (the Python API is carbonlabel.track).", no_args_is_help=True
)
app.add_typer(track_app, name="track")

app.command("serve")(registry_cli.serve)
app.command("bench", epilog=bench_cli.EPILOG)(bench_cli.bench)
app.command("import-codecarbon")(interop_cli.import_codecarbon)
app.command("export")(interop_cli.export)
app.command("advise")(advise_cli.advise_command)
app.command("watch", epilog=watch_cli.EPILOG)(watch_cli.watch)
app.command("keygen")(runner_cli.keygen)
app.command("sign")(runner_cli.sign)
app.command("submit")(runner_cli.submit)
app.command("verify")(runner_cli.verify)
app.command("attest")(attest_cli.attest)
db_app.command("upgrade")(registry_cli.db_upgrade)
db_app.command("derived")(registry_cli.db_derived)
vendor_app.command("create")(registry_cli.vendor_create)
key_app.command("register")(runner_cli.key_register)
meters_app.command("validate")(meters_cli.validate)
track_app.command("recover")(track_cli.recover)


@app.command("demo")
def demo(
    port: Annotated[int, typer.Option(help="port to bind")] = 8000,
) -> None:
    """Serve the registry on a demo SQLite database seeded with vendors and signed labels."""
    registry_cli.serve(port=port, demo=True)


def main() -> None:
    err = Console(stderr=True, soft_wrap=True)
    try:
        app(standalone_mode=False)
    except runner_cli.CliError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(exc.code)
    except registry_cli.OperatorError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(1)
    except Exception as exc:
        if _is(exc, "Exit"):
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        param = exc.param if _is(exc, "MissingParameter") else None  # type: ignore[attr-defined]
        if param is not None and getattr(param, "envvar", None) and param.opts:
            # click names the option only: say where else the value can come from
            option = max(param.opts, key=len)
            err.print(f"error: missing {option}: pass {option} or set {param.envvar}")
            sys.exit(2)
        if _is(exc, "ClickException"):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        if _is(exc, "Abort"):
            err.print("aborted")
            sys.exit(130)
        from bench_runner.client import RegistryError

        if isinstance(exc, RegistryError):
            err.print(f"error: {exc}", markup=False)
            sys.exit(1)
        err.print(f"error: {exc.__class__.__name__}: {exc}", markup=False)
        sys.exit(1)


def _is(exc: BaseException, name: str) -> bool:
    """Whether ``exc`` is click's exception ``name``: Typer's own copy of click (``typer._click``,
    Typer 0.2x) or click itself."""
    import click

    modules: list[object] = [click.exceptions]
    try:
        from typer import _click

        modules.append(_click.exceptions)
    except ImportError:  # a Typer that uses click itself
        pass
    kinds = tuple(k for m in modules if isinstance(k := getattr(m, name, None), type))
    return isinstance(exc, kinds)
