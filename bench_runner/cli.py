"""Client-side commands: keygen, key register, sign, submit, verify."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console

from bench_runner.client import RegistryClient
from schemas.dsse import (
    b64encode,
    build_statement,
    key_proof_message,
    keyid_for,
    load_private_key,
    load_public_key,
    raw_public_key,
    sign_statement,
)
from schemas.verify import VerifyExit

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


class CliError(Exception):
    """A failure to report as one line with a non-zero exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


RegistryOpt = Annotated[
    str, typer.Option("--registry", envvar="CARBONLABEL_REGISTRY", help="registry base URL")
]
TokenOpt = Annotated[
    str,
    typer.Option(
        "--token", envvar="CARBONLABEL_TOKEN", help="vendor API token", show_default=False
    ),
]


def print_meter_findings(found: Any, *, hide_note: Callable[[str], bool] | None = None) -> None:
    """What meter discovery found that the user must hear: an estimate, loudly, with each
    meter's reason, and the notes (``hide_note`` leaves some out)."""
    if found.estimated:
        console.print(
            "[bold red]WARNING: nothing can be measured on this machine; energy will be "
            "ESTIMATED, not measured.[/] The label will say so and get no grade.",
        )
        for reason in found.reasons:
            console.print(f"  - {reason}", markup=False)
    for note in found.notes:
        if hide_note is None or not hide_note(note):
            console.print(f"note: {note}", markup=False)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


def _private_key(path: Path) -> Ed25519PrivateKey:
    if not path.exists():
        raise CliError(
            f"no key file {path}: make a key pair with `carbonlabel keygen --out {path}` (and "
            "register its public half with `carbonlabel key register`)"
        )
    data = _read(path)
    try:
        return load_private_key(path)
    except (ValueError, TypeError) as exc:
        if _is_public_key(data):
            raise CliError(
                f"{path} is a public key; pass the private key (keygen wrote both: the private "
                f"key is {path.name.removesuffix('.pub')}, the public one ends in .pub)"
            ) from None
        raise CliError(f"{path} is not an Ed25519 private key in PEM: {exc}") from None


def _is_public_key(data: bytes) -> bool:
    """A PEM public key, or what ``keygen`` writes to OUT.pub: a raw 32-byte key in base64."""
    text = data.strip()
    if text.startswith(b"-----BEGIN PUBLIC KEY-----"):
        return True
    try:
        return len(base64.b64decode(text, validate=True)) == 32
    except ValueError:
        return False


def keygen(
    out_path: Annotated[Path, typer.Option("--out", "-o", help="private key file (PEM)")] = Path(
        "carbonlabel-key.pem"
    ),
    force: Annotated[bool, typer.Option(help="overwrite an existing key file")] = False,
) -> None:
    """Make an Ed25519 key pair: private key (mode 0600) and OUT.pub (base64 raw public key)."""
    pub_path = out_path.with_name(out_path.name + ".pub")
    if out_path.exists() and not force:
        raise CliError(f"{out_path} exists; pass --force to overwrite it")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        os.chmod(out_path, 0o600)
        pub_path.write_text(b64encode(raw_public_key(key.public_key())) + "\n")
    except OSError as exc:
        raise CliError(f"cannot write the key: {exc}") from None
    console.print(f"private key: {out_path} (0600)  public key: {pub_path}")
    out.print(keyid_for(key.public_key()))


def key_register(
    vendor: Annotated[str, typer.Argument(help="your vendor slug")],
    key: Annotated[Path, typer.Option("--key", "-k", help="private key file")],
    registry: RegistryOpt,
    token: TokenOpt,
) -> None:
    """Register the public half of KEY to VENDOR (signs a proof of possession)."""
    private = _private_key(key)
    raw = raw_public_key(private.public_key())
    proof = private.sign(key_proof_message(registry, vendor, keyid_for(raw)))
    with RegistryClient(registry, token) as client:
        result = client.register_key(vendor, b64encode(raw), b64encode(proof))
    out.print(f"registered {result['keyid']} ({result['status']})")


