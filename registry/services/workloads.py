"""What a label's suite means to the registry: its typed suite columns, whether its workload is
the suite's standard one, and its grade.

A suite-2 run may be shrunk for a quick check (fewer samples, a lower generation cap); such a
label is stored, shown and listed, but not graded (docs/methodology.md, suite 2). Ingest and
migration 0006 both read labels through these functions, so a label's columns do not depend on
which of them stored it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.grading import grade_for, grading_version
from schemas.suites import SUITE_1, label_size_class, suite_of, task_spec

NON_STANDARD_WORKLOAD = "non-standard-workload"


def workload_deviations(label: Mapping[str, Any]) -> list[str]:
    """How the label's workload differs from its suite's (empty: it is the standard one).

    Suite 1 has no fixed workload to compare with. Later suites fix the sample size, the batch
    size and, for inference with generation, the cap on new tokens."""
    suite = suite_of(label)
    if suite == SUITE_1:
        return []
    benchmark = label["benchmark"]
    spec = task_spec(suite, benchmark["task"])
    workload = benchmark["workload"]
    expected: dict[str, Any] = {"samples": spec["sample_size"]}
    if "batch_size" in spec:
        expected["batch_size"] = spec["batch_size"]
    if spec.get("generation") and benchmark["phase"] == "inference":
        expected["max_new_tokens"] = spec["generation"]["max_new_tokens"]
    serving = workload.get("serving")
    if serving and "serving" in spec:
        # graded only with the standard concurrency among the levels (it is then the headline)
        standard = spec["serving"]["headline_concurrency"]
        if serving["headline_concurrency"] != standard:
            return [
                f"/benchmark/workload/serving/headline_concurrency: "
                f"{serving['headline_concurrency']!r}, the suite's is {standard!r}"
            ]
    return [
        f"/benchmark/workload/{name}: {workload.get(name)!r}, the suite's is {value!r}"
        for name, value in expected.items()
        if workload.get(name) != value
    ]


def standard_workload(label: Mapping[str, Any]) -> bool:
    return not workload_deviations(label)


def suite_columns(label: Mapping[str, Any]) -> dict[str, Any]:
    """The ``labels`` columns of migration 0006 for a label: suite, size class, the MEASURED
    quality figure and its metric (declared figures are never it), and the mean energy per
    output token."""
    measured = (label.get("quality") or {}).get("measured") or {}
    per_token = label["results"].get("energy_per_output_token_j") or {}
    return {
        "suite": suite_of(label),
        "size_class": label_size_class(label),
        "quality": float(measured["value"]) if "value" in measured else None,
        "quality_metric": measured.get("metric"),
        "energy_per_output_token_j": (float(per_token["mean"]) if "mean" in per_token else None),
        "standard_workload": standard_workload(label),
    }


def grade_of(
    label: Mapping[str, Any], *, measured: bool, suite: str, size_class: str
) -> tuple[str | None, str | None]:
    """``(grade, graded_under)`` of a label: its suite's bands for its peer group and size class;
    none for an estimate, a group without bands or a non-standard workload."""
    if not standard_workload(label):
        return None, None
    grade = grade_for(
        task=label["benchmark"]["task"],
        phase=label["benchmark"]["phase"],
        hardware_class=label["hardware"]["hardware_class"],
        energy_ci95_high_wh=label["results"]["energy_per_unit_wh"]["ci95_high"],
        measured=measured,
        suite=suite,
        size_class=size_class,
    )
    return grade, grading_version(suite) if grade else None
