"""Log a signed carbon label to MLflow: its figures as metrics, its context as params and tags,
the signed envelope as an artifact.

``mlflow`` (``pip install 'carbonlabel[mlflow]'``, which brings ``mlflow-skinny``) is imported
when a function here is called, never at import time. The tracking URI is the argument, else
MLflow's own (``MLFLOW_TRACKING_URI``; unset: MLflow's default, a local store in the current
folder). The run is the one named (``run_id``), else the active run (``mlflow.active_run()``), else
``MLFLOW_RUN_ID``; those are left running. Otherwise a new run is started in the experiment
(the argument, else ``MLFLOW_EXPERIMENT_NAME``, else ``carbonlabel``; created when missing) and
ended when the label is logged.

What :func:`log_label` logs (a figure the label does not carry is skipped, never an error; units
are in the names; "per unit" is per functional unit, the param ``carbonlabel.functional_unit``):

metrics
    ``energy_per_unit_wh`` (``results.energy_per_unit_wh.mean``),
    ``energy_per_unit_ci95_low_wh``, ``energy_per_unit_ci95_high_wh``,
    ``dynamic_energy_per_unit_wh``, ``idle_power_w``, ``throughput_units_per_s``,
    ``energy_per_output_token_j`` (mean), ``output_tokens_per_s``,
    ``co2e_per_unit_g`` (``carbon.co2e_per_unit_g.mean``, location-based),
    ``co2e_per_unit_ci95_low_g``, ``co2e_per_unit_ci95_high_g``, ``co2e_per_run_g`` (training,
    declared total steps), ``hourly_co2e_per_unit_g``, ``market_co2e_per_unit_g``,
    ``cfe_score``, ``embodied_co2e_per_unit_g``, ``total_co2e_per_unit_g`` (operational +
    embodied), ``water_per_unit_l``, ``water_onsite_per_unit_l``, ``water_offsite_per_unit_l``,
    ``quality_<metric>`` (the measured quality figure, e.g. ``quality_gsm8k_exact_match``),
    ``total_energy_wh``, ``samples_total``, ``energy_per_sample_wh`` (training-run labels) and
    ``operational_<key>`` for each number in ``results.operational`` (operational labels).
params
    ``carbonlabel.kind``, ``.task``, ``.phase``, ``.functional_unit``, ``.precision``,
    ``.hardware_class``, ``.accelerator_model``, ``.accelerator_count``, ``.zone``,
    ``.grid_intensity_g_per_kwh``, ``.pue``, ``.suite_version``, ``.methodology_version``,
    ``.model_id``, ``.model_revision`` (prefixed, so that they never collide with the params of a
    training run the label is logged into).
tags
    ``carbonlabel.label_id``, ``.model``, ``.vendor``, ``.kind``, ``.keyid`` (the envelope's
    first signature), ``.registry_url`` (``{registry}/v1/labels/{label_id}``: the registry
    submitted to, else the label's audience), ``.model_page`` (``{registry}/models/{vendor}/
    {name}``) and ``.flags`` (the measurement flags, comma-separated, when there are any).
artifacts
    ``carbonlabel/<label_id>.dsse.json`` (the signed envelope, byte for byte) and
    ``carbonlabel/<label_id>.label.json`` (the label).

:func:`log_metrics` logs a few figures at a step into a run (``carbonlabel track`` and
``watch``: the energy so far); :func:`resolve_run` and :func:`end_run` open and close one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

INSTALL_HINT = "pip install 'carbonlabel[mlflow]'"
DEFAULT_EXPERIMENT = "carbonlabel"
ARTIFACT_DIR = "carbonlabel"
PARAM_PREFIX = "carbonlabel."
TAG_PREFIX = "carbonlabel."

_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_./-]+")
_FILE_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class MlflowError(Exception):
    """Logging to MLflow failed (the base of this module's errors)."""


class MlflowUnavailable(MlflowError):
    """The ``mlflow`` package is not installed."""


class MlflowLogError(MlflowError):
    """MLflow refused or could not be reached; the message says which store and why."""


def require_mlflow() -> Any:
    """The ``mlflow`` module, or :class:`MlflowUnavailable` with the install hint."""
    try:
        import mlflow
    except ImportError as exc:
        raise MlflowUnavailable(
            f"MLflow logging needs the mlflow package ({exc}): {INSTALL_HINT}"
        ) from None
    return mlflow


def _client(tracking_uri: str | None) -> MlflowClient:
    require_mlflow()
    from mlflow.tracking import MlflowClient

    with _mlflow_errors("cannot open the tracking store", tracking_uri):
        return MlflowClient(tracking_uri=tracking_uri)


@contextlib.contextmanager
def _mlflow_errors(what: str, tracking_uri: str | None) -> Iterator[None]:
    """MLflow's and the network's errors as one-line :class:`MlflowLogError`s."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (MlflowException, OSError) as exc:
        where = tracking_uri or _current_uri()
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise MlflowLogError(f"MLflow ({where}): {what}: {first}") from None


def _current_uri() -> str:
    import mlflow

    return str(mlflow.get_tracking_uri())


def experiment_name(experiment: str | None = None) -> str:
    """The experiment: the argument, else ``MLFLOW_EXPERIMENT_NAME``, else ``carbonlabel``."""
    return experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT


def check_tracking(*, tracking_uri: str | None = None, experiment: str | None = None) -> str:
    """Before a long measurement: ``mlflow`` imports and the tracking store answers (it looks the
    experiment up; nothing is created). Returns the tracking URI."""
    client = _client(tracking_uri)
    with _mlflow_errors("cannot reach the tracking store", tracking_uri):
        client.get_experiment_by_name(experiment_name(experiment))
    return str(client.tracking_uri)


def resolve_run(
    *,
    run_id: str | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> tuple[str, bool]:
    """The run to log into, and whether this call started it (then close it with
    :func:`end_run`): ``run_id``, else the active run (when its tracking URI is this one), else
    ``MLFLOW_RUN_ID``, else a new run in :func:`experiment_name`'s experiment."""
    mlflow = require_mlflow()
    if run_id:
        return run_id, False
    active = mlflow.active_run()
    if active is not None and (tracking_uri is None or tracking_uri == _current_uri()):
        return str(active.info.run_id), False
    if os.environ.get("MLFLOW_RUN_ID"):
        return os.environ["MLFLOW_RUN_ID"], False
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    name = experiment_name(experiment)
    with _mlflow_errors(f"cannot start a run in experiment {name!r}", tracking_uri):
        found = client.get_experiment_by_name(name)
        if found is not None:
            experiment_id = found.experiment_id
        else:
            try:
                experiment_id = client.create_experiment(name)
            except MlflowException:
                # created meanwhile by another process: use that one
                again = client.get_experiment_by_name(name)
                if again is None:
                    raise
                experiment_id = again.experiment_id
        run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags or {}))
    return str(run.info.run_id), True


