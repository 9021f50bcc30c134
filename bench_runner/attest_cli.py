"""``carbonlabel attest``: an auditor countersigns a label it reproduced.

The auditor measures the model itself (``carbonlabel bench`` on its side), then points this
command at its own label (``--figures``): the mean and 95% CI of gross energy per functional
unit, the functional unit, the hardware class, the number of trials, the CO2e and the time of the
measurement are taken from it. The command fetches the target label's payload digest from the
registry, builds the in-toto attestation statement (``schemas.attestation``), checks it and
previews the verdict locally, signs it with the auditor's key into a DSSE envelope, writes it,
and submits it.

Exit codes: 0 stored and the figures agree (the label is verified); 7 stored but the figures
disagree; 5 the statement fails the attestation schema; 1 any other failure; 2 usage.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from bench_runner.cli import CliError, _private_key, _read, console, out
from bench_runner.client import RegistryClient, RegistryError
from schemas.attestation import (
    agreement,
    attestation_issues,
    build_attestation_statement,
)
from schemas.dsse import (
    EnvelopeError,
    decode_statement,
    keyid_for,
    parse_envelope,
    sign_statement,
)

EXIT_DISAGREES = 7
EXIT_SCHEMA = 5
NOTES_MAX_CHARS = 2000
_LABEL_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class AttestClient(RegistryClient):
    """The registry calls of ``attest`` (same retries as every client call)."""

    def label(self, label_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/v1/labels/{label_id}").json()
        return result

    def auditors(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("GET", "/v1/auditors").json()["auditors"]
        return result

    def attest(self, label_id: str, envelope: bytes) -> tuple[int, dict[str, Any]]:
        response = self._request(
            "POST",
            f"/v1/labels/{label_id}/attestations",
            content=envelope,
            headers={"Content-Type": "application/json"},
        )
        return response.status_code, response.json()


def own_label(path: Path) -> dict[str, Any]:
    """The auditor's own label: a label JSON, an in-toto statement, or a DSSE envelope of one."""
    data = _read(path)
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CliError(f"{path} is not JSON: {exc}") from None
    if isinstance(document, dict) and "payloadType" in document:
        try:
            document = decode_statement(parse_envelope(document))
        except EnvelopeError as exc:
            raise CliError(f"{path} is not a DSSE envelope this project reads: {exc}") from None
    if isinstance(document, dict) and isinstance(document.get("predicate"), dict):
        document = document["predicate"]
    if not isinstance(document, dict):
        raise CliError(f"{path} must hold a JSON object (your label)")
    return document


def predicate_from(
    label: dict[str, Any], *, label_id: str, auditor: str, notes: str | None, path: Path
) -> dict[str, Any]:
    """The attestation predicate: the auditor's figures taken from its own label."""
    try:
        energy = label["results"]["energy_per_unit_wh"]
        results: dict[str, Any] = {
            "functional_unit": label["results"]["functional_unit"],
            "energy_per_unit_wh": {
                "mean": energy["mean"],
                "ci95_low": energy["ci95_low"],
                "ci95_high": energy["ci95_high"],
            },
        }
        trials = label["measurement"]["trials"]
        predicate: dict[str, Any] = {
            "label_id": label_id,
            "auditor": auditor,
            "reproduced_at": label["created_at"],
            "hardware_class": label["hardware"]["hardware_class"],
            "trials": trials,
            "results": results,
        }
    except (KeyError, TypeError) as exc:
        raise CliError(f"{path} lacks a field the attestation needs: {exc}") from None
    co2e = label.get("carbon", {}).get("co2e_per_unit_g") if isinstance(label, dict) else None
    if isinstance(co2e, dict) and {"mean", "ci95_low", "ci95_high"} <= co2e.keys():
        results["co2e_per_unit_g"] = {k: co2e[k] for k in ("mean", "ci95_low", "ci95_high")}
    if notes:
        predicate["notes"] = notes
    return predicate


def _auditor_slug(client: AttestClient, keyid: str, registry: str) -> str:
    for item in client.auditors():
        if item.get("keyid") == keyid:
            return str(item["auditor"])
    raise CliError(f"key {keyid} is not registered to an auditor at {registry}")


