"""``carbonlabel bench --task chat-serving``: measure a model behind an OpenAI-compatible server
under load, per concurrency level, and write a signed label (``bench_cli.bench`` hands over)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bench_runner.cli import CliError, console, out, print_meter_findings

TASK = "chat-serving"
DEFAULT_LEVELS = "1,8,32"
#: a registry's default limit on a request body (registry/config.py, max_body_bytes)
REGISTRY_BODY_LIMIT_BYTES = 1_048_576
#: a client this busy (CPU share of one core in a window) may be what limits the load
CLIENT_BUSY_SHARE = 0.8
#: bench options that only chat-serving takes (the CLI's names)
SERVING_OPTIONS = {
    "endpoint": "--endpoint",
    "served_model": "--served-model",
    "concurrency": "--concurrency",
    "gpus": "--gpus",
    "engine": "--engine",
    "client_on_metered_host": "--client-on-metered-host",
    "endpoint_api_key": "--endpoint-api-key",
    "request_timeout_s": "--request-timeout-s",
}
#: bench options chat-serving refuses: (name, CLI name, why)
NOT_FOR_SERVING = {
    "quality_from": "--quality-from",
    "artifact": "--artifact",
    "declared_total_steps": "--declared-total-steps",
    "device": "--device",
}


def refuse_serving_options(options: Mapping[str, Any]) -> None:
    """Other tasks: the serving options are errors, not silently ignored."""
    given = [flag for name, flag in SERVING_OPTIONS.items() if options.get(name) is not None]
    if given:
        raise CliError(f"{', '.join(given)}: for --task chat-serving only")


def _check_options(options: Mapping[str, Any]) -> None:
    if not options.get("endpoint") or not options.get("served_model"):
        raise CliError("--task chat-serving needs --endpoint URL and --served-model NAME")
    if options["phase"] != "inference":
        raise CliError("--task chat-serving is an inference task (no --phase training)")
    given = [flag for name, flag in NOT_FOR_SERVING.items() if options.get(name) is not None]
    if given:
        raise CliError(f"{', '.join(given)}: not for --task chat-serving")
    model = str(options["model"])
    if model != "reference" and not model.startswith("hf:"):
        raise CliError(
            "--model for chat-serving is hf:PATH_OR_ID: the served model's files on this "
            "machine, to name them in the label (optional)"
        )
    if not options.get("precision"):
        raise CliError(
            "--task chat-serving: declare the precision the engine serves the model at: "
            "--precision fp32|fp16|bf16 (e.g. vLLM's --dtype)"
        )


def _protocol(options: Mapping[str, Any]) -> Any:
    from bench_runner.measure import Protocol

    return Protocol(
        idle_baseline_s=options["idle_s"],
        warmup_iterations=0,
        warmup_min_s=options["warmup_min_s"],
        trials=options["trials"],
        min_window_s=options["min_window_s"],
        cooldown_s=options["cooldown_s"],
        cv_threshold=options["cv_threshold"],
    )


def _preflight(load: Any) -> None:
    """One request before anything is measured: the server must stream, with usage."""
    import httpx

    from bench_runner.serving.client import run_blocking, send_chat

    async def one() -> Any:
        async with httpx.AsyncClient(headers=load.headers) as client:
            return await send_chat(
                client, load.url, load.bodies[0], 0, timeout_s=load.request_timeout_s
            )

    result = run_blocking(one())
    if not result.ok:
        raise CliError(f"a test request to {load.url} failed before measuring: {result.describe()}")


def _meters(options: Mapping[str, Any]) -> Any:
    """The GPUs in --gpus (default: every one visible) and the host, via discover_meters.
    Processes on the metered GPUs are the deployment's: allowed, listed, not flagged."""
    from bench_runner.devices.base import MeterError
    from bench_runner.devices.discover import discover_meters

    gpus = options.get("gpus")
    env = dict(os.environ)
    if gpus:
        env.update(CUDA_VISIBLE_DEVICES=gpus, CUDA_DEVICE_ORDER="PCI_BUS_ID")
    meter = options["meter"]
    try:
        found = discover_meters(
            force=None if meter == "auto" else meter,
            gpu=True if gpus else None,
            allow_foreign_processes=True,
            env=env,
        )
    except MeterError as exc:
        raise CliError(str(exc)) from None
    # every process on the metered GPUs is the deployment's: no note about sharing them
    print_meter_findings(found, hide_note=lambda note: "other processes share" in note)
    for gpu in found.gpus:
        pids = found.foreign_pids.get(gpu.index)
        if pids:
            listed = ", ".join(map(str, pids))
            console.print(f"note: GPU {gpu.index}: processes {listed} (the deployment's)")
        else:
            console.print(f"note: GPU {gpu.index} runs no process: is the engine on it?")
    return found