def sign(
    label_path: Annotated[Path, typer.Argument(help="label JSON (the predicate)")],
    key: Annotated[Path, typer.Option("--key", "-k", help="private key file")],
    output: Annotated[
        Path | None, typer.Option("--out", "-o", help="envelope file (default LABEL.dsse.json)")
    ] = None,
) -> None:
    """Wrap a label in an in-toto statement and sign it into a DSSE envelope."""
    try:
        label = json.loads(_read(label_path))
    except json.JSONDecodeError as exc:
        raise CliError(f"{label_path} is not JSON: {exc}") from None
    if not isinstance(label, dict):
        raise CliError(f"{label_path} must hold a JSON object (the label)")
    try:
        statement = build_statement(label)
    except (KeyError, TypeError) as exc:
        raise CliError(f"{label_path} lacks a field the statement needs: {exc}") from None
    envelope = sign_statement(statement, _private_key(key))
    target = output or label_path.with_name(label_path.stem + ".dsse.json")
    target.write_text(json.dumps(envelope, indent=2) + "\n")
    out.print(str(target))


def submit(
    envelope_path: Annotated[Path, typer.Argument(help="DSSE envelope file")],
    registry: RegistryOpt,
    token: TokenOpt,
) -> None:
    """Send a signed envelope to a registry (retries network errors and 5xx, not 4xx)."""
    body = _read(envelope_path)
    with RegistryClient(registry, token) as client:
        status, result = client.submit(body)
    verb = "stored" if status == 201 else "already stored"
    out.print(f"{verb}: {result['label_id']}  {result['links']['self']}")


def verify(
    target: Annotated[
        str | None, typer.Argument(help="an envelope file, or a label id (needs --registry)")
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            "-p",
            help="public key (PEM or base64 raw); default: the vendor's keys from the registry",
        ),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry",
            envvar="CARBONLABEL_REGISTRY",
            help="also check the registry's transparency log",
        ),
    ] = None,
    vendor: Annotated[
        str | None, typer.Option("--vendor", help="verify every label of this vendor")
    ] = None,
    log_key: Annotated[
        str | None,
        typer.Option(
            "--log-key",
            envvar="CARBONLABEL_LOG_KEY",
            help="the registry's checkpoint verifier key (default: pinned on first use)",
        ),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option("--state", help="state file of seen checkpoints", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the results as JSON")] = False,
) -> None:
    """Verify labels: signature, schema, results recomputed from the traces, and with
    --registry their inclusion in the signed log and its consistency with what was seen before.

    Exit codes: 0 verified, 1 other error, 3 malformed envelope, 4 bad signature,
    5 schema violation, 6 results inconsistent with traces, 7 not in the log as claimed,
    8 the log is inconsistent (history rewritten, bad checkpoint signature). With several
    labels, the highest code.
    """
    from bench_runner.client import RegistryError
    from bench_runner.verify_cli import VerifyUsageError, run_verify

    key = None
    if public_key is not None:
        try:
            key = load_public_key(_read(public_key))
        except ValueError as exc:
            raise CliError(f"{public_key} is not an Ed25519 public key: {exc}") from None
    try:
        results = run_verify(
            target=target,
            public_key=key,
            registry=registry,
            vendor=vendor,
            log_key=log_key,
            state=state,
        )
    except (VerifyUsageError, RegistryError) as exc:
        raise CliError(str(exc)) from None
    if as_json:
        out.print_json(json.dumps([r.as_json() for r in results.items]))
    else:
        for note in results.notes:
            console.print(f"note: {note}", markup=False)
        for item in results.items:
            if item.outcome == VerifyExit.OK:
                out.print(f"OK {item.label_id}: {item.message}", markup=False)
            else:
                console.print(f"FAIL {item.label_id}: {item.message}", markup=False)
                for line in item.problems[:20]:
                    console.print(f"  {line}", markup=False)
    worst = results.worst()
    if worst != VerifyExit.OK:
        failed = sum(1 for i in results.items if i.outcome != VerifyExit.OK)
        raise CliError(
            f"verification failed for {failed} of {len(results.items)} labels "
            f"({worst.name.lower().replace('_', ' ')})",
            int(worst),
        )
