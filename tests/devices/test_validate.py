"""``carbonlabel meters validate`` on the A100 capture (tests/data/a100-step-load: the NVML
trace and the external meter's 5 ms bin means) and on broken files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench_runner.devices import validate as v
from carbonlabel.cli import app
from tests.devices.conftest import DATA_DIR
from tests.devices.test_replay_a100 import METER_ENERGY_J, SHARED_METER

TRACE = DATA_DIR / "a100-step-load"
ARGS = [
    "meters",
    "validate",
    "--reference",
    str(TRACE / "meter_power.csv"),
    "--nvml",
    str(TRACE / "nvml_power.csv"),
    "--marks",
    str(TRACE / "load_marks.csv"),
]


def report(directory: Path = TRACE) -> v.Report:
    return v.validate_capture(
        v.read_power_csv(directory / "meter_power.csv", v.REFERENCE_COLUMNS),
        v.read_power_csv(directory / "nvml_power.csv", v.NVML_COLUMNS),
        v.read_marks_csv(directory / "load_marks.csv"),
    )


def check_a100_figures(r: v.Report) -> None:
    # NVML about 5.6 % low on the A100, over the capture and over the load step
    assert r.relative_error == pytest.approx(-0.0562, abs=0.0005)
    load = [s for s in r.segments if s.kind == "load"]
    assert len(load) == 1
    assert load[0].reference_j == pytest.approx(METER_ENERGY_J, abs=0.1)
    assert load[0].nvml_j == pytest.approx(1121.9, abs=0.1)
    assert load[0].relative_error == pytest.approx(-0.0556, abs=0.0005)
    assert load[0].t_end_s - load[0].t_start_s == pytest.approx(5.970, abs=1e-3)
    assert [s.kind for s in r.segments] == ["idle", "load", "idle", "idle"]
    # sampled at 10 Hz from the capture's start: 0.1 s ticks add about 0.6 points here
    assert r.sampled_relative_error == pytest.approx(-0.0626, abs=0.001)
    # NVML trails the meter by about 0.05-0.09 s on this card
    assert 0.05 <= r.xcorr_lag_s <= 0.09
    assert r.xcorr_r > 0.99
    assert [s.direction for s in r.steps] == ["up", "down"]
    for step in r.steps:
        assert 0.03 <= step.delay_s <= 0.1
        assert step.delay_s <= step.settle_s <= 0.15
    assert r.suggested_bias == 0.06
    assert r.suggested_settle_s == 0.1


def test_a100_capture_figures():
    r = report()
    check_a100_figures(r)
    assert r.reference_rows == 2803
    assert r.nvml_rows == 1245
    assert r.overlap_s == pytest.approx(14.01, abs=0.01)


@pytest.mark.skipif(not SHARED_METER.exists(), reason="the shared capture is not on this machine")
def test_full_rate_shared_capture_gives_the_same_figures():
    r = report(SHARED_METER.parent)
    check_a100_figures(r)
    assert r.reference_rows == 67051
    assert r.reference_rate_hz == pytest.approx(4785, abs=5)


def test_cli_text_report():
    result = CliRunner().invoke(app, ARGS)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "energy over the capture: reference 1,709.9 J, NVML 1,613.7 J (-5.62%)" in text
    assert "segment 1 (load) 1.042-7.012 s" in text
    assert "(-5.56%)" in text
    assert "suggested bias bound: 0.06" in text
    assert "lag (cross-correlation): 0.075 s" in text


def test_cli_json_report():
    result = CliRunner().invoke(app, [*ARGS, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["suggested_bias"] == 0.06
    assert data["relative_error"] == pytest.approx(-0.0562, abs=0.0005)
    assert data["segments"][1]["kind"] == "load"
    assert {"delay_s", "settle_s", "direction"} <= set(data["steps"][0])


def test_cli_max_error_exit_code():
    assert CliRunner().invoke(app, [*ARGS, "--max-error", "0.06"]).exit_code == 0
    result = subprocess.run(
        [sys.executable, "-m", "carbonlabel", *ARGS, "--max-error", "0.05"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "error: NVML's energy error over the capture is -5.62%, over --max-error 0.05"
    ]


def test_without_marks_the_capture_is_one_segment():
    result = CliRunner().invoke(app, [*ARGS[:6], "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [s["kind"] for s in data["segments"]] == ["segment"]
    assert data["steps"] == []
    assert data["suggested_bias"] == 0.06


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "meter.csv: no such file"),
        ("", "meter.csv: empty file"),
        ("time,power_w\n1,2\n", "meter.csv: no unix_s column (columns: time, power_w)"),
        ("unix_s,watts\n1,2\n", "meter.csv: no power_w column (columns: unix_s, watts)"),
        ("unix_s,power_w\n1,2\n2,abc\n", "meter.csv line 3: power_w 'abc' is not a number"),
        ("unix_s,power_w\n1,2\n2,nan\n", "meter.csv line 3: power_w 'nan' is not a finite"),
        ("unix_s,power_w\n1,2\n1,3\n", "meter.csv line 3: unix_s 1.0 does not increase"),
        ("unix_s,power_w\n1,-2\n", "meter.csv line 2: power_w -2.0 is negative"),
        ("unix_s,power_w\n1,2\n", "meter.csv: 1 data rows; at least 2 are needed"),
        ("unix_s,power_w\n1,2\n2,2\n", "the captures overlap for 0.000 s"),
    ],
)
def test_bad_reference_file_is_one_line(tmp_path: Path, content: str | None, message: str):
    path = tmp_path / "meter.csv"
    if content is not None:
        path.write_text(content)
    args = ["meters", "validate", "--reference", str(path), "--nvml", str(TRACE / "nvml_power.csv")]
    result = subprocess.run(
        [sys.executable, "-m", "carbonlabel", *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert message in lines[0]
    assert lines[0].startswith("error: ")


def test_bad_marks_file(tmp_path: Path):
    marks = tmp_path / "marks.csv"
    marks.write_text("unix_s\n5\n3\n")
    result = CliRunner().invoke(app, [*ARGS[:6], "--marks", str(marks)])
    assert result.exit_code == 1
    assert isinstance(result.exception, Exception)
    assert "marks.csv line 3: unix_s 3.0 does not increase" in str(result.exception)


def test_nvml_column_power_w_is_accepted(tmp_path: Path):
    rows = v.read_power_csv(TRACE / "nvml_power.csv", v.NVML_COLUMNS)
    ours = tmp_path / "sampler.csv"
    ours.write_text("unix_s,power_w\n" + "".join(f"{t},{p}\n" for t, p in rows))
    assert v.read_power_csv(ours, v.NVML_COLUMNS) == rows
