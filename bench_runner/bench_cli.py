"""``carbonlabel bench``: run the protocol, write a signed label, optionally submit it."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import typer

from bench_runner.bench_view import Display, summary_lines, summary_table
from bench_runner.cli import CliError, _private_key, console, out, print_meter_findings
from bench_runner.measure import Protocol, ProtocolRunner
from bench_runner.tracking import mlflow_log

if TYPE_CHECKING:
    from bench_runner.devices.discover import MeterSet
    from bench_runner.workloads.base import Workload

TASK_HELP = "text-classification, text-generation, image-classification or chat-serving"
SERVING = "Serving (--task chat-serving)"


EPILOG = """Suite 2: Hugging Face models on real text, with a quality score (one example per task;
the model must be on this machine: `hf download ID` first, or pass a local directory):

text-generation (GSM8K, 200 questions, quality: exact match of the final number):
carbonlabel bench --task text-generation --model hf:Qwen/Qwen2.5-0.5B-Instruct \\
--model-id acme/qwen2.5-0.5b-instruct --key key.pem --registry https://registry.example

text-classification (BANKING77, 1,000 queries, quality: accuracy for a BANKING77 fine-tune):
carbonlabel bench --task text-classification --model hf:philschmid/BERT-Banking77 \\
--model-id acme/bert-banking77 --key key.pem --registry https://registry.example

