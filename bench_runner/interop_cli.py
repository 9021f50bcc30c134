"""Commands: ``import-codecarbon`` (CodeCarbon CSV -> label draft) and ``export`` (hf | sci).

Wire them into the console script with::

    app.command("import-codecarbon")(interop_cli.import_codecarbon)
    app.command("export")(interop_cli.export)

Every failure raises :class:`bench_runner.cli.CliError` (one line, non-zero exit).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from bench_runner.cli import CliError, RegistryOpt, console, out
from bench_runner.codecarbon_csv import InteropError, read_codecarbon_csv
from bench_runner.exports import export_hf, export_sci, merge_hf_into_readme
from bench_runner.interop import label_draft_from_codecarbon
from schemas.contract import LABEL_SCHEMA_ID, validate_label
from schemas.dsse import EnvelopeError, decode_statement, parse_envelope
from schemas.results import check_results


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


def _write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from None


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    return digest.hexdigest()


def import_codecarbon(
    csv_path: Annotated[Path, typer.Argument(help="CodeCarbon emissions.csv (v2 or v3)")],
    vendor: Annotated[str, typer.Option("--vendor", help="your vendor slug")],
    model: Annotated[str, typer.Option("--model", help="model name, or VENDOR/NAME")],
    revision: Annotated[str, typer.Option("--revision", help="model revision")],
    task: Annotated[
        str, typer.Option("--task", help="text-classification | text-generation | ...")
    ],
    phase: Annotated[str, typer.Option("--phase", help="inference | training")],
    units_per_row: Annotated[
        int,
        typer.Option(
            "--units-per-row",
            min=1,
            help="inferences (or optimizer steps) each CSV row's run completed",
        ),
    ],
    model_sha256: Annotated[
        str, typer.Option("--model-sha256", help="sha256 of the model artifact (the subject)")
    ],
    dataset_id: Annotated[str, typer.Option("--dataset-id", help="the data the runs used")],
    samples: Annotated[int, typer.Option("--samples", min=1, help="dataset samples")],
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)],
    precision: Annotated[str, typer.Option("--precision", help="fp32 | tf32 | fp16 | bf16 | ...")],
    registry: RegistryOpt,
    dataset_sha256: Annotated[
        str | None, typer.Option("--dataset-sha256", help="sha256 of the data")
    ] = None,
    dataset_file: Annotated[
        Path | None, typer.Option("--dataset-file", help="hash this file for --dataset-sha256")
    ] = None,
    hardware_class: Annotated[
        str | None,
        typer.Option("--hardware-class", help="reference class (default: from the GPU or OS)"),
    ] = None,
    zone: Annotated[
        str | None,
        typer.Option("--zone", help="grid zone, ISO 3166-1 alpha-2 (default: the CSV's country)"),
    ] = None,
    cpu_method: Annotated[
        str,
        typer.Option("--cpu-method", help="rapl if CodeCarbon logged RAPL tracking, else estimate"),
    ] = "estimate",
    sequence_length: Annotated[int | None, typer.Option("--sequence-length", min=1)] = None,
    new_tokens: Annotated[int | None, typer.Option("--new-tokens", min=1)] = None,
    image_size_px: Annotated[int | None, typer.Option("--image-size-px", min=1)] = None,
    declared_total_steps: Annotated[
        int | None,
        typer.Option("--declared-total-steps", min=1, help="training: steps of a full run"),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--out", "-o", help="draft file (default CSV.label.json)")
    ] = None,
) -> None:
    """Turn a CodeCarbon emissions.csv into an unsigned label draft (one trial per row).

    CodeCarbon's PUE is divided back out; kWh become joules. Then: carbonlabel sign DRAFT.
    """
    if dataset_sha256 is not None and dataset_file is None:
        digest = dataset_sha256
    elif dataset_file is not None and dataset_sha256 is None:
        digest = _file_sha256(dataset_file)
    else:
        raise CliError("give exactly one of --dataset-sha256 and --dataset-file")
    workload: dict[str, Any] = {
        "dataset_id": dataset_id,
        "dataset_sha256": digest,
        "samples": samples,
        "batch_size": batch_size,
        "precision": precision,
    }
    for key, value in (
        ("sequence_length", sequence_length),
        ("new_tokens", new_tokens),
        ("image_size_px", image_size_px),
    ):
        if value is not None:
            workload[key] = value
    try:
        rows = read_codecarbon_csv(csv_path)
        label = label_draft_from_codecarbon(
            rows,
            vendor=vendor,
            model=model,
            revision=revision,
            task=task,
            phase=phase,
            units_per_row=units_per_row,
            registry=registry,
            model_sha256=model_sha256,
            workload=workload,
            hardware_class=hardware_class,
            zone=zone,
            cpu_method=cpu_method,
            declared_total_steps=declared_total_steps,
        )
    except InteropError as exc:
        raise CliError(str(exc)) from None
    target = output or csv_path.with_name(csv_path.stem + ".label.json")
    _write_text(target, json.dumps(label, indent=2) + "\n")
    energy = label["results"]["energy_per_unit_wh"]
    console.print(
        f"{len(rows)} trials from CodeCarbon {rows[0].codecarbon_version}, {rows[0].layout}: "
        f"{energy['mean']:.6g} Wh per {label['results']['functional_unit']} "
        f"(cv {energy['cv']:.3g}), flags {', '.join(label['measurement']['flags'])}; "
        f"next: carbonlabel sign {target} --key KEY",
        markup=False,
    )
    out.print(str(target), markup=False, highlight=False, emoji=False)


def load_label_file(path: Path) -> dict[str, Any]:
    """A label from a bare label JSON, an in-toto statement or a DSSE envelope file.

    The label must validate and its results must follow from its traces. An envelope's signature
    is not checked here (``carbonlabel verify`` does that).
    """
    data = _read_bytes(path)
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CliError(f"{path} is not JSON: {exc}") from None
    if isinstance(obj, dict) and "payloadType" in obj:
        try:
            obj = decode_statement(parse_envelope(obj))
        except EnvelopeError as exc:
            raise CliError(f"{path} is not a DSSE envelope this project reads: {exc}") from None
    if isinstance(obj, dict) and "predicate" in obj:
        if obj.get("predicateType") != LABEL_SCHEMA_ID:
            raise CliError(f"{path}: the statement's predicateType is not {LABEL_SCHEMA_ID}")
        obj = obj["predicate"]
    if not isinstance(obj, dict):
        raise CliError(f"{path} must hold a JSON object (a label or an envelope)")
    issues = validate_label(obj)
    if issues:
        first = issues[0]
        raise CliError(f"{path} is not a valid label: {first.pointer}: {first.message}")
    mismatches = check_results(obj)
    if mismatches:
        raise CliError(f"{path}: results do not follow from the traces at {mismatches[0].pointer}")
    return obj


def export(
    label_path: Annotated[Path, typer.Argument(help="label JSON or DSSE envelope file")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="hf (model card) | sci (ISO 21031)")],
    output: Annotated[
        Path | None, typer.Option("--out", "-o", help="write here (default: standard output)")
    ] = None,
    readme: Annotated[
        Path | None,
        typer.Option(
            "--readme",
            help="hf: merge into this README.md's front matter (in place unless --out)",
        ),
    ] = None,
    training_type: Annotated[
        str | None,
        typer.Option("--training-type", help="hf, training labels: pre-training | fine-tuning"),
    ] = None,
    embodied_g: Annotated[
        float | None,
        typer.Option("--embodied-g", help="sci: embodied emissions M, grams per functional unit"),
    ] = None,
) -> None:
    """Export a label as a model-card co2_eq_emissions block (hf) or an SCI figure (sci)."""
    if fmt not in ("hf", "sci"):
        raise CliError(f"--format must be hf or sci, got {fmt!r}")
    if fmt == "sci" and (readme is not None or training_type is not None):
        raise CliError("--readme and --training-type apply to --format hf only")
    if fmt == "hf" and embodied_g is not None:
        raise CliError("--embodied-g applies to --format sci only")
    label = load_label_file(label_path)
    try:
        if fmt == "sci":
            text = json.dumps(export_sci(label, embodied_g=embodied_g), indent=2) + "\n"
        elif readme is not None:
            current = _read_bytes(readme)
            try:
                readme_text = current.decode("utf-8")
            except UnicodeDecodeError:
                raise CliError(f"{readme} is not UTF-8 text") from None
            text = merge_hf_into_readme(readme_text, label, training_type=training_type)
            output = output or readme
        else:
            text = export_hf(label, training_type=training_type)
    except InteropError as exc:
        raise CliError(str(exc)) from None
    if output is None:
        out.print(text, end="", markup=False, highlight=False, emoji=False)
        return
    _write_text(output, text)
    out.print(str(output), markup=False, highlight=False, emoji=False)
