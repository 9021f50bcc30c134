"""Suite versions: which tasks, data, functional units, size classes and grades a label's suite has.

Suite 1 is the top level of ``methodology.json`` (as it was before suite 2, so labels of suite 1
keep their meaning and grades); suite 2 and later live under ``suites``. Everything that depends
on a label's suite reads it through this module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from schemas.contract import load_methodology

SUITE_1 = "1"
SUITE_2 = "2"
SAMPLE_SALT = "carbonlabel-suite-v2"


class UnknownSuiteError(ValueError):
    """A suite version the methodology does not define."""


def suite_versions() -> list[str]:
    """Every suite version the methodology defines, oldest first."""
    return [SUITE_1, *sorted(load_methodology().get("suites", {}), key=int)]


def latest_suite() -> str:
    return suite_versions()[-1]


def suite_spec(version: str) -> dict[str, Any]:
    """The methodology of one suite version (suite 1: the file's top level)."""
    methodology = load_methodology()
    if version == SUITE_1:
        return methodology
    try:
        spec: dict[str, Any] = methodology["suites"][version]
    except KeyError:
        raise UnknownSuiteError(f"unknown suite version {version!r}") from None
    return spec


def suite_of(label: Mapping[str, Any]) -> str:
    return str(label["benchmark"]["suite"]["version"])


def task_spec(version: str, task: str) -> dict[str, Any]:
    tasks: dict[str, Any] = suite_spec(version)["tasks"]
    if task not in tasks:
        raise UnknownSuiteError(f"suite {version} has no task {task!r}")
    spec: dict[str, Any] = tasks[task]
    return spec


def phases_of(version: str, task: str) -> list[str]:
    return list(task_spec(version, task)["phases"])


def all_tasks() -> list[str]:
    """Every task of every suite, sorted."""
    return sorted({task for v in suite_versions() for task in suite_spec(v)["tasks"]})


def suites_offering(task: str, phase: str) -> list[str]:
    """The suite versions that have this task and phase, oldest first."""
    return [
        v
        for v in suite_versions()
        if phase in suite_spec(v)["tasks"].get(task, {}).get("phases", [])
    ]


def functional_unit_name(version: str, task: str, phase: str) -> str:
    """The functional unit a label of this suite, task and phase states its energy in."""
    if version == SUITE_1:
        return str(load_methodology()["functional_units"][phase]["name"])
    return str(task_spec(version, task)["functional_units"][phase])


def units_per_functional_unit_for(label: Mapping[str, Any]) -> float:
    """Requests, inferences or steps in one functional unit of this label (1,000 or 1)."""
    version = suite_of(label)
    benchmark = label["benchmark"]
    if version == SUITE_1:
        unit = load_methodology()["functional_units"][benchmark["phase"]]
        return float(unit.get("inferences", unit.get("steps", 1)))
    name = functional_unit_name(version, benchmark["task"], benchmark["phase"])
    amount = suite_spec(version)["functional_units"][name]
    return float(next(iter(amount.values())))


def uses_size_classes(version: str, task: str) -> bool:
    return version != SUITE_1 and bool(task_spec(version, task).get("size_classes"))


def size_class_for(version: str, parameter_count: int) -> str:
    """The suite's model-size class for a parameter count (``up-to-20b``, ...)."""
    for size_class in suite_spec(version)["size_classes"]:
        limit = size_class["max_parameters"]
        if limit is None or parameter_count <= limit:
            return str(size_class["name"])
    raise ValueError("the suite's size classes do not cover every parameter count")


def size_class_label(version: str, name: str) -> str:
    """A size class's display name (``≤ 20B parameters``); the name itself when unknown."""
    if version == SUITE_1:
        return name
    for size_class in suite_spec(version).get("size_classes", []):
        if size_class["name"] == name:
            return str(size_class["label"])
    return name


def label_size_class(label: Mapping[str, Any]) -> str:
    """The size class a label is graded and ranked in ("" where the task has none)."""
    version = suite_of(label)
    task = label["benchmark"]["task"]
    count = label["model"].get("parameter_count")
    if not uses_size_classes(version, task) or not isinstance(count, int):
        return ""
    return size_class_for(version, count)


def sample_indices(dataset_id: str, n_items: int, size: int) -> list[int]:
    """The fixed sample: the ``size`` indices of ``range(n_items)`` whose
    ``sha256("carbonlabel-suite-v2:<dataset_id>:<index>")`` hex digests are smallest, returned in
    ascending index order. Anyone can redraw it from the dataset id and its length."""
    if not 0 < size <= n_items:
        raise ValueError(f"sample size {size} must be between 1 and the {n_items} items")

    def rank(index: int) -> str:
        return hashlib.sha256(f"{SAMPLE_SALT}:{dataset_id}:{index}".encode()).hexdigest()

    return sorted(sorted(range(n_items), key=rank)[:size])


def files_digest(files: Iterable[Mapping[str, Any]]) -> str:
    """The statement subject digest of a suite-2 model: sha256 of the manifest whose lines are
    ``"<sha256>  <path>\\n"`` (sha256sum's format) for each file, sorted by path, UTF-8."""
    lines = sorted((str(f["path"]), str(f["sha256"])) for f in files)
    manifest = "".join(f"{sha}  {path}\n" for path, sha in lines)
    return hashlib.sha256(manifest.encode()).hexdigest()


def outputs_digest(outputs: Iterable[str]) -> str:
    """sha256 of the model's raw outputs in sample order, as a compact JSON array."""
    text = json.dumps(list(outputs), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def headline_concurrency(levels: Iterable[int]) -> int:
    """The chat-serving level whose figures head a label: the methodology's standard concurrency
    when it was measured, else the measured level closest to it (ties: the lower)."""
    standard = int(task_spec(SUITE_2, "chat-serving")["serving"]["headline_concurrency"])
    return min(levels, key=lambda level: (abs(level - standard), level))


def meter_bias(hardware_class: str) -> dict[str, Any]:
    """The systematic error bound of a hardware class's measurement: ``{"relative", "validated",
    "source"}`` from ``methodology.json`` ``meter_bias`` (``default`` for a class not validated
    against an external meter)."""
    table = load_methodology()["meter_bias"]
    entry = table["classes"].get(hardware_class, table["default"])
    return {
        "relative": float(entry["relative"]),
        "validated": bool(entry["validated"]),
        "source": str(entry["source"]),
    }


def grade_basis_wh(energy_ci95_high_wh: float, hardware_class: str) -> float:
    """What a grade is given on: the upper bound of the 95% CI widened by the class's bias bound."""
    return energy_ci95_high_wh * (1.0 + meter_bias(hardware_class)["relative"])


@cache
def _grades(version: str) -> dict[str, Any]:
    grades: dict[str, Any] = suite_spec(version)["grades"]
    return grades


def grading_version_for(version: str) -> str:
    return str(_grades(version)["grading_version"])


def grade_scale(version: str) -> list[str]:
    return [str(letter) for letter in _grades(version)["scale"]]


def bands_for_suite(
    version: str, task: str, phase: str, hardware_class: str, size_class: str = ""
) -> list[float] | None:
    """Grade boundaries (Wh per functional unit) for a peer group, or None when it has none."""
    by_class = _grades(version)["bands_wh"].get(task, {}).get(phase)
    if not by_class:
        return None
    if "size_classes" in by_class:
        by_class = by_class["size_classes"].get(size_class)
        if not by_class:
            return None
    bands = by_class.get(hardware_class, by_class.get("default"))
    return [float(b) for b in bands] if bands else None
