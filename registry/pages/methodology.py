"""The methodology page: tasks, functional units, reference hardware and the grade bands."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from registry.pages.common import render, router, unit_short
from schemas.contract import load_methodology


@router.get("/methodology", response_class=HTMLResponse)
def methodology_page(request: Request) -> HTMLResponse:
    """Tasks, functional units, reference hardware and the grade bands of the methodology file."""
    methodology = load_methodology()
    grades = methodology["grades"]
    scale = list(grades["scale"])
    band_rows = []
    for task, phases in grades["bands_wh"].items():
        for phase, by_class in phases.items():
            for hardware_class, bands in by_class.items():
                cells = []
                for i, letter in enumerate(scale):
                    low = bands[i - 1] if i > 0 else None
                    high = bands[i] if i < len(bands) else None
                    cells.append({"grade": letter, "low": low, "high": high})
                band_rows.append(
                    {
                        "task": task,
                        "phase": phase,
                        "hardware_class": hardware_class,
                        "median": grades.get("medians_wh", {}).get(task, {}).get(phase),
                        "unit": unit_short(phase),
                        "cells": cells,
                    }
                )
    return render(
        request,
        "methodology.html",
        {
            "title": "Methodology",
            "methodology": methodology,
            "grades": grades,
            "scale": scale,
            "band_rows": band_rows,
        },
    )
