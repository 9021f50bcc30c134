"""``carbonlabel advise``: where and when a label's work would emit least
(``bench_runner.advise``)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bench_runner import grid_hourly
from bench_runner.advise import AdviseError, advise
from bench_runner.carbon import CarbonError, load_hourly_csv
from bench_runner.cli import CliError
from bench_runner.interop_cli import load_label_file


def _series(spec: str) -> tuple[str, list[tuple[datetime, float, bool]]]:
    """``PATH`` (an Electricity Maps export names its zone) or ``ZONE=PATH`` (any hourly CSV the
    bench reads: ``timestamp,intensity_g_per_kwh``, or an Electricity Maps export)."""
    zone, sep, path = spec.partition("=")
    if not sep:
        zone, path = "", spec
    try:
        grid = grid_hourly.read_hourly_grid(path, zone or None)
    except grid_hourly.GridDataError:
        if not zone:
            raise CliError(
                f"{path}: name its zone as ZONE={path} (only an Electricity Maps export names "
                "its own)"
            ) from None
        try:
            return zone, [(hour, value, False) for hour, value in load_hourly_csv(path)]
        except CarbonError as exc:
            raise CliError(str(exc)) from None
    rows = [(h.hour, h.intensity_g_per_kwh, h.estimated) for h in grid.hours]
    usable = [(hour, value, est) for hour, value, est in rows if value is not None]
    if not usable:
        raise CliError(
            f"{path}: {grid.source} data has no carbon intensity (an ENTSO-E generation file "
            "gives the carbon-free share only): use an Electricity Maps export or a "
            "timestamp,intensity_g_per_kwh CSV"
        )
    return zone or grid.zone, usable


def advise_command(
    label_path: Annotated[Path, typer.Argument(help="label JSON or DSSE envelope file")],
    hourly: Annotated[
        list[str],
        typer.Option(
            "--hourly",
            help="hourly intensities of a candidate zone: PATH (Electricity Maps export) or "
            "ZONE=PATH; repeat for each zone",
        ),
    ],
    units: Annotated[
        float | None,
        typer.Option(help="how much work: inferences, requests or training steps"),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(help="the earliest start, ISO 8601 with offset (default: the data's first)"),
    ] = None,
    within: Annotated[int, typer.Option(help="latest start considered, hours after now")] = 24,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object on stdout")] = False,
) -> None:
    """Print the start time and zone with the lowest CO2e for the label's work, the saving
    against running now and here, and the assumptions."""
    label = load_label_file(label_path)
    zones = dict(_series(spec) for spec in hourly)
    start = None
    if now is not None:
        try:
            start = datetime.fromisoformat(now.replace("Z", "+00:00"))
        except ValueError:
            raise CliError(f"--now {now!r} is not ISO 8601") from None
        if start.tzinfo is None:
            raise CliError(f"--now {now!r} needs an offset (Z or +hh:mm)")
    if not 0 <= within <= 24 * 366:
        raise CliError("--within must be between 0 and 8784 hours")
    try:
        answer = advise(label, zones, units=units, now=start, within_h=within)
    except AdviseError as exc:
        raise CliError(str(exc)) from None
    out = Console(soft_wrap=True)
    if as_json:
        out.print_json(json.dumps(answer.to_json()))
        return
    best, base = answer.best, answer.baseline
    share = answer.saving_g / base.co2e_g if base.co2e_g else 0.0
    out.print(
        f"best: start {best.start:%Y-%m-%d %H:%M} UTC in {best.zone}: "
        f"{best.co2e_g:.3g} g CO2e; now and here ({base.zone}, {base.start:%Y-%m-%d %H:%M} "
        f"UTC): {base.co2e_g:.3g} g; saving {answer.saving_g:.3g} g ({share:.0%})",
        markup=False,
        highlight=False,
    )
    table = Table("zone", "best start (UTC)", "g CO2e", "estimated hours")
    for option in sorted(answer.per_zone, key=lambda o: o.co2e_g):
        table.add_row(
            option.zone,
            f"{option.start:%Y-%m-%d %H:%M}",
            f"{option.co2e_g:.3g}",
            str(option.estimated_hours),
        )
    out.print(table)
    out.print("assumptions:", markup=False)
    for line in answer.assumptions:
        out.print(f"- {line}", markup=False, highlight=False)
