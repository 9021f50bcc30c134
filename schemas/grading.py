"""Absolute grades from the versioned methodology file.

A label is graded on the upper bound of the 95% confidence interval of its gross energy per
functional unit, against fixed boundaries per task, phase and reference hardware class (a class
without its own bands uses the task's ``default``). Estimated labels get no grade.
"""

from __future__ import annotations

from typing import Any

from schemas.contract import load_methodology


def grading_version() -> str:
    return str(load_methodology()["grades"]["grading_version"])


def bands_for(task: str, phase: str, hardware_class: str) -> list[float] | None:
    grades: dict[str, Any] = load_methodology()["grades"]
    by_class = grades["bands_wh"].get(task, {}).get(phase)
    if not by_class:
        return None
    bands = by_class.get(hardware_class, by_class.get("default"))
    return [float(b) for b in bands] if bands else None


def grade_for(
    *, task: str, phase: str, hardware_class: str, energy_ci95_high_wh: float, measured: bool
) -> str | None:
    """The letter for a label, or None when it is estimated or its peer group has no bands."""
    if not measured:
        return None
    bands = bands_for(task, phase, hardware_class)
    if bands is None:
        return None
    scale = load_methodology()["grades"]["scale"]
    for letter, upper in zip(scale, bands, strict=False):
        if energy_ci95_high_wh < upper:
            return str(letter)
    return str(scale[len(bands)])