image-classification (generated images at the model's image size, no quality figure):
carbonlabel bench --task image-classification --model hf:google/vit-base-patch16-224 \\
--model-id acme/vit-base-patch16-224 --key key.pem --registry https://registry.example

chat-serving (a model behind an OpenAI-compatible server, e.g. `vllm serve`, under closed-loop
load at each concurrency; the headline level is 8):
carbonlabel bench --task chat-serving --endpoint http://127.0.0.1:8000 \\
--served-model Qwen/Qwen2.5-0.5B-Instruct --concurrency 1,8,32 --precision bf16 \\
--model-id acme/qwen2.5-0.5b-instruct --key key.pem --registry https://registry.example

Quick check: add --samples 16 --max-new-tokens 32 (recorded in the label; the registry stores
such a label but does not grade it: non-standard workload)."""


def bench(
    task: Annotated[str, typer.Option(help=TASK_HELP)],
    model_id: Annotated[str, typer.Option("--model-id", help="vendor/name as the label names it")],
    key: Annotated[Path, typer.Option("--key", "-k", help="private key file to sign with")],
    phase: Annotated[str, typer.Option(help="inference or training")] = "inference",
    model: Annotated[
        str,
        typer.Option(
            help="'reference', package.module:factory (your model; suite 1), or "
            "hf:PATH_OR_ID (a Hugging Face model directory or Hub id in the local cache; suite 2)"
        ),
    ] = "reference",
    revision: Annotated[
        str | None,
        typer.Option(
            help="model revision; for hf: Hub ids the Hub revision to use from the cache "
            "(default: the snapshot's commit, else 'main'); suite 1 default 'v1'"
        ),
    ] = None,
    samples: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="hf: models: score and run N sampled items instead of the suite's sample "
            "(quick check; recorded, and the registry does not grade non-standard workloads)",
        ),
    ] = None,
    max_new_tokens: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="hf: text-generation: cap on new tokens instead of the suite's 256 (quick "
            "check; recorded, and the registry does not grade non-standard workloads)",
        ),
    ] = None,
    quality_from: Annotated[
        Path | None,
        typer.Option(
            help="lm-evaluation-harness results.json: its figures go into the label as "
            "declared quality (never as the measured figure)"
        ),
    ] = None,
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
    wue: Annotated[
        float | None,
        typer.Option(help="the site's water usage effectiveness, L/kWh (default 0.375)"),
    ] = None,
    cfe_supply: Annotated[
        Path | None,
        typer.Option(help="declared hourly carbon-free supply CSV: hour,cfe_kwh or hour,cfe_share"),
    ] = None,
    cfe_source: Annotated[
        str, typer.Option(help="what the carbon-free supply is (contract, certificates)")
    ] = "declared hourly carbon-free supply",
    residual_intensity: Annotated[
        float | None,
        typer.Option(help="g CO2e/kWh of unmatched consumption (default: the grid's)"),
    ] = None,
    meter: Annotated[str, typer.Option(help="auto, or force one: nvml, rapl, estimate")] = "auto",
    device: Annotated[
        str | None, typer.Option(help="torch device (default: cuda:0 if any)")
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="fp32, fp16 or bf16 (GPU; default fp32); chat-serving: the precision the "
            "engine serves at (required)"
        ),
    ] = None,
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
    mlflow: Annotated[
        bool, typer.Option(help="log the label to MLflow at MLFLOW_TRACKING_URI (docs/cli.md)")
    ] = False,
    mlflow_experiment: Annotated[
        str | None, typer.Option(envvar="MLFLOW_EXPERIMENT_NAME", help="default: carbonlabel")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="with --submit: check the token, its vendor, the key and the audience with "
            "the registry, then stop (bench --submit always checks them before measuring)",
        ),
    ] = False,
    endpoint: Annotated[
        str | None,
        typer.Option(help="the server's base URL (http://host:port)", rich_help_panel=SERVING),
    ] = None,
    served_model: Annotated[
        str | None,
        typer.Option(help="the model id the server lists in /v1/models", rich_help_panel=SERVING),
    ] = None,
    concurrency: Annotated[
        str | None,
        typer.Option(
            help="concurrency levels in order (default 1,8,32; the headline is 8, or the "
            "level closest to it)",
            rich_help_panel=SERVING,
        ),
    ] = None,
    gpus: Annotated[
        str | None,
        typer.Option(
            help="the GPUs the server uses, NVML indices or UUIDs: 0,1 (default: all visible)",
            rich_help_panel=SERVING,
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            help="NAME[==VERSION] of the engine, when the server does not say (vLLM does)",
            rich_help_panel=SERVING,
        ),
    ] = None,
    client_on_metered_host: Annotated[
        bool | None,
        typer.Option(
            "--client-on-metered-host/--no-client-on-metered-host",
            help="whether this load generator runs on the metered host (default: it does when "
            "the endpoint is this machine)",
            rich_help_panel=SERVING,
            show_default=False,
        ),
    ] = None,
    endpoint_api_key: Annotated[
        str | None,
        typer.Option(
            envvar="CARBONLABEL_ENDPOINT_API_KEY",
            help="bearer token of the server (vLLM --api-key)",
            rich_help_panel=SERVING,
            show_default=False,
        ),
    ] = None,
    request_timeout_s: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="a request not done by then is an error (default 600)",
            rich_help_panel=SERVING,
        ),
    ] = None,
) -> None:
    """Measure a model with the standard protocol and write a signed carbon label."""
    from bench_runner import serving_cli

    options = dict(locals())
    from bench_runner.bench_carbon import add_hourly, add_market, carbon_inputs
    from bench_runner.devices.base import MeterError
    from bench_runner.label import LabelInputs, build_label
    from bench_runner.workloads.base import WorkloadError
    from bench_runner.workloads.plugin import build_workload
    from schemas.dsse import build_statement, sign_statement

    audience = (registry or submit or "").rstrip("/")  # --registry names it; else --submit
    if not audience:
        raise CliError("name the registry the label is for: --registry URL or --submit URL")
    if submit and not token:
        raise CliError("--submit needs a vendor token: --token or CARBONLABEL_TOKEN")
    vendor, sep, model_name = model_id.partition("/")
    if not sep or not vendor or not model_name:
        raise CliError(f"--model-id must be vendor/name, got {model_id!r}")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from bench_runner.distributed import job_from_env

    job = job_from_env()  # this process is a rank of a torchrun job, or None
    # only rank 0 of a job signs: the other ranks need no key file (a throwaway never used)
    private_key = _private_key(key) if job is None or job.is_rank0 else Ed25519PrivateKey.generate()
    quiet = quiet or (job is not None and not job.is_rank0)
    if mlflow and (job is None or job.is_rank0):  # before measuring: MLflow answers
        mlflow_log.cli_check(experiment=mlflow_experiment)
    if dry_run and not submit:
        raise CliError("--dry-run checks a submission with the registry: pass --submit URL")
    if submit and token and (job is None or job.is_rank0):
        # before anything is measured: a wrong token, key or audience fails in seconds
        _check_submission(submit, token, model_id, key, private_key, audience)
        if dry_run:
            return
    if job is not None and task == serving_cli.TASK:
        raise CliError(
            f"{task} measures a server from one process: run it without torchrun "
            "(--gpus names the GPUs the engine uses)"
        )
    if task == serving_cli.TASK:
        serving_cli.bench_serving(
            options,
            audience=audience,
            vendor=vendor,
            model_name=model_name,
            private_key=private_key,
        )
        return
    serving_cli.refuse_serving_options(options)
    if quality_from and not model.startswith("hf:"):
        raise CliError("--quality-from is for hf: models (suite 2 labels carry quality)")
    declared = _declared_quality(quality_from) if quality_from else []
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
        carbon = carbon_inputs(
            zone=zone,
            intensity=intensity,
            intensity_source=intensity_source,
            pue=pue,
            hourly=hourly,
            wue=wue,
            cfe_supply=cfe_supply,
            cfe_source=cfe_source,
            residual_intensity=residual_intensity,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None

    def make_workload(on_device: str | None) -> Workload:
        try:
            return build_workload(
                task=task,
                phase=phase,
                model=model,
                artifact=artifact,
                device=on_device,
                precision=precision or "fp32",
                revision=revision,
                samples=samples,
                max_new_tokens=max_new_tokens,
            )
        except WorkloadError as exc:
            raise CliError(str(exc)) from None

    def make_meters(gpu: bool) -> MeterSet:
        from bench_runner.devices.discover import discover_meters

        try:
            return discover_meters(
                force=None if meter == "auto" else meter,
                gpu=gpu,
                allow_foreign_processes=allow_foreign_processes,
            )
        except MeterError as exc:
            raise CliError(str(exc)) from None

    if job is not None:  # each node's meters first, then the workload on every rank
        workload, found = job.setup(make_workload, make_meters, device)
    else:
        workload = make_workload(device)
    label_revision = _label_revision(revision, workload)
    if not quiet:
        console.print(_run_header(task, phase, model, workload), markup=False)

    if job is None:
        found = make_meters(workload.device.startswith("cuda"))
    print_meter_findings(found)
    flags = list(found.flags)

    run_wall = datetime.now(UTC)
    run_mono = time.monotonic()
    try:
        with Display(quiet, console) as display:
            runner = ProtocolRunner(found.meters, protocol, on_progress=display, lockstep=job)
            result = runner.run(workload)
    finally:
        found.close()
    job_run = job.gather(result, found, workload.phase) if job is not None else None
    if job is not None and job_run is None:
        return  # another rank of the job: rank 0 writes the label
    if job_run is not None:
        result, flags = job_run.result, job_run.flags
    quality = None
    if workload.suite != "1":
        with Display(quiet, console, "quality") as display:
            quality = workload.quality(display.scoring)
            display.quality_done(quality)

    inputs = LabelInputs(
        vendor=vendor,
        model_name=model_name,
        revision=label_revision,
        registry=audience,
        carbon=carbon.grid.to_label(),
        pue=carbon.pue,
        accelerator=job_run.accelerator if job_run else found.accelerator,
        flags=flags,
        declared_total_steps=declared_total_steps,
        declared_quality=declared,
        wue_l_per_kwh=carbon.wue_l_per_kwh,
    )
    label = build_label(
        inputs, workload, job_run.meters if job_run else found.meters, result, quality=quality
    )
    if job_run is not None:
        job_run.annotate(label)
    add_hourly(label, carbon, run_wall, run_mono)
    add_market(label, carbon, run_wall, run_mono)
    envelope = sign_statement(build_statement(label), private_key)
    out_dir.mkdir(parents=True, exist_ok=True)
    label_path = out_dir / f"{label['label_id']}.label.json"
    envelope_path = out_dir / f"{label['label_id']}.dsse.json"
    label_path.write_text(json.dumps(label, indent=2) + "\n")
    envelope_path.write_text(json.dumps(envelope) + "\n")
    console.print(summary_table(label))
    for line in summary_lines(label):
        console.print(line, markup=False)
    if label["measurement"]["flags"]:
        console.print(f"flags: {', '.join(label['measurement']['flags'])}")
    console.print(f"label (the unsigned figures): {label_path}", markup=False)
    console.print(f"signed envelope (what the registry stores): {envelope_path}", markup=False)
    out.print(str(envelope_path))  # stdout: the envelope's path alone, for scripts
    base = _submit(submit, token or "", envelope_path, model_id) if submit else None
    if mlflow:
        mlflow_log.cli_log(label, envelope_path, experiment=mlflow_experiment, registry_url=base)


_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def _label_revision(given: str | None, workload: Any) -> str:
    """The label's model.revision: as given; for a suite-2 model without one, the Hub
    snapshot's commit, else 'main'; suite 1: 'v1'."""
    if given is None:
        if workload.suite == "1":
            return "v1"
        source = getattr(workload, "source", None)
        given = getattr(source, "hub_revision", None) or "main"
    if not _REVISION.match(given):
        raise CliError(
            f"--revision {given!r} cannot name a label revision: letters, digits and . _ + - "
            "only, at most 128"
        )
    return given


def _run_header(task: str, phase: str, model: str, workload: Any) -> str:
    """One line: what is measured, with which model, on which data."""
    parts = [f"task {task} ({phase})", f"model {model}"]
    facts = workload.model_facts
    if facts:
        parts[-1] += f" ({facts['parameter_count']:,} parameters, {facts['dtype']})"
    summary = getattr(workload, "data_summary", None)
    data = summary() if callable(summary) else workload.description["dataset_id"]
    return "; ".join([*parts, f"data {data}"])


def _declared_quality(path: Path) -> list[dict[str, Any]]:
    """Declared quality figures from an lm-evaluation-harness results file."""
    from bench_runner.lmeval import LmEvalError, parse_lm_eval_results

    try:
        return parse_lm_eval_results(path)
    except LmEvalError as exc:
        raise CliError(str(exc)) from None


def _submit(url: str, token: str, envelope_path: Path, model_id: str) -> str:
    """Send the envelope; returns the registry's public base URL."""
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
    label_url = str(body["links"]["self"])
    base = label_url.split("/v1/labels/", 1)[0]  # the registry's public URL
    vendor, _, name = model_id.partition("/")
    page = f"{base}/models/{quote(vendor, safe='')}/{quote(name, safe='')}"
    console.print(f"{verb}: {page} (label {label_url})", markup=False)
    return base


def _check_submission(
    submit: str, token: str, model_id: str, key: Path, private_key: Any, audience: str
) -> None:
    """``bench_runner.preflight``'s checks, printed as one line (a failure: a CliError)."""
    from bench_runner.preflight import PreflightError, check_submission
    from schemas.dsse import keyid_for

    vendor, _, model_name = model_id.partition("/")
    try:
        ready = check_submission(
            submit,
            token,
            vendor=vendor,
            model_name=model_name,
            keyid=keyid_for(private_key.public_key()),
            key_path=key,
            audience=audience,
        )
    except PreflightError as exc:
        raise CliError(str(exc)) from None
    console.print(ready, markup=False, highlight=False)