def end_run(run_id: str, *, status: str = "FINISHED", tracking_uri: str | None = None) -> None:
    """Mark a run that :func:`resolve_run` started as ended (``FINISHED``, ``FAILED``,
    ``KILLED``)."""
    client = _client(tracking_uri)
    with _mlflow_errors(f"cannot end run {run_id}", tracking_uri):
        client.set_terminated(run_id, status)


def log_metrics(
    values: Mapping[str, Any],
    *,
    step: int | None = None,
    run_id: str | None = None,
    tracking_uri: str | None = None,
    timestamp_ms: int | None = None,
) -> str:
    """Log ``values`` (name -> number; other values and non-finite numbers are skipped, names
    made MLflow-safe) at ``step`` into ``run_id``, else the active run, else ``MLFLOW_RUN_ID``.
    Returns the run id. It starts no run: :func:`resolve_run` does."""
    mlflow = require_mlflow()
    if not run_id:
        active = mlflow.active_run()
        run_id = str(active.info.run_id) if active else os.environ.get("MLFLOW_RUN_ID")
    if not run_id:
        raise MlflowLogError(
            "no MLflow run to log into: pass run_id, start one (resolve_run, mlflow.start_run) "
            "or set MLFLOW_RUN_ID"
        )
    from mlflow.entities import Metric

    now = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    metrics = [
        Metric(metric_key(name), value, now, step or 0) for name, value in _numbers(values).items()
    ]
    client = _client(tracking_uri)
    with _mlflow_errors(f"cannot log metrics to run {run_id}", tracking_uri):
        client.log_batch(run_id, metrics=metrics)
    return run_id


