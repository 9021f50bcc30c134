"""RAPL meters on a fake powercap tree under tmp_path."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench_runner.devices import rapl
from bench_runner.devices.base import MeterError, RaplPermissionError, RaplUnavailable
from bench_runner.devices.rapl import (
    RaplMeter,
    discover_domains,
    energy_delta_uj,
    make_rapl_meters,
)
from schemas.results import component_energy_j
from tests.devices.conftest import FakeClock

RANGE_UJ = 262_143_328_850  # a typical package max_energy_range_uj
DRAM_RANGE_UJ = 65_712_999_613


def make_zone(directory: Path, name: str, energy_uj: int, range_uj: int) -> Path:
    directory.mkdir(parents=True)
    (directory / "name").write_text(f"{name}\n")
    (directory / "energy_uj").write_text(f"{energy_uj}\n")
    (directory / "max_energy_range_uj").write_text(f"{range_uj}\n")
    return directory


def set_energy(zone: Path, energy_uj: int) -> None:
    (zone / "energy_uj").write_text(f"{energy_uj}\n")


@pytest.fixture
def powercap(tmp_path: Path) -> Path:
    """Two packages with core and DRAM subzones (and top-level links to them, as sysfs has),
    a psys zone and an MMIO zone (both skipped)."""
    root = tmp_path / "powercap"
    root.mkdir()
    for n in (0, 1):
        package = make_zone(root / f"intel-rapl:{n}", f"package-{n}", 1_000_000 * (n + 1), RANGE_UJ)
        make_zone(package / f"intel-rapl:{n}:0", "core", 500, RANGE_UJ)
        make_zone(package / f"intel-rapl:{n}:1", "dram", 2_000_000, DRAM_RANGE_UJ)
        for m in (0, 1):
            (root / f"intel-rapl:{n}:{m}").symlink_to(package / f"intel-rapl:{n}:{m}")
    make_zone(root / "intel-rapl:2", "psys", 7, RANGE_UJ)
    make_zone(root / "intel-rapl-mmio:0", "package-0", 7, RANGE_UJ)
    return root


def test_discovers_packages_and_dram(powercap: Path):
    domains = discover_domains(powercap)
    assert [(d.zone, d.name, d.component, d.device) for d in domains] == [
        ("intel-rapl:0", "package-0", "cpu", "package-0"),
        ("intel-rapl:0:1", "dram", "dram", "package-0/dram"),
        ("intel-rapl:1", "package-1", "cpu", "package-1"),
        ("intel-rapl:1:1", "dram", "dram", "package-1/dram"),
    ]
    assert domains[0].max_energy_range_uj == RANGE_UJ
    assert domains[1].range_j == pytest.approx(DRAM_RANGE_UJ / 1e6)


def test_dram_found_through_top_level_entries_only(tmp_path: Path):
    """Some kernels/containers show the subzones only at the top level."""
    root = tmp_path / "powercap"
    root.mkdir()
    make_zone(root / "intel-rapl:0", "package-0", 1, RANGE_UJ)
    make_zone(root / "intel-rapl:0:0", "dram", 1, DRAM_RANGE_UJ)
    assert [d.component for d in discover_domains(root)] == ["cpu", "dram"]


def test_normal_reading(powercap: Path, clock: FakeClock, validate_component):
    meters = make_rapl_meters(powercap, clock=clock, poll_interval_s=None)
    assert [(m.component, m.method) for m in meters] == [
        ("cpu", "rapl"),
        ("dram", "rapl"),
        ("cpu", "rapl"),
        ("dram", "rapl"),
    ]
    package = meters[0]
    package.begin_window("trial-0")
    set_energy(powercap / "intel-rapl:0", 1_000_000 + 1_234_500_000)  # +1234.5 J
    clock.advance(10.0)
    component = package.end_window("trial-0")
    validate_component(component, "counter_reading")
    assert component == {
        "name": "cpu",
        "method": "rapl",
        "device": "package-0",
        "counter_start_j": 1.0,
        "counter_end_j": 1235.5,
        "counter_range_j": RANGE_UJ / 1e6,
    }
    assert component_energy_j(component, 0, 10) == pytest.approx(1234.5)
    assert package.power_w() == pytest.approx(123.45)


def test_wraparound_uses_max_energy_range(powercap: Path, clock: FakeClock, validate_component):
    zone = powercap / "intel-rapl:0" / "intel-rapl:0:1"
    set_energy(zone, DRAM_RANGE_UJ - 3_000_000)  # 3 J before the wrap
    meter = RaplMeter(discover_domains(powercap)[1], clock=clock, poll_interval_s=None)
    assert meter.component == "dram"
    meter.begin_window("w")
    clock.advance(2.0)
    set_energy(zone, 5_000_000)  # wrapped, then 5 J more
    component = meter.end_window("w")
    validate_component(component, "counter_reading")
    assert component["counter_end_j"] < component["counter_start_j"]
    assert component_energy_j(component, 0, 2) == pytest.approx(8.0)
    # the meter's own power reading handles the wrap too
    clock.advance(2.0)
    set_energy(zone, 9_000_000)
    assert meter.power_w() == pytest.approx(2.0)


def test_power_across_a_wrap(powercap: Path, clock: FakeClock):
    zone = powercap / "intel-rapl:0"
    set_energy(zone, RANGE_UJ - 100_000_000)
    meter = RaplMeter(discover_domains(powercap)[0], clock=clock, poll_interval_s=None)
    clock.advance(1.0)
    set_energy(zone, 50_000_000)
    assert meter.power_w() == pytest.approx(150.0)
    assert energy_delta_uj(RANGE_UJ - 1, 1, RANGE_UJ) == 2


def test_two_wraps_in_a_window_are_refused(powercap: Path, clock: FakeClock):
    zone = powercap / "intel-rapl:0"
    meter = RaplMeter(discover_domains(powercap)[0], clock=clock, poll_interval_s=None)
    meter.begin_window("long")
    set_energy(zone, 10)  # first wrap, seen by the poll
    clock.advance(600)
    meter.poll()
    set_energy(zone, 5)  # second wrap
    clock.advance(600)
    with pytest.raises(MeterError, match="wrapped 2 times"):
        meter.end_window("long")


def test_one_wrap_past_the_start_is_refused(powercap: Path, clock: FakeClock):
    """One wrap but ending above the start: more than a whole range, not representable."""
    zone = powercap / "intel-rapl:0"
    meter = RaplMeter(discover_domains(powercap)[0], clock=clock, poll_interval_s=None)
    meter.begin_window("long")  # starts at 1 J
    set_energy(zone, 10)
    meter.poll()
    set_energy(zone, 2_000_000)
    with pytest.raises(MeterError, match="wrapped 1 times"):
        meter.end_window("long")


def test_poll_thread_runs_and_stops(powercap: Path):
    meter = RaplMeter(discover_domains(powercap)[0], poll_interval_s=0.01)
    meter.begin_window("w")
    set_energy(powercap / "intel-rapl:0", 10)  # a wrap, to be seen by the thread
    time.sleep(0.1)
    set_energy(powercap / "intel-rapl:0", 2_000_000)
    with pytest.raises(MeterError, match="wrapped 1 times"):
        meter.end_window("w")
    meter.close()
    assert meter._thread is not None
    assert not meter._thread.is_alive()


def test_permission_error_explains_the_fix(powercap: Path, monkeypatch: pytest.MonkeyPatch):
    """Tests run as root, so chmod 000 would not stop them: make the reader refuse instead."""
    real = rapl._read_text

    def root_only(path: Path) -> str:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(rapl, "_read_text", root_only)
    assert len(discover_domains(powercap)) == 4  # name and max_energy_range_uj stay readable
    with pytest.raises(RaplPermissionError) as info:
        make_rapl_meters(powercap, poll_interval_s=None)
    message = str(info.value)
    assert isinstance(info.value, RaplUnavailable)
    assert "intel-rapl:0/energy_uj" in message
    assert "CVE-2020-8694" in message
    assert "Linux 5.10" in message
    assert "as root" in message
    assert "sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj" in message
    assert "udev" in message


def test_permission_error_later_is_also_explained(powercap: Path, monkeypatch: pytest.MonkeyPatch):
    meter = RaplMeter(discover_domains(powercap)[0], poll_interval_s=None)

    def denied(path: Path) -> str:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(rapl, "_read_text", denied)
    with pytest.raises(RaplPermissionError, match="chmod"):
        meter.begin_window("w")
    assert meter.power_w() is None


def test_no_domains(tmp_path: Path):
    with pytest.raises(RaplUnavailable, match="does not exist"):
        discover_domains(tmp_path / "missing")
    empty = tmp_path / "powercap"
    empty.mkdir()
    with pytest.raises(RaplUnavailable, match="no RAPL domains"):
        make_rapl_meters(empty)
    make_zone(empty / "intel-rapl:0", "psys", 1, RANGE_UJ)
    with pytest.raises(RaplUnavailable, match="named package-N"):
        discover_domains(empty)


def test_window_bookkeeping(powercap: Path):
    meter = RaplMeter(discover_domains(powercap)[0], poll_interval_s=None)
    meter.begin_window("w")
    with pytest.raises(MeterError, match="already open"):
        meter.begin_window("w")
    with pytest.raises(MeterError, match="never opened"):
        meter.end_window("other")
