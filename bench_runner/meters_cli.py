"""``carbonlabel meters validate``: NVML against an external power meter, from a capture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bench_runner.cli import CliError, out

if TYPE_CHECKING:
    from bench_runner.devices.validate import Report

#: exit code when NVML's error over the capture exceeds ``--max-error``
EXIT_OVER_MAX_ERROR = 3


def validate(
    reference: Annotated[
        Path,
        typer.Option(
            "--reference", help="the external meter's CSV: unix_s, power_w", show_default=False
        ),
    ],
    nvml: Annotated[
        Path,
        typer.Option(
            "--nvml",
            help="NVML's CSV over the same time: unix_s, power_draw_w (or power_w)",
            show_default=False,
        ),
    ],
    marks: Annotated[
        Path | None,
        typer.Option(
            "--marks",
            help="the instants the load was switched: unix_s (per-segment errors, step delays)",
            show_default=False,
        ),
    ] = None,
    interval_s: Annotated[
        float, typer.Option("--interval-s", help="the sampler's interval to replay NVML at (s)")
    ] = 0.1,
    max_error: Annotated[
        float | None,
        typer.Option(
            "--max-error",
            help=f"exit {EXIT_OVER_MAX_ERROR} when NVML's relative error over the capture is "
            "larger than this (e.g. 0.06)",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Replay a capture of an external power meter beside NVML through the runner's own
    integration: NVML's energy error (over the capture and per load segment), its lag, and the
    bias bound and settling delay they suggest for the card's class (docs/meters.md).

    Exit codes: 0 report printed, 1 a file cannot be read or the captures cannot be compared,
    3 NVML's error is over --max-error.
    """
    from bench_runner.devices import validate as v

    try:
        report = v.validate_capture(
            v.read_power_csv(reference, v.REFERENCE_COLUMNS),
            v.read_power_csv(nvml, v.NVML_COLUMNS),
            v.read_marks_csv(marks) if marks is not None else (),
            interval_s=interval_s,
            reference_path=str(reference),
            nvml_path=str(nvml),
        )
    except v.ValidateError as exc:
        raise CliError(str(exc)) from None
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
    else:
        for line in report_lines(report):
            out.print(line, markup=False, highlight=False)
    if max_error is not None and abs(report.relative_error) > max_error:
        raise CliError(
            f"NVML's energy error over the capture is {report.relative_error:+.2%}, over "
            f"--max-error {max_error:g}",
            EXIT_OVER_MAX_ERROR,
        )


def report_lines(r: Report) -> list[str]:
    """The report as text, one fact a line."""
    lines = [
        f"reference: {r.reference_path}, {r.reference_rows:,} rows ({r.reference_rate_hz:,.0f} Hz)",
        f"nvml: {r.nvml_path}, {r.nvml_rows:,} rows ({r.nvml_rate_hz:,.1f} Hz)",
        f"overlap: {r.overlap_s:.3f} s",
        f"energy over the capture: reference {r.reference_j:,.1f} J, NVML {r.nvml_j:,.1f} J "
        f"({r.relative_error:+.2%}); NVML sampled every {r.interval_s:g} s {r.sampled_j:,.1f} J "
        f"({r.sampled_relative_error:+.2%})",
    ]
    for s in r.segments:
        lines.append(
            f"segment {s.index} ({s.kind}) {s.t_start_s:.3f}-{s.t_end_s:.3f} s: reference "
            f"{s.reference_mean_w:.1f} W, {s.reference_j:,.1f} J; NVML {s.nvml_mean_w:.1f} W, "
            f"{s.nvml_j:,.1f} J ({s.relative_error:+.2%})"
        )
    lines.append(f"lag (cross-correlation): {r.xcorr_lag_s:.3f} s (r = {r.xcorr_r:.4f})")
    for step in r.steps:
        lines.append(
            f"step {step.direction} at {step.mark_s:.3f} s: NVML half-way {step.delay_s:.3f} s "
            f"after the reference, at 90 % after {step.settle_s:.3f} s"
        )
    lines.append(
        f"suggested bias bound: {r.suggested_bias:.2f} (NVML's largest error over the capture "
        "and its load segments, rounded up to a whole percent)"
    )
    lines.append(
        f"suggested settle_s: at least {r.suggested_settle_s:.1f} s (NVML's slowest step to "
        "90 %, or its cross-correlation lag, rounded up to 0.1 s)"
    )
    return lines