def _header(
    options: Mapping[str, Any], engine: dict[str, Any], sample: Any, levels: list[int]
) -> str:
    from schemas import suites

    said = "from the server" if engine["source"] == "server" else "declared"
    name = engine["name"] + (f" {engine['version']}" if engine.get("version") else "")
    return (
        f"task chat-serving (inference); model {options['served_model']} at "
        f"{options['endpoint']} ({name}, {said}); data {sample.dataset_id}, "
        f"{len(sample.items):,} of {sample.n_items:,} items; concurrency "
        f"{', '.join(map(str, levels))} (headline {suites.headline_concurrency(levels)})"
    )


def bench_serving(
    options: Mapping[str, Any], *, audience: str, vendor: str, model_name: str, private_key: Any
) -> None:
    """Run the serving protocol and write (and submit) the signed label."""
    from bench_runner import carbon as carbon_data
    from bench_runner.label import LabelInputs
    from bench_runner.serving import client as serving_client
    from bench_runner.serving import label as serving_label
    from bench_runner.serving.load import LoadGenerator
    from bench_runner.serving.protocol import ServingRunError, ServingRunner
    from bench_runner.serving.view import ServingDisplay
    from bench_runner.workloads.base import WorkloadError

    _check_options(options)
    quiet = bool(options["quiet"])
    try:
        protocol = _protocol(options)
        grid = (
            carbon_data.override(
                options["zone"], options["intensity"], source=options["intensity_source"]
            )
            if options["intensity"] is not None
            else carbon_data.lookup(options["zone"])
        )
        pue = carbon_data.validate_pue(
            carbon_data.DEFAULT_PUE if options["pue"] is None else options["pue"]
        )
        hourly_rows = carbon_data.load_hourly_csv(options["hourly"]) if options["hourly"] else None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    endpoint = str(options["endpoint"])
    headers = {}
    if options.get("endpoint_api_key"):
        headers["Authorization"] = f"Bearer {options['endpoint_api_key']}"
    try:
        levels = serving_label.parse_levels(options.get("concurrency") or DEFAULT_LEVELS)
        base = serving_client.base_url(endpoint)
        info = serving_client.probe_server(base, options["served_model"], headers=headers)
        engine = serving_label.engine_of(info, options.get("engine"))
        sample, prompts = serving_label.request_prompts(options.get("samples"))
        source = None
        if str(options["model"]).startswith("hf:"):
            from bench_runner.workloads.hfsource import resolve_model

            source = resolve_model(str(options["model"])[3:], options.get("revision"))
    except (serving_client.ServingError, WorkloadError) as exc:
        raise CliError(str(exc)) from None
    declared_local = options.get("client_on_metered_host")
    local = serving_client.is_this_machine(endpoint)
    on_host = bool(declared_local) if declared_local is not None else local
    cap = int(
        options.get("max_new_tokens") or serving_label.task_spec()["generation"]["max_new_tokens"]
    )
    serving = serving_label.serving_block(
        engine=engine,
        endpoint_host=serving_client.endpoint_host(base),
        served_model=str(options["served_model"]),
        levels=levels,
        client_on_metered_host=on_host,
        max_new_tokens=cap,
    )
    import httpx

    try:
        served = serving_label.ServedModel(
            description=serving_label.workload_description(
                sample, precision=str(options["precision"]), max_new_tokens=cap, serving=serving
            ),
            served_model=str(options["served_model"]),
            frameworks={"httpx": httpx.__version__},
            source=source,
        )
    except WorkloadError as exc:
        raise CliError(str(exc)) from None
    from bench_runner.bench_cli import _label_revision

    revision = _label_revision(options.get("revision"), served)
    if not quiet:
        console.print(_header(options, engine, sample, levels), markup=False)
    if not local and declared_local is None:
        console.print(
            "note: the endpoint is not on this machine; the meters measure this machine's GPUs "
            "and CPU (--client-on-metered-host if the server runs here)",
            markup=False,
        )
    load = LoadGenerator(
        base,
        str(options["served_model"]),
        prompts,
        cap,
        request_timeout_s=float(options.get("request_timeout_s") or 600.0),
        headers=headers,
    )
    _preflight(load)
    found = _meters(options)
    flags = [f for f in found.flags if f != "foreign-processes"]
    run_wall, run_mono = datetime.now(UTC), time.monotonic()
    try:
        with load, ServingDisplay(quiet, console) as display:
            runner = ServingRunner(
                found.meters,
                protocol,
                load,
                levels,
                float(serving["max_error_rate"]),
                on_progress=display,
            )
            run = runner.run()
    except ServingRunError as exc:
        raise CliError(str(exc)) from None
    finally:
        found.close()
    busy = [w for w in run.trials if w.client_cpu_s > CLIENT_BUSY_SHARE * (w.t_end_s - w.t_start_s)]
    if busy:
        console.print(
            f"note: this client used over {CLIENT_BUSY_SHARE:.0%} of a core in "
            f"{len(busy)} window(s) (concurrency "
            f"{', '.join(sorted({str(w.concurrency) for w in busy}))}): it may limit the load "
            "there, and its latencies include the client's queueing (docs/performance.md)",
            markup=False,
        )
    inputs = LabelInputs(
        vendor=vendor,
        model_name=model_name,
        revision=revision,
        registry=audience,
        carbon=grid.to_label(),
        pue=pue,
        accelerator=found.accelerator,
        flags=flags,
    )
    label = serving_label.build_serving_label(inputs, served, found.meters, run)
    if hourly_rows:
        _hourly(label, hourly_rows, pue, run_wall, run_mono)
    _finish(label, options, private_key)


