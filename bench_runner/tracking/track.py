"""``carbonlabel.track``: meter a whole training or fine-tuning run and sign its label.

    import carbonlabel

    with carbonlabel.track(task="text-generation", model="acme/my-llm", key="acme.pem",
                           registry="https://registry.example", batch_size=16) as run:
        for batch in loader:
            ...  # forward, backward, optimizer step
            run.step()               # one optimizer step of batch_size samples
    print(run.envelope_path)

The same meters as ``carbonlabel bench`` (NVML, RAPL; an estimate only when nothing can be
measured, and labelled so) measure the whole run in contiguous segments
(``bench_runner.tracking.segments``), each flushed to a journal on disk as it closes
(``bench_runner.tracking.journal``). A run that ends normally writes a signed label of kind
``training-run``: its measured total, energy per step and per sample, CO2e; not an extrapolation.
A run killed or stopped by an exception leaves its journal: ``carbonlabel track recover JOURNAL``
makes a label marked ``incomplete`` of what was flushed (everything but the open segment).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_runner.bench_carbon import CarbonInputs, carbon_inputs
from bench_runner.devices.base import Meter
from bench_runner.label import Accelerator, meter_components, sampling_interval_s
from bench_runner.tracking import journal as journal_mod
from bench_runner.tracking.exporter import RunMetrics
from bench_runner.tracking.run_label import SUITE, RunContext, build_run_label, iso
from bench_runner.tracking.segments import Segment, Segmenter, target_length_s
from schemas import kinds, suites

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "fp8", "int8", "int4")


class TrackError(ValueError):
    """A tracking option is wrong, or the run cannot make a label; the message says why."""


class Run:
    """The run being tracked: call :meth:`step` after every optimizer step (or :meth:`units`
    for several). After the ``with`` block, :attr:`label` and the file paths are set."""

    def __init__(
        self,
        segmenter: Segmenter,
        journal: journal_mod.Journal,
        *,
        batch_size: int,
        segment_s: float,
        clock: Callable[[], float],
        metrics: RunMetrics | None,
    ) -> None:
        self._segmenter = segmenter
        self._journal = journal
        self._batch_size = batch_size
        self._segment_s = segment_s
        self._clock = clock
        self._metrics = metrics
        self._units = 0
        self._samples = 0
        self.segments: list[Segment] = []
        self.steps = 0
        self.label: dict[str, Any] | None = None
        self.label_path: Path | None = None
        self.envelope_path: Path | None = None
        self.journal_path = journal.path
        self.metrics_port: int | None = None

    def step(self, samples: int | None = None) -> None:
        """One optimizer step, of ``samples`` samples (default: the batch size)."""
        self.units(1, samples)

    def units(self, steps: int, samples: int | None = None) -> None:
        """``steps`` optimizer steps done, of ``samples`` samples in all (default: steps x the
        batch size)."""
        if steps < 0 or (samples is not None and samples < 0):
            raise ValueError("steps and samples cannot be negative")
        self._units += steps
        self.steps += steps
        self._samples += samples if samples is not None else steps * self._batch_size
        opened = self._segmenter.t_start_s
        if self._clock() - opened >= target_length_s(len(self.segments), self._segment_s):
            self._close_segment()

    def _close_segment(self, *, last: bool = False) -> None:
        t_start, t_end, components = self._segmenter.cut(reopen=not last)
        segment = Segment(t_start, t_end, components, self._units, self._samples)
        self._units = self._samples = 0
        self.segments.append(segment)
        self._journal.write({"type": "segment", "segment": segment.to_json()})
        if self._metrics is not None:
            self._metrics.observe(t_start, t_end, components, segment.units)


def _carbon(options: dict[str, Any]) -> CarbonInputs:
    try:
        return carbon_inputs(
            zone=options["zone"],
            intensity=options.get("intensity_g_per_kwh"),
            intensity_source=options.get("intensity_source") or "declared by the publisher",
            pue=options.get("pue"),
            hourly=None,
            wue=options.get("wue_l_per_kwh"),
        )
    except (ValueError, KeyError) as exc:
        raise TrackError(f"carbon options: {exc}") from None


def label_from(recovered: journal_mod.Recovered) -> dict[str, Any]:
    """The training-run label of a journal: ``complete`` when it has its end record, else
    ``incomplete`` (ending with its last flushed segment). Its id is the run's, so recovering a
    journal twice gives the same label (the registry keeps one)."""
    ctx = recovered.context
    if not recovered.segments:
        raise TrackError("the journal has no segment: the run stopped before its first one closed")
    started = datetime.fromisoformat(recovered.started_at)
    if recovered.ended_at is not None:
        ended = recovered.ended_at
    else:
        last_s = recovered.segments[-1].t_end_s - recovered.t0_s
        ended = iso(started + timedelta(seconds=last_s))
    vendor, _, name = str(ctx["model"]).partition("/")
    steps = sum(s.units for s in recovered.segments)
    samples = sum(s.samples or 0 for s in recovered.segments)
    run_ctx = RunContext(
        kind=kinds.TRAINING_RUN,
        vendor=vendor,
        model_name=name,
        revision=ctx["revision"],
        registry=ctx["registry"],
        task=ctx["task"],
        phase="training",
        carbon=_carbon(ctx["carbon"]),
        accelerator=Accelerator(**ctx["accelerator"]),
        components=list(ctx["components"]),
        workload={
            "dataset_id": ctx["dataset_id"],
            "samples": max(samples, 1),
            "batch_size": ctx["batch_size"],
            "precision": ctx["precision"],
            "training_steps": max(steps, 1),
        },
        run={
            "status": "complete" if recovered.complete else "incomplete",
            "started_at": recovered.started_at,
            "ended_at": ended,
            "segment_s": target_length_s(len(recovered.segments) - 1, float(ctx["segment_s"])),
        },
        frameworks=dict(ctx.get("frameworks") or {}),
        artifact_sha256=ctx.get("artifact_sha256"),
        flags=list(ctx.get("flags") or []),
        sampling_interval_s=ctx.get("sampling_interval_s"),
    )
    try:
        return build_run_label(
            run_ctx,
            recovered.segments,
            idle=recovered.idle,
            segment_s=float(ctx["segment_s"]),
            label_id=recovered.run_id,
        )
    except ValueError as exc:
        raise TrackError(str(exc)) from None


def _frameworks() -> dict[str, str]:
    import sys

    out = {}
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch"] = str(getattr(torch, "__version__", "unknown"))[:64]
    return out


def training_tasks() -> list[str]:
    """The tasks whose suite offers a training phase."""
    tasks = suites.suite_spec(SUITE)["tasks"]
    return [t for t in tasks if "training" in suites.phases_of(SUITE, t)]


def _check(task: str, batch_size: int, precision: str, segment_s: float, idle_s: float) -> None:
    if task not in training_tasks():
        raise TrackError(f"task {task!r} has no training phase; choose one of {training_tasks()}")
    if batch_size < 1:
        raise TrackError("batch_size must be at least 1")
    if precision not in PRECISIONS:
        raise TrackError(f"precision {precision!r}: choose one of {list(PRECISIONS)}")
    if not segment_s > 0:
        raise TrackError("segment_s must be > 0")
    if not idle_s > 0:
        raise TrackError("idle_s must be > 0: a training-run label carries its idle baseline")


@contextmanager
def track(
    *,
    task: str,
    model: str,
    key: str | Path,
    registry: str,
    batch_size: int,
    revision: str = "main",
    dataset_id: str = "unspecified",
    precision: str = "bf16",
    zone: str = "FR",
    intensity_g_per_kwh: float | None = None,
    pue: float | None = None,
    wue_l_per_kwh: float | None = None,
    out_dir: str | Path = ".",
    journal: str | Path | None = None,
    segment_s: float = 1.0,
    idle_s: float = 5.0,
    meters: Sequence[Meter] | None = None,
    accelerator: Accelerator | None = None,
    artifact_sha256: str | None = None,
    submit: bool = False,
    token: str | None = None,
    mlflow: bool = False,
    mlflow_experiment: str | None = None,
    prometheus_port: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Run]:
    """Meter the ``with`` block as one training run of ``model`` (``vendor/name``) and write its
    signed label (``out_dir``/<label id>.label.json and .dsse.json) when it ends.

    ``meters``: default, the meters ``carbonlabel bench`` would find (NVML for the GPUs, RAPL for
    the CPU; an estimate only when neither works). ``journal``: default
    ``out_dir``/<run id>.journal.jsonl. ``segment_s``: the first segments' length (they double
    every 16 segments). ``idle_s``: the idle baseline measured before the run starts.
    ``submit``: send the envelope to ``registry`` (token: ``token`` or ``CARBONLABEL_TOKEN``).
    ``mlflow``: log the label to MLflow (``MLFLOW_TRACKING_URI``), into the active run if any.
    ``prometheus_port``: serve ``/metrics`` on 127.0.0.1 while the run goes (0: a free port,
    see ``run.metrics_port``)."""
    from schemas.dsse import load_private_key

    _check(task, batch_size, precision, segment_s, idle_s)
    vendor, _, name = model.partition("/")
    if not vendor or not name:
        raise TrackError(f"model {model!r} must be 'vendor/name'")
    try:
        private_key = load_private_key(Path(key))
    except (OSError, ValueError, TypeError) as exc:
        raise TrackError(f"cannot load the signing key {key}: {exc}") from None
    carbon_options = {
        "zone": zone,
        "intensity_g_per_kwh": intensity_g_per_kwh,
        "pue": pue,
        "wue_l_per_kwh": wue_l_per_kwh,
    }
    carbon = _carbon(carbon_options)
    out = Path(out_dir)
    run_id = str(uuid.uuid4())
    owned = None
    if meters is None:
        from bench_runner.devices.discover import discover_meters

        owned = discover_meters()
        meters, flags = owned.meters, owned.flags
        accelerator = accelerator or owned.accelerator
        for reason in [*owned.reasons, *owned.notes]:
            logger.warning("%s", reason)
    else:
        flags = []
    accelerator = accelerator or Accelerator("none", "none", 0)
    journal_path = Path(journal) if journal is not None else out / f"{run_id}.journal.jsonl"
    try:
        writer = journal_mod.Journal(journal_path)
    except journal_mod.JournalError as exc:
        raise TrackError(str(exc)) from None
    metrics = None
    if prometheus_port is not None:
        g_per_wh = carbon.grid.intensity_g_per_kwh * carbon.pue / 1000.0
        metrics = RunMetrics(g_per_wh=g_per_wh, unit="step")
    try:
        started = datetime.now(UTC)
        t0 = clock()
        writer.write(
            {
                "type": "header",
                "version": journal_mod.VERSION,
                "run_id": run_id,
                "started_at": iso(started),
                "t0_s": t0,
                # enough to build the label without this process (track recover)
                "context": {
                    "task": task,
                    "model": model,
                    "revision": revision,
                    "registry": registry,
                    "dataset_id": dataset_id,
                    "batch_size": batch_size,
                    "precision": precision,
                    "carbon": carbon_options,
                    "accelerator": asdict(accelerator),
                    "components": meter_components(list(meters)),
                    "flags": flags,
                    "sampling_interval_s": sampling_interval_s(list(meters)),
                    "segment_s": segment_s,
                    "artifact_sha256": artifact_sha256,
                    "frameworks": _frameworks(),
                },
            }
        )
        for meter in meters:
            meter.begin_window("idle")
        idle_start = clock()
        sleep(idle_s)
        idle_end = clock()
        idle = {
            "t_start_s": idle_start,
            "t_end_s": idle_end,
            "components": [meter.end_window("idle") for meter in meters],
        }
        writer.write({"type": "idle", "window": idle})
        run = Run(
            Segmenter(meters, clock),
            writer,
            batch_size=batch_size,
            segment_s=segment_s,
            clock=clock,
            metrics=metrics,
        )
        if metrics is not None:
            run.metrics_port = metrics.serve(prometheus_port or 0)
        try:
            yield run
        except BaseException:
            run._close_segment(last=True)
            logger.error(
                "the run stopped with an exception; its journal %s holds %d segment(s): make a "
                "label marked incomplete with `carbonlabel track recover %s --key KEY`",
                journal_path,
                len(run.segments),
                journal_path,
            )
            raise
        run._close_segment(last=True)
        writer.write({"type": "end", "ended_at": iso(datetime.now(UTC))})
    finally:
        writer.close()
        if metrics is not None:
            metrics.close()
        if owned is not None:
            owned.close()
    label = label_from(journal_mod.read(journal_path))
    run.label = label
    run.label_path, run.envelope_path = write_signed(label, private_key, out)
    base = None
    if submit:
        base = submit_envelope(registry, token, run.envelope_path)
    if mlflow:
        from bench_runner.tracking import mlflow_log

        mlflow_log.log_label(
            label,
            run.envelope_path.read_bytes(),
            experiment=mlflow_experiment,
            registry_url=base or registry,
        )


def write_signed(label: dict[str, Any], private_key: Any, out_dir: Path) -> tuple[Path, Path]:
    """Sign ``label`` and write it and its envelope into ``out_dir``; returns both paths."""
    import json

    from schemas.dsse import build_statement, sign_statement

    envelope = sign_statement(build_statement(label), private_key)
    out_dir.mkdir(parents=True, exist_ok=True)
    label_path = out_dir / f"{label['label_id']}.label.json"
    envelope_path = out_dir / f"{label['label_id']}.dsse.json"
    label_path.write_text(json.dumps(label, indent=2) + "\n")
    envelope_path.write_text(json.dumps(envelope) + "\n")
    return label_path, envelope_path


def submit_envelope(registry: str, token: str | None, envelope_path: Path) -> str:
    """Send a signed envelope; returns the registry's public base URL. Raises TrackError with
    the kept envelope's path when it cannot be sent."""
    import os

    from bench_runner.client import RegistryClient, RegistryError

    token = token or os.environ.get("CARBONLABEL_TOKEN")
    if not token:
        raise TrackError(
            f"no API token (set CARBONLABEL_TOKEN); the envelope is kept at {envelope_path}"
        )
    try:
        with RegistryClient(registry, token) as client:
            _status, body = client.submit(envelope_path.read_bytes())
    except RegistryError as exc:
        raise TrackError(f"{exc} (the envelope is kept at {envelope_path})") from None
    return str(body["links"]["self"]).split("/v1/labels/", 1)[0]
