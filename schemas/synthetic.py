"""Deterministic synthetic labels: for the demo data set, examples and tests.

Every label made here says ``provenance.source = "synthetic"``: it was generated, not measured.
The traces are plausible energy-counter readings; the results are computed from them, so the
label passes the registry's recomputation check.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas import suites
from schemas.contract import load_methodology
from schemas.results import fill_results

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def make_label(
    *,
    vendor: str,
    model: str,
    registry: str,
    revision: str = "v1",
    task: str = "text-classification",
    phase: str = "inference",
    hardware_class: str = "nvidia-h100-sxm-80gb",
    zone: str = "FR",
    intensity_g_per_kwh: float = 56.0,
    pue: float = 1.2,
    power_w: float = 300.0,
    units_per_trial: int = 2000,
    trials: int = 5,
    seed: int = 0,
    created_at: datetime | None = None,
    suite: str = "1",
    parameter_count: int = 1_500_000_000,
    quality: float | None = 0.5,
) -> dict[str, Any]:
    """A complete, schema-valid label whose results follow from its traces.

    ``suite="2"`` makes a suite-2 label: a Hugging Face model of ``parameter_count`` parameters,
    token counts in the traces and, for the text tasks, a measured quality figure of about
    ``quality`` (None: unavailable)."""
    rng = random.Random(f"{vendor}/{model}@{revision}:{task}:{phase}:{seed}")  # noqa: S311
    label_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    created = _EPOCH + timedelta(days=rng.randint(0, 300), seconds=rng.randint(0, 86399))
    if created_at is not None:
        created = created_at.astimezone(UTC)
    hw = load_methodology()["hardware_classes"][hardware_class]
    accelerator_name = hw["names"][0] if hw["names"] else "none"
    idle_power_w = 60.0 + rng.random() * 10
    clock = 1000.0 + rng.random() * 100
    counter = 5.0e6 + rng.random() * 1e6
    idle_start, clock = clock, clock + 10.0
    idle_end_counter = counter + idle_power_w * 10.0
    idle = {
        "t_start_s": idle_start,
        "t_end_s": clock,
        "components": [
            {
                "name": "gpu",
                "method": "nvml-energy-counter",
                "counter_start_j": counter,
                "counter_end_j": idle_end_counter,
            }
        ],
    }
    counter = idle_end_counter
    trial_list = []
    for index in range(trials):
        clock += 2.0  # cooldown
        window_s = 10.0 + rng.random()
        energy_j = power_w * window_s * (1.0 + rng.gauss(0, 0.02))
        start = clock
        clock += window_s
        trial_list.append(
            {
                "index": index,
                "units": units_per_trial,
                "t_start_s": start,
                "t_end_s": clock,
                "components": [
                    {
                        "name": "gpu",
                        "method": "nvml-energy-counter",
                        "counter_start_j": counter,
                        "counter_end_j": counter + energy_j,
                    }
                ],
            }
        )
        counter += energy_j
    if suite != "1":
        for i, trial in enumerate(trial_list):
            trial["input_tokens"] = units_per_trial * rng.randint(40, 80)
            if task == "text-generation" and phase == "inference":
                trial["output_tokens"] = units_per_trial * rng.randint(100, 200)
            if task == "chat-serving":
                _serving_trial(trial, rng, SERVING_LEVELS[i % len(SERVING_LEVELS)])
    dataset = f"carbonlabel-suite-v1/{task}"
    workload: dict[str, Any] = {
        "dataset_id": dataset,
        "dataset_sha256": hashlib.sha256(dataset.encode()).hexdigest(),
        "samples": 512,
        "batch_size": 8,
        "precision": "fp16",
    }
    if task.startswith("text"):
        workload["sequence_length"] = 128
    if task == "text-generation":
        workload["new_tokens"] = 32
    if task == "image-classification":
        workload["image_size_px"] = 224
    if phase == "training":
        workload["training_steps"] = units_per_trial * trials
    label: dict[str, Any] = {
        "label_id": label_id,
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "registry": registry,
        "vendor": vendor,
        "model": {"id": f"{vendor}/{model}", "revision": revision},
        "benchmark": {
            "suite": dict(load_methodology()["suite"]),
            "task": task,
            "phase": phase,
            "workload": workload,
        },
        "hardware": {
            "accelerator": {
                "vendor": "nvidia" if hw["vendor"] == "nvidia" else "none",
                "model_name": accelerator_name,
                "count": 1 if hw["vendor"] == "nvidia" else 0,
                "driver_version": "570.86.15",
            },
            "hardware_class": hardware_class,
            "cpu": {"model_name": "AMD EPYC 9454 48-Core Processor", "cores": 16},
            "ram_bytes": 128 * 2**30,
        },
        "measurement": {
            "methodology_version": load_methodology()["methodology_version"],
            "components": [{"name": "gpu", "method": "nvml-energy-counter"}],
            "warmup": {"iterations": 20, "min_duration_s": 5.0},
            "trials": trials,
            "min_window_s": 10.0,
            "cooldown_s": 2.0,
            "idle_baseline_s": 10.0,
            "duration_s": clock - idle_start,
            "cv_threshold": 0.1,
            "flags": [],
        },
        "results": {
            "functional_unit": "1k-inferences" if phase == "inference" else "step",
            "energy_per_unit_wh": {},
            "components": [],
            "idle_power_w": 0.0,
            "dynamic_energy_per_unit_wh": 0.0,
            "throughput_units_per_s": 0.0,
            "latency_p50_s": 0.004,
            "latency_p95_s": 0.006,
        },
        "traces": {"idle": idle, "trials": trial_list},
        "carbon": {
            "zone": zone,
            "intensity_g_per_kwh": intensity_g_per_kwh,
            "dataset": {"name": "Ember yearly electricity data", "version": "2025", "year": 2024},
            "pue": pue,
            "basis": "location",
            "co2e_per_unit_g": {},
        },
        "provenance": {
            "runner": {"name": "carbonlabel", "version": "0.1.0"},
            "environment": {"python": "3.11.7", "frameworks": {"torch": "2.13.0"}},
            "model_artifact_sha256": hashlib.sha256(
                f"{vendor}/{model}@{revision}".encode()
            ).hexdigest(),
            "source": "synthetic",
        },
    }
    if phase == "training":
        label["results"]["steps_measured"] = units_per_trial * trials
        label["results"]["declared_total_steps"] = 100_000
    if suite != "1":
        _make_suite_2(label, rng, suite, parameter_count, quality)
    return fill_results(label)


SERVING_LEVELS = (1, 8)


def _serving_trial(trial: dict[str, Any], rng: random.Random, concurrency: int) -> None:
    """A chat-serving window: its level, and one [ttft_s, e2e_s, tokens] per request."""
    requests = []
    for _ in range(trial["units"]):
        tokens = rng.randint(60, 256)
        ttft_s = 0.02 + 0.005 * concurrency * rng.random()
        requests.append([ttft_s, ttft_s + tokens * (0.01 + 0.001 * concurrency), tokens])
    trial.update(
        concurrency=concurrency,
        errors=0,
        requests=requests,
        output_tokens=sum(r[2] for r in requests),
    )


def _make_suite_2(
    label: dict[str, Any],
    rng: random.Random,
    suite: str,
    parameter_count: int,
    quality: float | None,
) -> None:
    benchmark = label["benchmark"]
    task, phase = benchmark["task"], benchmark["phase"]
    spec = suites.task_spec(suite, task)
    benchmark["suite"] = {"name": "carbonlabel-suite", "version": suite}
    data = spec["data"]
    workload: dict[str, Any] = {
        "dataset_id": data["dataset_id"],
        "dataset_sha256": data.get("sha256")
        or hashlib.sha256(data["dataset_id"].encode()).hexdigest(),
        "samples": spec["sample_size"],
        # chat-serving: the closed loop's concurrency at the headline level stands for the batch
        "batch_size": spec.get("batch_size") or suites.headline_concurrency(SERVING_LEVELS),
        "precision": benchmark["workload"]["precision"],
    }
    if task == "text-generation" and phase == "inference":
        workload.update(
            max_new_tokens=spec["generation"]["max_new_tokens"],
            stop="eos-or-cap",
            prompt_template="chat",
        )
    if task == "chat-serving":
        cap = spec["generation"]["max_new_tokens"]
        workload.update(
            max_new_tokens=cap,
            serving={
                "engine": {"name": "vllm", "version": "0.11.0", "source": "server"},
                "api": "openai-chat-completions",
                "endpoint_host": "127.0.0.1:8000",
                "served_model": label["model"]["id"],
                "concurrency_levels": list(SERVING_LEVELS),
                "headline_concurrency": suites.headline_concurrency(SERVING_LEVELS),
                "max_error_rate": spec["serving"]["max_error_rate"],
                "client_on_metered_host": True,
                "max_new_tokens": cap,
            },
        )
    if task == "text-classification":
        workload["max_input_tokens"] = spec["max_input_tokens"]
    if phase == "training":
        workload["training_steps"] = benchmark["workload"]["training_steps"]
    benchmark["workload"] = workload
    label["results"]["functional_unit"] = suites.functional_unit_name(suite, task, phase)
    name = label["model"]["id"]
    files = [
        {
            "path": path,
            "size_bytes": size,
            "sha256": hashlib.sha256(f"{name}/{path}".encode()).hexdigest(),
        }
        for path, size in (
            ("config.json", 700),
            ("model.safetensors", parameter_count * 2),
            ("tokenizer.json", 2_000_000),
        )
    ]
    label["model"].update(
        parameter_count=parameter_count, dtype="bfloat16", hub_id=name, files=files
    )
    label["provenance"]["model_artifact_sha256"] = suites.files_digest(files)
    if spec.get("quality") and quality is not None:
        outcomes = [int(rng.random() < quality) for _ in range(workload["samples"])]
        label["quality"] = {
            "measured": {
                "metric": spec["quality"]["metric"],
                "value": 0.0,
                "items": len(outcomes),
                "outcomes": outcomes,
                "outputs_sha256": hashlib.sha256(f"{name}:outputs".encode()).hexdigest(),
            }
        }
    else:
        label["quality"] = {
            "unavailable_reason": spec.get("quality_unavailable")
            or "the model's labels are not the dataset's classes"
        }


def make_operational_label(
    *,
    vendor: str,
    model: str,
    registry: str,
    period_end: datetime,
    revision: str = "v1",
    period_s: float = 3600.0,
    windows: int = 12,
    requests_per_window: int = 600,
    energy_per_request_j: float = 400.0,
    hardware_class: str = "nvidia-h100-sxm-80gb",
    zone: str = "FR",
    intensity_g_per_kwh: float = 56.0,
    seed: int = 0,
) -> dict[str, Any]:
    """An ``operational`` label: one period of a deployed chat model, ``windows`` windows of equal
    length, each with the requests and tokens an engine counted and the GPU's counter readings;
    its figures follow from them (``schemas.kinds``)."""
    label = make_label(
        vendor=vendor,
        model=model,
        registry=registry,
        revision=revision,
        hardware_class=hardware_class,
        zone=zone,
        intensity_g_per_kwh=intensity_g_per_kwh,
        seed=seed,
        created_at=period_end,
    )
    rng = random.Random(f"{vendor}/{model}@{revision}:operational:{period_end}:{seed}")  # noqa: S311
    label["label_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    label["kind"] = "operational"
    period_start = period_end - timedelta(seconds=period_s)
    label["run"] = {
        "status": "complete",
        "started_at": period_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ended_at": period_end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "engine": {
            "name": "vllm",
            "version": "0.11.0",
            "metrics": {
                "requests": "vllm:request_success_total",
                "output_tokens": "vllm:generation_tokens_total",
            },
        },
    }
    label["benchmark"] = {
        "suite": {"name": "carbonlabel-suite", "version": "2"},
        "task": "chat-serving",
        "phase": "inference",
        "workload": {"precision": "bf16"},
    }
    window_s = period_s / windows
    clock, counter = 5000.0, 8.0e6
    trials = []
    for index in range(windows):
        requests = max(1, int(requests_per_window * (0.5 + rng.random())))
        energy_j = requests * energy_per_request_j * (1.0 + rng.gauss(0, 0.05))
        trials.append(
            {
                "index": index,
                "units": requests,
                "t_start_s": clock,
                "t_end_s": clock + window_s,
                "components": [
                    {
                        "name": "gpu",
                        "method": "nvml-energy-counter",
                        "counter_start_j": counter,
                        "counter_end_j": counter + energy_j,
                    }
                ],
                "input_tokens": requests * rng.randint(100, 300),
                "output_tokens": requests * rng.randint(150, 250),
                "utilisation": round(0.3 + 0.6 * rng.random(), 3),
                "idle_s": round(window_s * 0.2 * rng.random(), 3),
            }
        )
        clock += window_s
        counter += energy_j
    label["traces"] = {"trials": trials}
    measurement = label["measurement"]
    measurement.update(
        trials=windows, min_window_s=window_s, idle_baseline_s=0.0, duration_s=period_s
    )
    measurement["warmup"] = {"iterations": 0, "min_duration_s": 0.0}
    measurement.pop("cooldown_s", None)
    measurement.pop("cv_threshold", None)
    results = label["results"]
    results["functional_unit"] = "1k-requests"
    for name in ("idle_power_w", "dynamic_energy_per_unit_wh", "latency_p50_s", "latency_p95_s"):
        results.pop(name, None)
    label["carbon"].pop("embodied", None)
    label["carbon"].pop("water", None)
    return fill_results(label)


def make_training_run_label(
    *,
    vendor: str,
    model: str,
    registry: str,
    revision: str = "v1",
    segments: int = 8,
    steps_per_segment: int = 50,
    batch_size: int = 16,
    power_w: float = 600.0,
    status: str = "complete",
    created_at: datetime | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """A ``training-run`` label: a whole run in ``segments`` trace segments, its total the sum of
    theirs (``schemas.kinds``)."""
    label = make_label(
        vendor=vendor,
        model=model,
        registry=registry,
        revision=revision,
        phase="training",
        units_per_trial=steps_per_segment,
        trials=segments,
        power_w=power_w,
        seed=seed,
        created_at=created_at,
    )
    label["kind"] = "training-run"
    trials = label["traces"]["trials"]
    for trial in trials:
        trial["samples"] = trial["units"] * batch_size
    first, last = trials[0]["t_start_s"], trials[-1]["t_end_s"]
    ended = datetime.fromisoformat(label["created_at"])
    label["run"] = {
        "status": status,
        "started_at": (ended - timedelta(seconds=last - first)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ended_at": label["created_at"],
        "segment_s": 10.0,
    }
    workload = label["benchmark"]["workload"]
    workload.pop("dataset_sha256", None)
    workload.update(
        dataset_id="my-corpus",
        samples=steps_per_segment * segments * batch_size,
        batch_size=batch_size,
    )
    workload["training_steps"] = steps_per_segment * segments
    results = label["results"]
    results.pop("declared_total_steps", None)
    results.pop("extrapolated_total_kwh", None)
    label["carbon"].pop("co2e_per_run_g", None)
    return fill_results(label)
