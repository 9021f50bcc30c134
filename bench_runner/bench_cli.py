"""``carbonlabel bench``: run the protocol, write a signed label, optionally submit it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from bench_runner.cli import CliError, _private_key, console, out
from bench_runner.measure import Progress, Protocol, ProtocolRunner

TASK_HELP = "text-classification, text-generation or image-classification"


class _Display:
    """Rich live progress: phase, trial i/N, live watts and (integrated) joules."""

    def __init__(self, quiet: bool) -> None:
        from rich.progress import Progress as RichProgress
        from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

        self.quiet = quiet
        self.progress = RichProgress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=quiet,
        )
        self.task_id = self.progress.add_task("preflight", total=None)
        self.energy_j = 0.0
        self.last: tuple[str, int, float] | None = None

    def __enter__(self) -> _Display:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def __call__(self, p: Progress) -> None:
        key = (p.phase, p.trial)
        if self.last is None or self.last[:2] != key:
            self.energy_j = 0.0
        elif p.power_w is not None:
            self.energy_j += p.power_w * max(0.0, p.elapsed_s - self.last[2])
        self.last = (p.phase, p.trial, p.elapsed_s)
        if p.phase == "done":
            self.progress.update(self.task_id, description="protocol done")
            return
        watts = f"{p.power_w:7.1f} W" if p.power_w is not None else "      ? W"
        where = {
            "idle": "idle baseline",
            "warmup": f"warm-up ({p.units} iterations)",
            "cooldown": f"cooldown before trial {p.trial}/{p.trials}",
            "trial": f"trial {p.trial}/{p.trials} ({p.units} units)",
            "done": "done",
        }[p.phase]
        self.progress.update(
            self.task_id, description=f"{where:<34} {watts}  {self.energy_j:9.1f} J"
        )


def _per_component_summaries(label: dict[str, Any]) -> dict[str, Any]:
    """Statistics per component over the trials, from the traces (display only)."""
    from schemas.results import per_trial_component_wh
    from schemas.stats import summarize

    return {name: summarize(v) for name, v in per_trial_component_wh(label).items()}


def _summary(label: dict[str, Any]) -> Table:
    results = label["results"]
    unit = "Wh / 1k inferences" if results["functional_unit"] == "1k-inferences" else "Wh / step"
    energy = results["energy_per_unit_wh"]
    table = Table(title=f"{label['model']['id']}@{label['model']['revision']}  ({unit})")
    for column in ("component", "method", "mean", "95% CI", "CV"):
        table.add_column(column)
    stats = _per_component_summaries(label)
    for component in results["components"]:
        s = stats[component["name"]]
        table.add_row(
            component["name"],
            component["method"],
            f"{s.mean:.6g}",
            f"[{s.ci95_low:.6g}, {s.ci95_high:.6g}]",
            f"{s.cv:.1%}",
        )
    table.add_row(
        "total (gross)",
        "",
        f"{energy['mean']:.6g}",
        f"[{energy['ci95_low']:.6g}, {energy['ci95_high']:.6g}]",
        f"{energy['cv']:.1%}",
    )
    carbon = label["carbon"]
    table.caption = (
        f"idle {results['idle_power_w']:.1f} W; "
        f"dynamic {results['dynamic_energy_per_unit_wh']:.6g}; "
        f"CO2e {carbon['co2e_per_unit_g']['mean']:.6g} g per unit "
        f"({carbon['zone']}, {carbon['intensity_g_per_kwh']:.0f} g/kWh, PUE {carbon['pue']})"
    )
    return table


def bench(
    task: Annotated[str, typer.Option(help=TASK_HELP)],
    model_id: Annotated[str, typer.Option("--model-id", help="vendor/name as the label names it")],
    key: Annotated[Path, typer.Option("--key", "-k", help="private key file to sign with")],
    phase: Annotated[str, typer.Option(help="inference or training")] = "inference",
    model: Annotated[
        str, typer.Option(help="'reference' or package.module:factory (your model)")
    ] = "reference",
    revision: Annotated[str, typer.Option(help="model revision")] = "v1",
    artifact: Annotated[
        Path | None, typer.Option(help="model file or directory to hash into the subject digest")
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(envvar="CARBONLABEL_REGISTRY", help="the registry the label is for"),
    ] = None,
    submit: Annotated[
        str | None, typer.Option("--submit", help="submit to this registry URL when done")
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar="CARBONLABEL_TOKEN", help="vendor API token")
    ] = None,
    zone: Annotated[str, typer.Option(help="grid zone: ISO 3166-1 alpha-2[-region]")] = "FR",
    intensity: Annotated[
        float | None, typer.Option(help="override the grid intensity (g CO2e/kWh)")
    ] = None,
    intensity_source: Annotated[
        str, typer.Option(help="where an overriding intensity comes from")
    ] = "user-supplied",
    pue: Annotated[
        float | None, typer.Option(help="power usage effectiveness (default 1.56)")
    ] = None,
    hourly: Annotated[
        Path | None, typer.Option(help="hourly intensity CSV: timestamp,intensity_g_per_kwh")
    ] = None,
    meter: Annotated[str, typer.Option(help="auto, or force one: nvml, rapl, estimate")] = "auto",
    device: Annotated[
        str | None, typer.Option(help="torch device (default: cuda:0 if any)")
    ] = None,
    precision: Annotated[str, typer.Option(help="fp32, fp16 or bf16 (GPU)")] = "fp32",
    trials: Annotated[int, typer.Option(min=2)] = 5,
    min_window_s: Annotated[float, typer.Option(help="minimum trial window (s)")] = 10.0,
    idle_s: Annotated[float, typer.Option(help="idle baseline (s)")] = 10.0,
    warmup_iterations: Annotated[int, typer.Option(min=0)] = 10,
    warmup_min_s: Annotated[float, typer.Option(min=0)] = 5.0,
    cooldown_s: Annotated[float, typer.Option(min=0)] = 2.0,
    cv_threshold: Annotated[float, typer.Option(min=0)] = 0.10,
    allow_foreign_processes: Annotated[
        bool, typer.Option(help="measure even if other processes use the GPU (flagged)")
    ] = False,
    declared_total_steps: Annotated[
        int | None, typer.Option(help="training: steps of the full run, for an extrapolated total")
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="folder for the label and envelope")
    ] = Path("."),
    quiet: Annotated[bool, typer.Option(help="no live progress")] = False,
) -> None:
    """Measure a model with the standard protocol and write a signed carbon label."""
    from bench_runner import carbon as carbon_data
    from bench_runner.devices.base import MeterError
    from bench_runner.label import LabelInputs, build_label, trial_intervals_wh
    from bench_runner.workloads.base import WorkloadError
    from bench_runner.workloads.plugin import build_workload
    from schemas.dsse import build_statement, sign_statement
    from schemas.results import units_per_functional_unit

    audience = (submit or registry or "").rstrip("/")
    if not audience:
        raise CliError("name the registry the label is for: --registry URL or --submit URL")
    if submit and not token:
        raise CliError("--submit needs a vendor token: --token or CARBONLABEL_TOKEN")
    vendor, sep, model_name = model_id.partition("/")
    if not sep or not vendor or not model_name:
        raise CliError(f"--model-id must be vendor/name, got {model_id!r}")
    private_key = _private_key(key)
    try:
        protocol = Protocol(
            idle_baseline_s=idle_s,
            warmup_iterations=warmup_iterations,
            warmup_min_s=warmup_min_s,
            trials=trials,
            min_window_s=min_window_s,
            cooldown_s=cooldown_s,
            cv_threshold=cv_threshold,
        )
        grid = (
            carbon_data.override(zone, intensity, source=intensity_source)
            if intensity is not None
            else carbon_data.lookup(zone)
        )
        pue_value = carbon_data.validate_pue(pue if pue is not None else carbon_data.DEFAULT_PUE)
        hourly_rows = carbon_data.load_hourly_csv(hourly) if hourly else None
    except ValueError as exc:
        raise CliError(str(exc)) from None

    try:
        workload = build_workload(
            task=task,
            phase=phase,
            model=model,
            artifact=artifact,
            device=device,
            precision=precision,
        )
    except WorkloadError as exc:
        raise CliError(str(exc)) from None

    try:
        from bench_runner.devices.discover import discover_meters

        found = discover_meters(
            force=None if meter == "auto" else meter,
            gpu=workload.device.startswith("cuda"),
            allow_foreign_processes=allow_foreign_processes,
        )
    except MeterError as exc:
        raise CliError(str(exc)) from None
    if found.estimated:
        console.print(
            "[bold red]WARNING: nothing can be measured on this machine; energy will be "
            "ESTIMATED, not measured.[/] The label will say so and get no grade.",
        )
        for reason in found.reasons:
            console.print(f"  - {reason}", markup=False)
    for note in found.notes:
        console.print(f"note: {note}", markup=False)
    flags = list(found.flags)

    run_wall = datetime.now(UTC)
    run_mono = time.monotonic()
    try:
        with _Display(quiet) as display:
            result = ProtocolRunner(found.meters, protocol, on_progress=display).run(workload)
    finally:
        found.close()

    inputs = LabelInputs(
        vendor=vendor,
        model_name=model_name,
        revision=revision,
        registry=audience,
        carbon=grid.to_label(),
        pue=pue_value,
        accelerator=found.accelerator,
        flags=flags,
        declared_total_steps=declared_total_steps,
    )
    label = build_label(inputs, workload, found.meters, result)
    if hourly_rows:
        intervals = trial_intervals_wh(label, run_wall, run_mono)
        per_fu = units_per_functional_unit(phase)
        trial_traces = label["traces"]["trials"]
        try:
            # per trial, then the mean: the same statistic as the headline energy per unit
            per_trial_g = [
                carbon_data.hourly_matched_co2e_g([interval], hourly_rows, pue_value)
                / trial["units"]
                * per_fu
                for interval, trial in zip(intervals, trial_traces, strict=True)
            ]
        except ValueError as exc:
            raise CliError(f"hourly intensities: {exc}") from None
        label["carbon"]["hourly"] = {
            "intensities": carbon_data.hourly_for_label(
                hourly_rows, intervals[0][0], intervals[-1][1]
            ),
            "co2e_per_unit_g": sum(per_trial_g) / len(per_trial_g),
        }
    envelope = sign_statement(build_statement(label), private_key)
    out_dir.mkdir(parents=True, exist_ok=True)
    label_path = out_dir / f"{label['label_id']}.label.json"
    envelope_path = out_dir / f"{label['label_id']}.dsse.json"
    label_path.write_text(json.dumps(label, indent=2) + "\n")
    envelope_path.write_text(json.dumps(envelope) + "\n")
    console.print(_summary(label))
    if label["measurement"]["flags"]:
        console.print(f"flags: {', '.join(label['measurement']['flags'])}")
    console.print(f"label: {label_path}")
    out.print(str(envelope_path))
    if submit:
        _submit(submit, token or "", envelope_path)


def _submit(url: str, token: str, envelope_path: Path) -> None:
    from bench_runner.client import RegistryClient, RegistryError

    try:
        with RegistryClient(url, token) as client:
            status, body = client.submit(envelope_path.read_bytes())
    except RegistryError as exc:
        if exc.status is None:
            raise CliError(
                f"{exc}. The signed envelope is kept at {envelope_path}; submit it later with: "
                f"carbonlabel submit {envelope_path} --registry {url}"
            ) from None
        raise CliError(f"{exc} (envelope kept at {envelope_path})") from None
    verb = "stored" if status == 201 else "already stored"
    console.print(f"{verb}: {body['links']['self']}")