def log_label(
    label: Mapping[str, Any],
    envelope_bytes: bytes,
    *,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    run_id: str | None = None,
    registry_url: str | None = None,
    run_name: str | None = None,
) -> str:
    """Log a signed label (``label`` is the envelope's predicate) to MLflow: the metrics, params,
    tags and artifacts of the module docstring. ``registry_url``: the registry's base URL the
    label was submitted to (default: the label's ``registry``). Returns the run id; a run this
    call started is ended (``FAILED`` when logging failed)."""
    require_mlflow()
    from mlflow.entities import Metric, Param, RunTag

    label_id = str(label.get("label_id") or "label")
    params = label_params(label)
    tags = label_tags(label, envelope_bytes, registry_url=registry_url)
    model_id = _get(label, "model", "id")
    name = run_name or (f"carbonlabel {model_id}" if model_id else "carbonlabel")
    run, started = resolve_run(
        run_id=run_id, tracking_uri=tracking_uri, experiment=experiment, run_name=name
    )
    client = _client(tracking_uri)
    try:
        with _mlflow_errors(f"cannot log label {label_id} to run {run}", tracking_uri):
            if not started:
                _refuse_changed_params(client.get_run(run).data.params, params, run)
            now = int(time.time() * 1000)
            client.log_batch(
                run,
                metrics=[Metric(k, v, now, 0) for k, v in label_metrics(label).items()],
                params=[Param(k, v) for k, v in params.items()],
                tags=[RunTag(k, v) for k, v in tags.items()],
            )
            with tempfile.TemporaryDirectory(prefix="carbonlabel-mlflow-") as folder:
                stem = _FILE_UNSAFE.sub("_", label_id)
                (Path(folder) / f"{stem}.dsse.json").write_bytes(envelope_bytes)
                text = json.dumps(label, indent=2) + "\n"
                (Path(folder) / f"{stem}.label.json").write_text(text, encoding="utf-8")
                client.log_artifacts(run, folder, artifact_path=ARTIFACT_DIR)
    except MlflowError:
        if started:
            with contextlib.suppress(MlflowError):
                end_run(run, status="FAILED", tracking_uri=tracking_uri)
        raise
    if started:
        end_run(run, tracking_uri=tracking_uri)
    return run


def _refuse_changed_params(
    existing: Mapping[str, str], params: Mapping[str, str], run: str
) -> None:
    """MLflow params cannot change: say so before logging anything into an existing run."""
    changed = [k for k, v in params.items() if k in existing and existing[k] != v]
    if changed:
        shown = ", ".join(f"{k}={existing[k]!r} (this label: {params[k]!r})" for k in changed)
        raise MlflowLogError(
            f"run {run} already holds another label's params ({shown}): MLflow params cannot "
            "change, so log this label into another run"
        )


def label_metrics(label: Mapping[str, Any]) -> dict[str, float]:
    """The label's figures as MLflow metrics (module docstring), the ones it carries."""
    results = label.get("results") or {}
    carbon = label.get("carbon") or {}
    energy = results.get("energy_per_unit_wh") or {}
    co2e = carbon.get("co2e_per_unit_g") or {}
    embodied = _get(carbon, "embodied", "co2e_per_unit_g")
    found: dict[str, Any] = {
        "energy_per_unit_wh": _get(energy, "mean"),
        "energy_per_unit_ci95_low_wh": _get(energy, "ci95_low"),
        "energy_per_unit_ci95_high_wh": _get(energy, "ci95_high"),
        "dynamic_energy_per_unit_wh": results.get("dynamic_energy_per_unit_wh"),
        "idle_power_w": results.get("idle_power_w"),
        "throughput_units_per_s": results.get("throughput_units_per_s"),
        "energy_per_output_token_j": _get(results, "energy_per_output_token_j", "mean"),
        "output_tokens_per_s": results.get("output_tokens_per_s"),
        "co2e_per_unit_g": _get(co2e, "mean"),
        "co2e_per_unit_ci95_low_g": _get(co2e, "ci95_low"),
        "co2e_per_unit_ci95_high_g": _get(co2e, "ci95_high"),
        "co2e_per_run_g": carbon.get("co2e_per_run_g"),
        "hourly_co2e_per_unit_g": _get(carbon, "hourly", "co2e_per_unit_g"),
        "market_co2e_per_unit_g": _get(carbon, "market", "co2e_per_unit_g"),
        "cfe_score": _get(carbon, "market", "cfe_score"),
        "embodied_co2e_per_unit_g": embodied,
        "water_per_unit_l": _get(carbon, "water", "per_unit_l"),
        "water_onsite_per_unit_l": _get(carbon, "water", "onsite", "per_unit_l"),
        "water_offsite_per_unit_l": _get(carbon, "water", "offsite", "per_unit_l"),
        "total_energy_wh": results.get("total_energy_wh"),
        "samples_total": results.get("samples_total"),
        "energy_per_sample_wh": results.get("energy_per_sample_wh"),
    }
    operational_g = found["co2e_per_unit_g"]
    if _is_number(operational_g) and _is_number(embodied):
        found["total_co2e_per_unit_g"] = operational_g + embodied
    measured = _get(label, "quality", "measured")
    if isinstance(measured, Mapping) and _is_number(measured.get("value")):
        metric = measured.get("metric")
        key = f"quality_{metric_key(str(metric)).replace('-', '_')}" if metric else "quality_value"
        found[key] = measured["value"]
    operational = results.get("operational")
    if isinstance(operational, Mapping):
        found |= {f"operational_{metric_key(str(k))}": v for k, v in operational.items()}
    return _numbers(found)


