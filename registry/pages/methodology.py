"""The methodology page: tasks, functional units, reference hardware and the grade bands of every
suite (suite 1 at the top level of the methodology file, later suites under ``suites``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from registry.pages.common import (
    format_number,
    functional_unit_of,
    render,
    router,
    unit_short_for,
)
from schemas import embodied, water
from schemas.contract import load_methodology
from schemas.suites import SUITE_1, meter_bias, size_class_label, suite_spec, suite_versions


def _cells(bands: list[float], scale: list[str]) -> list[dict[str, Any]]:
    cells = []
    for i, letter in enumerate(scale):
        low = bands[i - 1] if i > 0 else None
        high = bands[i] if i < len(bands) else None
        cells.append({"grade": letter, "low": low, "high": high})
    return cells


def band_rows(version: str, grades: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per task, phase, model-size class (suite 2 text generation) and hardware class."""
    scale = list(grades["scale"])
    rows = []
    for task, phases in grades["bands_wh"].items():
        for phase, by_class in phases.items():
            median = grades.get("medians_wh", {}).get(task, {}).get(phase)
            classes = by_class.get("size_classes", {"": by_class})
            for size_class, by_hardware in classes.items():
                for hardware_class, bands in by_hardware.items():
                    rows.append(
                        {
                            "task": task,
                            "phase": phase,
                            "size_class": size_class_label(version, size_class)
                            if size_class
                            else "",
                            "hardware_class": hardware_class,
                            "median": median.get(size_class)
                            if isinstance(median, dict)
                            else median,
                            "unit": unit_short_for(functional_unit_of(version, task, phase)),
                            "cells": _cells(bands, scale),
                        }
                    )
                    rows[-1]["plain"] = plain_words(rows[-1], scale)
    return rows


def plain_words(row: Mapping[str, Any], scale: list[str]) -> str:
    """One band set for a buyer: what each letter means in the set's unit and against the
    median published figure it was centred on."""
    unit, median, cells = row["unit"], row["median"], row["cells"]

    def times(value: float) -> str:
        return f"{value / median:.2g} times" if median else ""

    def figure(value: float) -> str:
        return format_number(value)

    parts = []
    for cell in cells:
        letter, low, high = cell["grade"], cell["low"], cell["high"]
        if low is None:
            text = f"under {figure(high)} {unit}"
            text += f" (less than {times(high)} the median)" if median else ""
        elif high is None:
            text = f"{figure(low)} {unit} or more"
            text += f" ({times(low)} the median or more)" if median else ""
        else:
            text = f"{figure(low)} to {figure(high)}"
            text += f" ({low / median:.2g} to {times(high)} the median)" if median else ""
        parts.append(f"{letter} {text}")
    where = row["task"] + " " + row["phase"]
    if row["size_class"]:
        where += f", models {row['size_class']}"
    if row["hardware_class"] == "default":
        hardware = (
            "the same figures for every hardware class (data-centre GPU, workstation GPU or "
            "CPU), so compare grades within one class"
        )
    else:
        hardware = f"for {row['hardware_class']} only"
    centred = f" Centred on {figure(median)} {unit}, the median published figure;" if median else ""
    return f"{where}: " + "; ".join(parts) + f".{centred} {hardware}."


@router.get("/methodology", response_class=HTMLResponse)
def methodology_page(request: Request) -> HTMLResponse:
    """Tasks, functional units, reference hardware and the grade bands of the methodology file."""
    methodology = load_methodology()
    grades = methodology["grades"]
    later = [
        {
            "version": version,
            "description": suite_spec(version).get("description", ""),
            "grades": suite_spec(version)["grades"],
            "scale": list(suite_spec(version)["grades"]["scale"]),
            "band_rows": band_rows(version, suite_spec(version)["grades"]),
        }
        for version in suite_versions()
        if version != SUITE_1
    ]
    return render(
        request,
        "methodology.html",
        {
            "title": "Methodology",
            "methodology": methodology,
            "grades": grades,
            "scale": list(grades["scale"]),
            "band_rows": band_rows(SUITE_1, grades),
            "later_suites": later,
            "meter_bias": meter_bias,
            "embodied": embodied.TABLE.version(embodied.TABLE.current_version()),
            "embodied_version": embodied.TABLE.current_version(),
            "water": water.TABLE.version(water.TABLE.current_version()),
            "water_version": water.TABLE.current_version(),
        },
    )
