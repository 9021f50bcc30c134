"""Absolute grades from the versioned methodology file.

A label is graded on the upper bound of the 95% confidence interval of its gross energy per
functional unit, widened by the class's meter bias bound (grading 1.1 and 2), against fixed
boundaries per suite, task, phase and reference hardware class (a class without its own bands uses
the task's ``default``); suite 2's text generation and chat serving are graded within their
model-size class. Estimated labels get no grade.
"""

from __future__ import annotations

from schemas.suites import (
    SUITE_1,
    bands_for_suite,
    grade_basis_wh,
    grade_scale,
    grading_version_for,
)


def grading_version(suite: str = SUITE_1) -> str:
    """The grading version of a suite (what ``graded_under`` records)."""
    return grading_version_for(suite)


def bands_for(
    task: str, phase: str, hardware_class: str, *, suite: str = SUITE_1, size_class: str = ""
) -> list[float] | None:
    return bands_for_suite(suite, task, phase, hardware_class, size_class)


def grade_for(
    *,
    task: str,
    phase: str,
    hardware_class: str,
    energy_ci95_high_wh: float,
    measured: bool,
    suite: str = SUITE_1,
    size_class: str = "",
) -> str | None:
    """The letter for a label, or None when it is estimated or its peer group has no bands.

    The basis is ``energy_ci95_high_wh`` widened by the hardware class's meter bias bound
    (``schemas.suites.grade_basis_wh``): a grade cannot be earned by a meter that reads low."""
    if not measured:
        return None
    bands = bands_for(task, phase, hardware_class, suite=suite, size_class=size_class)
    if bands is None:
        return None
    basis = grade_basis_wh(energy_ci95_high_wh, hardware_class)
    scale = grade_scale(suite)
    for letter, upper in zip(scale, bands, strict=False):
        if basis < upper:
            return letter
    return scale[len(bands)]