def label_params(label: Mapping[str, Any]) -> dict[str, str]:
    """The label's context as MLflow params (``carbonlabel.*``), the ones it carries."""
    benchmark = label.get("benchmark") or {}
    accelerator = _get(label, "hardware", "accelerator") or {}
    found = {
        "kind": label.get("kind", "benchmark"),
        "task": benchmark.get("task"),
        "phase": benchmark.get("phase"),
        "functional_unit": _get(label, "results", "functional_unit"),
        "precision": _get(benchmark, "workload", "precision"),
        "hardware_class": _get(label, "hardware", "hardware_class"),
        "accelerator_model": _get(accelerator, "model_name"),
        "accelerator_count": _get(accelerator, "count"),
        "zone": _get(label, "carbon", "zone"),
        "grid_intensity_g_per_kwh": _get(label, "carbon", "intensity_g_per_kwh"),
        "pue": _get(label, "carbon", "pue"),
        "suite_version": _get(benchmark, "suite", "version"),
        "methodology_version": _get(label, "measurement", "methodology_version"),
        "model_id": _get(label, "model", "id"),
        "model_revision": _get(label, "model", "revision"),
    }
    return {
        PARAM_PREFIX + k: str(v)
        for k, v in found.items()
        if isinstance(v, str | int | float) and not isinstance(v, bool)
    }


def label_tags(
    label: Mapping[str, Any], envelope_bytes: bytes, *, registry_url: str | None = None
) -> dict[str, str]:
    """The label's identity and links as MLflow tags (``carbonlabel.*``)."""
    label_id = label.get("label_id")
    model_id = _get(label, "model", "id")
    found: dict[str, Any] = {
        "label_id": label_id,
        "model": model_id,
        "vendor": label.get("vendor"),
        "kind": label.get("kind", "benchmark"),
        "keyid": _keyid(envelope_bytes),
    }
    base = (registry_url or str(label.get("registry") or "")).rstrip("/")
    if base and label_id:
        found["registry_url"] = f"{base}/v1/labels/{quote(str(label_id), safe='')}"
    if base and isinstance(model_id, str) and "/" in model_id:
        vendor, _, name = model_id.partition("/")
        found["model_page"] = f"{base}/models/{quote(vendor, safe='')}/{quote(name, safe='')}"
    flags = _get(label, "measurement", "flags")
    if isinstance(flags, list) and flags:
        found["flags"] = ",".join(str(f) for f in flags)
    return {TAG_PREFIX + k: str(v) for k, v in found.items() if isinstance(v, str) and v}


def metric_key(name: str) -> str:
    """``name`` with the characters MLflow refuses in a key replaced by ``_``."""
    return _KEY_UNSAFE.sub("_", name).strip("/") or "_"


def _keyid(envelope_bytes: bytes) -> str | None:
    try:
        envelope = json.loads(envelope_bytes)
    except ValueError:
        return None
    signatures = envelope.get("signatures") if isinstance(envelope, dict) else None
    if isinstance(signatures, list) and signatures and isinstance(signatures[0], dict):
        keyid = signatures[0].get("keyid")
        return keyid if isinstance(keyid, str) else None
    return None


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _numbers(values: Mapping[str, Any]) -> dict[str, float]:
    return {metric_key(k): float(v) for k, v in values.items() if _is_number(v)}


# --- ``carbonlabel bench --mlflow`` (docs/cli.md#mlflow) ----------------------------------------


def cli_check(*, experiment: str | None = None) -> None:
    """``bench --mlflow``, before measuring: MLflow is installed and its store answers."""
    from bench_runner.cli import CliError

    try:
        check_tracking(experiment=experiment)
    except MlflowError as exc:
        raise CliError(f"--mlflow: {exc}") from None


def cli_log(
    label: Mapping[str, Any],
    envelope_path: Path,
    *,
    experiment: str | None = None,
    registry_url: str | None = None,
) -> None:
    """``bench --mlflow``, after writing (and submitting) the label: log it, say where. MLflow's
    own lines go to stderr: stdout stays the envelope's path alone."""
    from bench_runner.cli import CliError, console

    try:
        with contextlib.redirect_stdout(sys.stderr):
            run = log_label(
                label,
                envelope_path.read_bytes(),
                experiment=experiment,
                registry_url=registry_url,
            )
            uri = _current_uri()
    except MlflowError as exc:
        raise CliError(f"--mlflow: {exc} (the label is kept at {envelope_path})") from None
    console.print(f"logged to MLflow: run {run} ({uri})", markup=False)