def _hourly(
    label: dict[str, Any], rows: Any, pue: float, run_wall: datetime, run_mono: float
) -> None:
    """Hourly-matched carbon of the headline level's trials (the label's top-level figures)."""
    from bench_runner import carbon as carbon_data
    from bench_runner.label import trial_intervals_wh
    from schemas.suites import units_per_functional_unit_for

    headline = label["benchmark"]["workload"]["serving"]["headline_concurrency"]
    per_fu = units_per_functional_unit_for(label)
    pairs = [
        (interval, trial)
        for interval, trial in zip(
            trial_intervals_wh(label, run_wall, run_mono), label["traces"]["trials"], strict=True
        )
        if trial["concurrency"] == headline
    ]
    try:
        per_trial_g = [
            carbon_data.hourly_matched_co2e_g([interval], rows, pue) / trial["units"] * per_fu
            for interval, trial in pairs
        ]
    except ValueError as exc:
        raise CliError(f"hourly intensities: {exc}") from None
    label["carbon"]["hourly"] = {
        "intensities": carbon_data.hourly_for_label(rows, pairs[0][0][0], pairs[-1][0][1]),
        "co2e_per_unit_g": sum(per_trial_g) / len(per_trial_g),
    }


def _finish(label: dict[str, Any], options: Mapping[str, Any], private_key: Any) -> None:
    """Sign, write, show the levels and the headline figures, submit."""
    from bench_runner.bench_cli import _submit
    from bench_runner.bench_view import summary_table
    from bench_runner.serving.view import headline_lines, serving_tables
    from schemas.dsse import build_statement, sign_statement

    envelope = sign_statement(build_statement(label), private_key)
    out_dir = options["out_dir"]
    out_dir.mkdir(parents=True, exist_ok=True)
    label_path = out_dir / f"{label['label_id']}.label.json"
    envelope_path = out_dir / f"{label['label_id']}.dsse.json"
    label_path.write_text(json.dumps(label, indent=2) + "\n")
    envelope_path.write_text(json.dumps(envelope) + "\n")
    size = envelope_path.stat().st_size
    if size > REGISTRY_BODY_LIMIT_BYTES:
        console.print(
            f"note: the envelope is {size:,} bytes (one [ttft, e2e, tokens] per request); a "
            f"registry takes {REGISTRY_BODY_LIMIT_BYTES:,} by default "
            "(CARBONLABEL_MAX_BODY_BYTES): shorter windows or fewer levels make it smaller",
            markup=False,
        )
    for table in serving_tables(label):
        console.print(table)
    console.print(summary_table(label))
    for line in headline_lines(label):
        console.print(line, markup=False)
    if label["measurement"]["flags"]:
        console.print(f"flags: {', '.join(label['measurement']['flags'])}")
    console.print(f"label (the unsigned figures): {label_path}", markup=False)
    console.print(f"signed envelope (what the registry stores): {envelope_path}", markup=False)
    out.print(str(envelope_path))  # stdout: the envelope's path alone, for scripts
    base = None
    if options.get("submit"):
        base = _submit(
            str(options["submit"]),
            str(options.get("token") or ""),
            envelope_path,
            str(label["model"]["id"]),
        )
    if options.get("mlflow"):
        from bench_runner.tracking import mlflow_log

        experiment = options.get("mlflow_experiment")
        mlflow_log.cli_log(label, envelope_path, experiment=experiment, registry_url=base)
