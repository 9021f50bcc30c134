"""Regenerate the example statements under ``schemas/examples``.

    .venv/bin/python tools/make_examples.py          # (re)write the files
    .venv/bin/python tools/make_examples.py --check  # exit 1 if any file would change

``valid/`` holds full in-toto statements (what goes in the DSSE payload) that pass the schema and
whose stated results follow from their traces. ``invalid/`` holds statements that each break one
schema rule; every issue the Python validator reports for them lies under the pointer listed here
(``tests/test_schema_examples.py`` keeps the same mapping).
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schemas import build_statement, check_results, validate_statement  # noqa: E402
from schemas.results import fill_results  # noqa: E402
from schemas.synthetic import make_label  # noqa: E402

EXAMPLES = ROOT / "schemas" / "examples"
REGISTRY = "https://registry.carbonlabel.example"

# RAPL package domains commonly report max_energy_range_uj = 262143328850 (about 262 kJ).
RAPL_RANGE_J = 262143.32885

Doc = dict[str, Any]


def _window(
    rng: random.Random, t_start: float, t_end: float, specs: list[Doc], counters: dict[str, float]
) -> list[Doc]:
    """Component traces over one window: sampled power or counter readings (which may wrap)."""
    out: list[Doc] = []
    for spec in specs:
        power_w = spec["power_w"] * (1.0 + rng.gauss(0, 0.02))
        entry: Doc = {"name": spec["name"], "method": spec["method"], "device": spec["device"]}
        if spec["method"] in ("nvml-power-sampling", "estimate"):
            n = int((t_end - t_start) // spec["interval_s"])
            times = [t_start + i * spec["interval_s"] for i in range(n + 1)]
            if times[-1] < t_end:
                times.append(t_end)
            entry["samples"] = [
                [round(t, 3), round(power_w * (1.0 + rng.gauss(0, 0.03)), 2)] for t in times
            ]
        else:
            start = counters[spec["name"]]
            end = round(start + power_w * (t_end - t_start), 6)
            span = spec.get("counter_range_j")
            if span:
                entry["counter_range_j"] = span
                if end >= span:
                    end = round(end - span, 6)
            entry["counter_start_j"] = start
            entry["counter_end_j"] = end
            counters[spec["name"]] = end
        out.append(entry)
    return out


def retrace(label: Doc, specs: list[Doc], *, seed: int, idle_scale: float = 0.25) -> Doc:
    """Replace the label's traces with ones built from ``specs`` and recompute its results.

    Each spec: name, method, device, power_w (under load), and interval_s (sampled methods) or
    counter_start_j and optional counter_range_j (counter methods). Idle power is
    ``idle_scale * power_w``.
    """
    rng = random.Random(seed)  # noqa: S311
    measurement = label["measurement"]
    counters = {s["name"]: s["counter_start_j"] for s in specs if "counter_start_j" in s}
    clock = 2000.0
    idle_start = clock
    clock += measurement["idle_baseline_s"]
    idle_specs = [{**s, "power_w": s["power_w"] * idle_scale} for s in specs]
    idle = {
        "t_start_s": idle_start,
        "t_end_s": clock,
        "components": _window(rng, idle_start, clock, idle_specs, counters),
    }
    trials = []
    for index, old in enumerate(label["traces"]["trials"]):
        clock += measurement["cooldown_s"]
        start = clock
        clock = round(clock + measurement["min_window_s"] + rng.random(), 3)
        trials.append(
            {
                "index": index,
                "units": old["units"],
                "t_start_s": start,
                "t_end_s": clock,
                "components": _window(rng, start, clock, specs, counters),
            }
        )
    label["traces"] = {"idle": idle, "trials": trials}
    measurement["components"] = [{"name": s["name"], "method": s["method"]} for s in specs]
    measurement["duration_s"] = round(clock - idle_start, 3)
    if any("interval_s" in s for s in specs):
        measurement["sampling_interval_s"] = min(
            s["interval_s"] for s in specs if "interval_s" in s
        )
    return fill_results(label)


def valid_examples() -> dict[str, Doc]:
    inference = make_label(
        vendor="acme",
        model="bert-base-uncased",
        registry=REGISTRY,
        task="text-classification",
        phase="inference",
        trials=5,
        seed=1,
    )
    training = make_label(
        vendor="acme",
        model="resnet-50",
        registry=REGISTRY,
        revision="2026.03",
        task="image-classification",
        phase="training",
        hardware_class="nvidia-a100-sxm-80gb",
        zone="DE",
        intensity_g_per_kwh=381.0,
        pue=1.35,
        power_w=380.0,
        units_per_trial=40,
        trials=5,
        seed=2,
    )
    sampled = make_label(
        vendor="northwind",
        model="tinyllama-1.1b-chat",
        registry=REGISTRY,
        task="text-generation",
        phase="inference",
        hardware_class="nvidia-l4-24gb",
        zone="US-CAL-CISO",
        intensity_g_per_kwh=215.0,
        pue=1.1,
        units_per_trial=256,
        trials=3,
        seed=3,
    )
    sampled = retrace(
        sampled,
        [
            {
                "name": "gpu",
                "method": "nvml-power-sampling",
                "device": "0",
                "power_w": 68.0,
                "interval_s": 1.0,
            },
            {
                # starts just below the wrap point: the first trial's reading wraps once
                "name": "cpu",
                "method": "rapl",
                "device": "intel-rapl:0",
                "power_w": 95.0,
                "counter_start_j": RAPL_RANGE_J - 1000.0,
                "counter_range_j": RAPL_RANGE_J,
            },
        ],
        seed=3,
    )
    # make_label's latencies fit a small classifier; give the others plausible figures
    for key in ("latency_p50_s", "latency_p95_s"):
        del training["results"][key]
    sampled["results"].update(latency_p50_s=0.33, latency_p95_s=0.37)
    generation = make_label(
        vendor="northwind",
        model="qwen2.5-0.5b-instruct",
        registry=REGISTRY,
        task="text-generation",
        phase="inference",
        units_per_trial=24,
        power_w=310.0,
        trials=5,
        seed=4,
        suite="2",
        parameter_count=494_032_768,
        quality=0.3,
    )
    generation["results"].update(latency_p50_s=2.9, latency_p95_s=3.4)
    images = make_label(
        vendor="acme",
        model="vit-base-patch16-224",
        registry=REGISTRY,
        task="image-classification",
        phase="inference",
        units_per_trial=3000,
        trials=5,
        seed=5,
        suite="2",
        parameter_count=86_567_656,
    )
    serving = make_label(
        vendor="northwind",
        model="chat-8b",
        registry=REGISTRY,
        task="chat-serving",
        phase="inference",
        units_per_trial=12,
        power_w=520.0,
        trials=4,
        seed=6,
        suite="2",
        parameter_count=8_030_261_248,
    )
    serving["results"].update(latency_p50_s=3.1, latency_p95_s=3.9)
    return {
        "suite-2-chat-serving-two-levels.json": build_statement(serving),
        "inference-text-classification.json": build_statement(inference),
        "training-image-classification-declared-steps.json": build_statement(training),
        "inference-power-sampling-rapl-wraparound.json": build_statement(sampled),
        "suite-2-text-generation-with-quality.json": build_statement(generation),
        "suite-2-image-classification-no-quality.json": build_statement(images),
    }


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        *parents, last = path.strip("/").split("/")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _delete(path: str) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        *parents, last = path.strip("/").split("/")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]

    return mutate


# file name -> (base valid example, mutation, pointer prefix under which every issue must lie)
INVALID: dict[str, tuple[str, Callable[[Doc], None], str]] = {
    "missing-required-carbon.json": (
        "inference-text-classification.json",
        _delete("/predicate/carbon"),
        "/predicate",
    ),
    "task-not-in-suite.json": (
        "inference-text-classification.json",
        _set("/predicate/benchmark/task", "speech-recognition"),
        "/predicate/benchmark/task",
    ),
    # a training label (functional unit "step"), so only the phase enum is broken
    "phase-not-in-enum.json": (
        "training-image-classification-declared-steps.json",
        _set("/predicate/benchmark/phase", "fine-tuning"),
        "/predicate/benchmark/phase",
    ),
    "functional-unit-inconsistent-with-phase.json": (
        "inference-text-classification.json",
        _set("/predicate/results/functional_unit", "step"),
        "/predicate/results/functional_unit",
    ),
    "dataset-sha256-not-lowercase-hex.json": (
        "inference-text-classification.json",
        _set("/predicate/benchmark/workload/dataset_sha256", "ABCDEF" + "0" * 58),
        "/predicate/benchmark/workload/dataset_sha256",
    ),
    "extra-property-in-results.json": (
        "inference-text-classification.json",
        _set("/predicate/results/carbon_neutral", True),
        "/predicate/results",
    ),
    "n-trials-below-two.json": (
        "inference-text-classification.json",
        _set("/predicate/results/energy_per_unit_wh/n_trials", 1),
        "/predicate/results/energy_per_unit_wh/n_trials",
    ),
    "predicate-type-not-label.json": (
        "inference-text-classification.json",
        _set("/predicateType", "https://slsa.dev/provenance/v1"),
        "/predicateType",
    ),
    "statement-type-v0.1.json": (
        "inference-text-classification.json",
        _set("/_type", "https://in-toto.io/Statement/v0.1"),
        "/_type",
    ),
    "zone-not-iso-3166.json": (
        "inference-text-classification.json",
        _set("/predicate/carbon/zone", "france"),
        "/predicate/carbon/zone",
    ),
    "subject-missing-digest.json": (
        "inference-text-classification.json",
        _delete("/subject/0/digest"),
        "/subject/0",
    ),
    "hardware-class-unknown.json": (
        "inference-text-classification.json",
        _set("/predicate/hardware/hardware_class", "nvidia-b300"),
        "/predicate/hardware/hardware_class",
    ),
    "pue-below-one.json": (
        "training-image-classification-declared-steps.json",
        _set("/predicate/carbon/pue", 0.9),
        "/predicate/carbon/pue",
    ),
    "created-at-not-utc.json": (
        "inference-text-classification.json",
        _set("/predicate/created_at", "2026-03-01T12:00:00+02:00"),
        "/predicate/created_at",
    ),
    "single-trial-trace.json": (
        "training-image-classification-declared-steps.json",
        lambda doc: doc["predicate"]["traces"]["trials"].__delitem__(slice(1, None)),
        "/predicate/traces/trials",
    ),
    "power-sample-negative.json": (
        "inference-power-sampling-rapl-wraparound.json",
        _set("/predicate/traces/trials/0/components/0/samples/1/1", -5.0),
        "/predicate/traces/trials/0/components/0",
    ),
    "power-sample-not-a-pair.json": (
        "inference-power-sampling-rapl-wraparound.json",
        lambda doc: doc["predicate"]["traces"]["trials"][1]["components"][0]["samples"][2].append(
            1.0
        ),
        "/predicate/traces/trials/1/components/0",
    ),
    "chat-serving-trial-without-requests.json": (
        "suite-2-chat-serving-two-levels.json",
        _delete("/predicate/traces/trials/2/requests"),
        "/predicate/traces/trials/2",
    ),
    "suite-2-without-quality.json": (
        "suite-2-text-generation-with-quality.json",
        _delete("/predicate/quality"),
        "/predicate",
    ),
    "suite-2-quality-measured-and-unavailable.json": (
        "suite-2-text-generation-with-quality.json",
        _set("/predicate/quality/unavailable_reason", "both at once"),
        "/predicate/quality",
    ),
    "suite-2-quality-outcome-not-binary.json": (
        "suite-2-text-generation-with-quality.json",
        _set("/predicate/quality/measured/outcomes/3", 2),
        "/predicate/quality/measured/outcomes/3",
    ),
    "suite-2-trial-without-output-tokens.json": (
        "suite-2-text-generation-with-quality.json",
        _delete("/predicate/traces/trials/1/output_tokens"),
        "/predicate/traces/trials/1",
    ),
    "suite-2-model-without-parameter-count.json": (
        "suite-2-image-classification-no-quality.json",
        _delete("/predicate/model/parameter_count"),
        "/predicate/model",
    ),
    "counter-reading-with-samples-method.json": (
        "inference-power-sampling-rapl-wraparound.json",
        _set("/predicate/traces/trials/2/components/1/method", "nvml-power-sampling"),
        "/predicate/traces/trials/2/components/1",
    ),
}


def build() -> dict[str, Doc]:
    """Every example, keyed by its path relative to ``schemas/examples``; checked as it is built."""
    files: dict[str, Doc] = {}
    valid = valid_examples()
    for name, doc in valid.items():
        issues = validate_statement(doc)
        mismatches = check_results(doc["predicate"])
        if issues or mismatches:
            raise SystemExit(f"valid/{name} is not valid: {issues} {mismatches}")
        files[f"valid/{name}"] = doc
    for name, (base, mutate, prefix) in INVALID.items():
        doc = copy.deepcopy(valid[base])
        mutate(doc)
        issues = validate_statement(doc)
        if not issues:
            raise SystemExit(f"invalid/{name} passes the schema")
        stray = [i for i in issues if not (i.pointer + "/").startswith(prefix + "/")]
        if stray:
            raise SystemExit(f"invalid/{name} breaks more than {prefix}: {stray}")
        files[f"invalid/{name}"] = doc
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report files that would change")
    args = parser.parse_args()
    stale = []
    for rel, doc in build().items():
        path = EXAMPLES / rel
        text = json.dumps(doc, indent=2) + "\n"
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(rel)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for rel in stale:
        print(f"{'stale' if args.check else 'wrote'} schemas/examples/{rel}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
