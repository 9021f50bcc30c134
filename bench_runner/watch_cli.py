"""``carbonlabel watch``: sign an operational label of a deployed model every period."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from bench_runner.cli import CliError, _private_key

if TYPE_CHECKING:
    from bench_runner.devices.discover import MeterSet

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

EPILOG = (
    "Metric names per engine, Grafana queries and a copy-paste example beside vLLM: "
    "docs/monitoring.md."
)


def duration_s(text: str, option: str) -> float:
    """'90s', '5m', '1h', '1d' or plain seconds."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise CliError(f"{option} {text!r}: a duration like 90s, 5m, 1h or 1d")
    return float(match.group(1)) * _SECONDS[match.group(2) or "s"]


def watch(
    endpoint: Annotated[
        str,
        typer.Option(help="the engine's Prometheus endpoint, e.g. http://127.0.0.1:8000/metrics"),
    ],
    model: Annotated[str, typer.Option(help="vendor/name as the label names it")],
    key: Annotated[Path, typer.Option("--key", "-k", help="private key file to sign with")],
    registry: Annotated[
        str, typer.Option(envvar="CARBONLABEL_REGISTRY", help="the registry the labels are for")
    ],
    every: Annotated[str, typer.Option(help="one label per period: 1h, 30m, 1d")] = "1h",
    window: Annotated[
        str | None, typer.Option(help="window length within a period (default: a twelfth)")
    ] = None,
    scrape_every: Annotated[
        str, typer.Option(help="how often the engine's counters and the GPUs are read")
    ] = "5s",
    engine: Annotated[str, typer.Option(help="vllm, tgi or custom (name the metrics)")] = "vllm",
    metric: Annotated[
        list[str] | None,
        typer.Option(
            help="FIGURE=METRIC: requests, output_tokens, input_tokens or running (repeatable)"
        ),
    ] = None,
    engine_version: Annotated[str | None, typer.Option(help="the engine's version")] = None,
    task: Annotated[str, typer.Option(help="chat-serving or text-generation")] = "chat-serving",
    revision: Annotated[str, typer.Option(help="the deployed model revision")] = "main",
    precision: Annotated[str | None, typer.Option(help="the deployed weights' precision")] = None,
    zone: Annotated[str, typer.Option(help="grid zone: ISO 3166-1 alpha-2[-region]")] = "FR",
    intensity: Annotated[
        float | None, typer.Option(help="override the grid intensity (g CO2e/kWh)")
    ] = None,
    pue: Annotated[float | None, typer.Option(help="the site's PUE (default 1.2)")] = None,
    hourly: Annotated[
        Path | None, typer.Option(help="hourly intensity CSV (timestamp,intensity_g_per_kwh)")
    ] = None,
    wue: Annotated[float | None, typer.Option(help="the site's WUE (L/kWh)")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="where labels are written")] = Path("."),
    submit: Annotated[bool, typer.Option("--submit", help="send each label to --registry")] = False,
    token: Annotated[
        str | None, typer.Option(envvar="CARBONLABEL_TOKEN", help="the vendor's API token")
    ] = None,
    periods: Annotated[
        int | None, typer.Option(help="stop after this many periods (default: never)")
    ] = None,
    prometheus_port: Annotated[
        int | None, typer.Option(help="serve carbonlabel's own metrics on this port")
    ] = None,
    mlflow: Annotated[bool, typer.Option("--mlflow", help="log each label to MLflow")] = False,
    mlflow_experiment: Annotated[
        str | None, typer.Option(envvar="MLFLOW_EXPERIMENT_NAME", help="MLflow experiment")
    ] = None,
) -> None:
    """Meter the GPUs a deployed serving engine runs on, read its request and token counters,
    and sign an operational label every period (energy per 1,000 requests and per output token
    in production, utilisation, idle share, CO2e)."""
    from bench_runner.bench_carbon import carbon_inputs
    from bench_runner.devices.base import MeterError
    from bench_runner.devices.discover import discover_meters
    from bench_runner.tracking.engine_metrics import (
        EngineMetricsError,
        EngineScraper,
        absent_requests_note,
        mapping_for,
    )
    from bench_runner.tracking.exporter import RunMetrics
    from bench_runner.tracking.track import TrackError
    from bench_runner.tracking.watch import Watcher, WatchOptions

    every_s = duration_s(every, "--every")
    window_s = duration_s(window, "--window") if window else every_s / 12
    overrides = {}
    for item in metric or []:
        figure, sep, name = item.partition("=")
        if not sep or not name:
            raise CliError(f"--metric {item!r}: FIGURE=METRIC, e.g. requests=my_requests_total")
        overrides[figure.strip()] = name.strip()
    if task not in ("chat-serving", "text-generation"):
        raise CliError(f"--task {task!r}: chat-serving or text-generation")
    try:
        names = mapping_for(engine, overrides)
        carbon = carbon_inputs(
            zone=zone,
            intensity=intensity,
            intensity_source="declared by the operator",
            pue=pue,
            hourly=hourly,
            wue=wue,
        )
        options = WatchOptions(
            model=model,
            registry=registry,
            engine=engine,
            metric_names=names,
            carbon=carbon,
            every_s=every_s,
            window_s=window_s,
            scrape_s=min(duration_s(scrape_every, "--scrape-every"), window_s),
            task=task,
            revision=revision,
            engine_version=engine_version,
            precision=precision,
            out_dir=out_dir,
            submit=submit,
            token=token,
            mlflow=mlflow,
            mlflow_experiment=mlflow_experiment,
        )
        options.check()
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if submit and not token:
        raise CliError("--submit needs an API token: --token or CARBONLABEL_TOKEN")
    private_key = _private_key(key)
    scraper = EngineScraper(endpoint, names)
    try:
        first = scraper.read()  # fail now, not an hour from now
    except EngineMetricsError as exc:
        scraper.close()
        raise CliError(str(exc)) from None
    if first.values.get("requests") is None:
        console.print(f"warning: {absent_requests_note(names)}", markup=False)
    try:
        # the engine runs in other processes on these GPUs by design: counted, not flagged
        found = discover_meters(allow_foreign_processes=True)
    except MeterError as exc:
        scraper.close()
        raise CliError(str(exc)) from None
    for line in [*found.reasons, *found.notes]:
        console.print(line, markup=False)
    metrics = None
    if prometheus_port is not None:
        g_per_wh = carbon.grid.intensity_g_per_kwh * carbon.pue / 1000.0
        metrics = RunMetrics(g_per_wh=g_per_wh, unit="request")
        port = metrics.serve(prometheus_port, addr="0.0.0.0")  # noqa: S104 (for the scraper)
        console.print(f"carbonlabel metrics: http://0.0.0.0:{port}/metrics", markup=False)
    watcher = Watcher(
        options,
        found.meters,
        scraper,
        private_key=private_key,
        accelerator=found.accelerator,
        flags=[f for f in found.flags if f != "foreign-processes"],
        utilisation=_utilisation(found),
        metrics=metrics,
    )
    console.print(
        f"watching {model} through {endpoint}: one label every {every}, windows of "
        f"{window_s:g} s; Ctrl-C stops (the period under way makes no label)",
        markup=False,
    )
    try:
        for outcome in watcher.run(periods):
            if outcome.envelope_path is not None:
                out.print(str(outcome.envelope_path))
    except KeyboardInterrupt:
        console.print("stopped", markup=False)
    except (EngineMetricsError, TrackError, MeterError) as exc:
        raise CliError(str(exc)) from None
    finally:
        scraper.close()
        found.close()
        if metrics is not None:
            metrics.close()


def _utilisation(found: MeterSet) -> Callable[[], float | None]:
    """The mean utilisation (0..1) of the metered GPUs, from NVML; None without GPUs."""
    from bench_runner.devices import nvml

    if not found.gpus:
        return lambda: None
    handles = [nvml.device_handle(g.index) for g in found.gpus]

    def read() -> float | None:
        try:
            values = [nvml.read_utilisation_pct(h) for h in handles]
        except nvml.NVMLError:
            return None
        return sum(values) / len(values) / 100.0

    return read