def run_attest(
    *,
    key: Path,
    label_id: str,
    figures: Path,
    registry: str,
    token: str | None,
    out_path: Path | None,
    submit: bool,
    auditor: str | None,
    label_sha256: str | None,
    notes: str | None,
    transport: httpx.BaseTransport | None = None,
    market: tuple[bool, str] | None = None,
) -> int:
    """Everything ``attest`` does (tests pass a ``transport``); raises CliError on a failure
    and on a stored attestation whose figures disagree (exit code 7)."""
    label_id = label_id.strip().lower()
    if not _LABEL_ID.match(label_id):
        raise CliError(f"--label-id {label_id!r} is not a label id (a UUID)")
    if label_sha256 is not None and not _SHA256.match(label_sha256):
        raise CliError("--label-sha256 must be 64 lowercase hex digits")
    if notes is not None and len(notes) > NOTES_MAX_CHARS:
        raise CliError(f"--notes is longer than {NOTES_MAX_CHARS} characters")
    if market is not None and not 0 < len(market[1].strip()) <= 512:
        raise CliError(
            "--market-agrees/--market-disagrees needs --market-evidence (1 to 512 characters)"
        )
    if submit and not token:
        raise CliError("an auditor token is needed to submit: pass --token (or --no-submit)")
    private = _private_key(key)
    mine = own_label(figures)
    keyid = keyid_for(private.public_key())
    target: dict[str, Any] | None = None
    client = AttestClient(registry, token, transport=transport)
    with client:
        try:
            if label_sha256 is None or submit:
                target = client.label(label_id)
            slug = auditor or _auditor_slug(client, keyid, registry)
        except RegistryError as exc:
            if exc.status == 404:
                raise CliError(f"no label {label_id} at {registry}") from None
            raise
        digest = label_sha256
        if target is not None:
            stored = str(target.get("verification", {}).get("payload_sha256", ""))
            if digest is not None and digest != stored:
                raise CliError(
                    f"--label-sha256 {digest} is not the label's payload digest {stored}"
                )
            digest = stored
        assert digest is not None
        predicate = predicate_from(mine, label_id=label_id, auditor=slug, notes=notes, path=figures)
        if market is not None:
            predicate["declarations"] = {
                "market": {"agrees": market[0], "evidence": market[1].strip()}
            }
        statement = build_attestation_statement(label_id, digest, predicate)
        issues = attestation_issues(statement)
        if issues:
            for issue in issues[:20]:
                console.print(f"  {issue.pointer}: {issue.message}", markup=False)
            raise CliError(f"the attestation fails its schema ({len(issues)} errors)", EXIT_SCHEMA)
        if target is not None:
            preview = agreement(
                label_energy_wh=float(target["energy_per_unit_wh"]),
                label_hardware_class=str(target["hardware_class"]),
                label_functional_unit=str(target["functional_unit"]),
                predicate=predicate,
            )
            console.print(f"local check: {_verdict_text(preview.agrees, preview.reasons)}")
        envelope = sign_statement(statement, private)
        target_path = out_path or Path(f"{label_id}.attestation.dsse.json")
        try:
            target_path.write_text(json.dumps(envelope, indent=2) + "\n")
        except OSError as exc:
            raise CliError(f"cannot write {target_path}: {exc.strerror}") from None
        console.print(f"attestation: {target_path}")
        if not submit:
            out.print(str(target_path))
            return 0
        status, result = client.attest(label_id, target_path.read_bytes())
    verb = "stored" if status == 201 else "already stored"
    relative = result.get("relative_difference")
    shown = f"{relative:+.1%}" if isinstance(relative, int | float) else "n/a"
    verdict = "agrees" if result.get("agrees") else "disagrees"
    out.print(
        f"{verb}: {verdict} ({shown} vs the label's energy per unit); "
        f"label {label_id} is {result.get('tier')}; log index {result.get('log_index')}"
    )
    if not result.get("agrees"):
        for reason in result.get("reasons", [])[:10]:
            console.print(f"  {reason}", markup=False)
        raise CliError(
            f"your figures disagree with label {label_id} (the attestation is stored and logged)",
            EXIT_DISAGREES,
        )
    return 0


def _verdict_text(agrees: bool, reasons: list[str]) -> str:
    return "figures agree" if agrees else "figures disagree: " + "; ".join(reasons)


def attest(
    key: Annotated[Path, typer.Option("--key", "-k", help="the auditor's private key file")],
    label_id: Annotated[str, typer.Option("--label-id", help="the label to attest (its id)")],
    figures: Annotated[
        Path,
        typer.Option(
            "--figures", help="your own label of the model (label JSON, statement or envelope)"
        ),
    ],
    registry: Annotated[
        str, typer.Option("--registry", envvar="CARBONLABEL_REGISTRY", help="registry base URL")
    ],
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="CARBONLABEL_AUDITOR_TOKEN",
            help="the auditor's API token",
            show_default=False,
        ),
    ] = None,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="envelope file (default LABEL_ID.attestation.dsse.json)"),
    ] = None,
    submit: Annotated[
        bool, typer.Option("--submit/--no-submit", help="send it to the registry")
    ] = True,
    auditor: Annotated[
        str | None,
        typer.Option(help="your auditor slug (default: looked up by your key at the registry)"),
    ] = None,
    label_sha256: Annotated[
        str | None,
        typer.Option(
            "--label-sha256",
            help="the label's payload SHA-256 (with --no-submit: no need to ask the registry)",
        ),
    ] = None,
    notes: Annotated[str | None, typer.Option(help="free text, at most 2,000 characters")] = None,
    market: Annotated[
        bool | None,
        typer.Option(
            "--market-agrees/--market-disagrees",
            help="your check of the label's declared carbon-free supply (with --market-evidence)",
            show_default=False,
        ),
    ] = None,
    market_evidence: Annotated[
        str | None, typer.Option(help="what you examined: contract, certificates, meter data")
    ] = None,
) -> None:
    """Countersign a label you reproduced: your figures, signed, sent to the registry.

    Exit codes: 0 agree (verified), 7 disagree (stored all the same), 5 schema, 1 other, 2 usage.
    """
    run_attest(
        key=key,
        label_id=label_id,
        figures=figures,
        registry=registry,
        token=token,
        out_path=out_path,
        submit=submit,
        auditor=auditor,
        label_sha256=label_sha256,
        notes=notes,
        market=None if market is None else (market, market_evidence or ""),
    )
