"""bench_runner.carbon: bundled grid table, overrides, PUE, CO2e and hourly matching.

Expected numbers are worked out by hand in the comments.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path

import pytest

from bench_runner import carbon
from bench_runner.carbon import CarbonError, GridIntensity

DATA = resources.files("schemas").joinpath("data")
ZONE_RE = carbon.ZONE_PATTERN
T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


def _rows() -> list[dict[str, str]]:
    text = DATA.joinpath("grid_intensity.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def _meta() -> dict[str, object]:
    return json.loads(DATA.joinpath("grid_intensity.meta.json").read_text(encoding="utf-8"))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hourly.csv"
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------- bundled table and lookup


def test_lookup_country() -> None:
    got = carbon.lookup("FR")
    row = next(r for r in _rows() if r["zone"] == "FR")
    meta = _meta()
    assert got == GridIntensity(
        zone="FR",
        intensity_g_per_kwh=float(row["intensity_g_per_kwh"]),
        dataset_name=str(meta["name"]),
        dataset_version=str(meta["version"]),
        year=int(row["year"]),
    )
    assert 50 <= got.intensity_g_per_kwh <= 90
    assert got.to_label() == {
        "zone": "FR",
        "intensity_g_per_kwh": got.intensity_g_per_kwh,
        "dataset": {"name": meta["name"], "version": meta["version"], "year": got.year},
    }


@pytest.mark.parametrize(
    ("zone", "country", "normalised"),
    [
        ("US-CAL", "US", "US-CAL"),
        ("DE-eu-central-1", "DE", "DE-eu-central-1"),
        ("fr", "FR", "FR"),
        (" se ", "SE", "SE"),
    ],
)
def test_lookup_region_uses_country_average(zone: str, country: str, normalised: str) -> None:
    got = carbon.lookup(zone)
    assert got.zone == normalised
    assert got.intensity_g_per_kwh == carbon.lookup(country).intensity_g_per_kwh
    assert got.year == carbon.lookup(country).year


def test_lookup_plausible_values() -> None:
    value = {z: carbon.lookup(z).intensity_g_per_kwh for z in ("FR", "SE", "PL", "IN", "DE", "US")}
    assert 50 <= value["FR"] <= 90
    assert value["SE"] < 60
    assert value["PL"] > 600
    assert value["IN"] > 600
    assert 300 <= value["DE"] <= 450
    assert 350 <= value["US"] <= 450


def test_lookup_unknown_zone() -> None:
    with pytest.raises(CarbonError, match=r"no grid intensity for zone 'ZZ'") as info:
        carbon.lookup("ZZ")
    assert isinstance(info.value, ValueError)
    # the command-line options that fix it, not a Python call
    message = str(info.value)
    assert "--zone (" in message
    assert "--intensity G_PER_KWH" in message
    assert "--hourly FILE" in message
    assert "override(" not in message
    # Central African Republic is in the source with 0 g/kWh (a gap) and left out of the table.
    with pytest.raises(CarbonError, match="CF"):
        carbon.lookup("CF-x")


@pytest.mark.parametrize(
    "zone", ["", "F", "FRA", "F1", "FR-", "FR-bad zone", "FR-" + "a" * 49, "ÉE"]
)
def test_lookup_malformed_zone(zone: str) -> None:
    with pytest.raises(CarbonError, match="ISO 3166-1 alpha-2"):
        carbon.lookup(zone)


def test_table_and_meta_consistent() -> None:
    rows = _rows()
    meta = _meta()
    assert list(rows[0]) == ["zone", "country", "intensity_g_per_kwh", "year"]
    assert len(rows) >= 150
    zones = [r["zone"] for r in rows]
    assert zones == sorted(set(zones)), "zones unique and sorted"
    for row in rows:
        assert ZONE_RE.fullmatch(row["zone"]), row
        assert len(row["zone"]) == 2, row
        assert row["country"], row
        assert 0 < float(row["intensity_g_per_kwh"]) <= carbon.MAX_INTENSITY_G_PER_KWH, row
        assert 1990 <= int(row["year"]) <= 2100, row
    years = {int(r["year"]) for r in rows}
    assert meta["year"] == max(years)
    if len(years) == 1:
        assert meta["year"] == years.pop()
    assert meta["years"] == {
        str(y): sum(1 for r in rows if int(r["year"]) == y)
        for y in sorted({int(r["year"]) for r in rows})
    }
    assert meta["countries"] == len(rows)
    assert meta["licence"] == "CC BY 4.0"
    assert "Ember" in str(meta["attribution"])
    assert "Our World in Data" in str(meta["attribution"])
    assert 1 <= len(str(meta["name"])) <= 128
    assert 1 <= len(str(meta["version"])) <= 64
    text = DATA.joinpath("grid_intensity.csv").read_bytes()
    assert meta["table_sha256"] == hashlib.sha256(text).hexdigest(), "regenerate both files"
    assert carbon.zones() == zones
    info = carbon.dataset_info()
    assert (info.name, info.version, info.year) == (meta["name"], meta["version"], meta["year"])


# ----------------------------------------------------------------- override and PUE


def test_override() -> None:
    got = carbon.override("fr-paris", 42.5, source="utility contract 2024")
    assert got == GridIntensity(
        zone="FR-paris",
        intensity_g_per_kwh=42.5,
        dataset_name="user-supplied",
        dataset_version="utility contract 2024",
        year=datetime.now(UTC).year,
    )
    assert carbon.override("SE", 0, source="x").intensity_g_per_kwh == 0.0
    assert carbon.override("SE", 5000, source="x").intensity_g_per_kwh == 5000.0


@pytest.mark.parametrize("value", [-0.1, 5000.01, math.nan, math.inf, True, "100"])
def test_override_rejects_intensity(value: object) -> None:
    with pytest.raises(CarbonError, match="intensity"):
        carbon.override("FR", value, source="x")  # type: ignore[arg-type]


@pytest.mark.parametrize("zone", ["FRA", "F", "FR-", "FR-a b", "12"])
def test_override_rejects_zone(zone: str) -> None:
    with pytest.raises(CarbonError, match="zone"):
        carbon.override(zone, 100, source="x")


@pytest.mark.parametrize("source", ["", "   ", "x" * 65])
def test_override_rejects_source(source: str) -> None:
    with pytest.raises(CarbonError, match="source"):
        carbon.override("FR", 100, source=source)


def test_pue_default_and_range() -> None:
    assert carbon.DEFAULT_PUE == 1.56
    assert carbon.validate_pue(1) == 1.0
    assert carbon.validate_pue(5) == 5.0
    for bad in (0.99, 5.01, math.nan, True):
        with pytest.raises(CarbonError, match="PUE"):
            carbon.validate_pue(bad)


# ----------------------------------------------------------------- CO2e


def test_co2e_by_hand() -> None:
    # 2.5 Wh per 1,000 inferences, 400 g/kWh, PUE 1.5: 2.5 / 1000 * 1.5 * 400 = 1.5 g
    assert carbon.co2e_g(2.5, 400.0, 1.5) == pytest.approx(1.5, rel=1e-12)
    # With the default PUE: 1000 Wh = 1 kWh; 1 * 1.56 * 100 = 156 g
    assert carbon.co2e_g(1000, 100, carbon.DEFAULT_PUE) == pytest.approx(156.0, rel=1e-12)
    intensity = carbon.override("PL", 700, source="test")
    # 0.2 Wh per step * 1.2 * 700 / 1000 = 0.168 g
    assert carbon.co2e_g(0.2, intensity, 1.2) == pytest.approx(0.168, rel=1e-12)
    # A training run: 0.2 Wh per step * 10,000 steps = 2 kWh; 2 * 1.2 * 700 = 1680 g
    assert carbon.co2e_per_run_g(0.2, 10_000, intensity, 1.2) == pytest.approx(1680.0, rel=1e-12)
    assert carbon.co2e_g(0.0, 400, 1.0) == 0.0


def test_co2e_validates() -> None:
    with pytest.raises(CarbonError, match="PUE"):
        carbon.co2e_g(1, 100, 0.5)
    with pytest.raises(CarbonError, match="intensity"):
        carbon.co2e_g(1, -1, 1.2)
    with pytest.raises(CarbonError, match="energy_wh"):
        carbon.co2e_g(math.nan, 100, 1.2)
    with pytest.raises(CarbonError, match="total_steps"):
        carbon.co2e_per_run_g(1, 0, 100, 1.2)


# ----------------------------------------------------------------- hourly


HOURLY = (
    "timestamp,intensity_g_per_kwh\n"
    "2025-03-01T11:00:00Z,300\n"  # out of order on purpose
    "2025-03-01T10:00:00+00:00,100\n"
    "2025-03-01T13:00:00+01:00,200\n"  # = 12:00 UTC
)


def test_load_hourly_csv(tmp_path: Path) -> None:
    rows = carbon.load_hourly_csv(_write(tmp_path, HOURLY))
    assert rows == [
        (T0, 100.0),
        (T0 + timedelta(hours=1), 300.0),
        (T0 + timedelta(hours=2), 200.0),
    ]
    assert all(t.tzinfo is UTC for t, _ in rows)


def test_hourly_across_hour_boundary(tmp_path: Path) -> None:
    hourly = carbon.load_hourly_csv(_write(tmp_path, HOURLY))
    # 10 Wh from 10:30 to 11:30: 5 Wh at 100 g/kWh + 5 Wh at 300 g/kWh
    # = 5 * 0.1 + 5 * 0.3 = 2.0 g, times PUE 1.5 = 3.0 g
    interval = (T0 + timedelta(minutes=30), T0 + timedelta(minutes=90), 10.0)
    assert carbon.hourly_matched_co2e_g([interval], hourly, 1.5) == pytest.approx(3.0, rel=1e-12)
    # 12 Wh from 10:45 to 12:15 (90 min, 8 Wh an hour): 2 Wh at 100, 8 at 300, 2 at 200
    # = 0.2 + 2.4 + 0.4 = 3.0 g at PUE 1; a second interval of 1 Wh inside 10:00-11:00 adds 0.1 g
    intervals = [
        (T0 + timedelta(minutes=45), T0 + timedelta(minutes=135), 12.0),
        (T0 + timedelta(minutes=5), T0 + timedelta(minutes=10), 1.0),
    ]
    assert carbon.hourly_matched_co2e_g(intervals, hourly, 1.0) == pytest.approx(3.1, rel=1e-12)
    # Intervals given in another offset are converted: 11:30+01:00 is 10:30Z, still at 100 g/kWh.
    plus_one = timezone(timedelta(hours=1))
    local = (
        datetime(2025, 3, 1, 11, 10, tzinfo=plus_one),
        datetime(2025, 3, 1, 11, 20, tzinfo=plus_one),
        4.0,
    )
    assert carbon.hourly_matched_co2e_g([local], hourly, 1.0) == pytest.approx(0.4, rel=1e-12)
    # Ending exactly at the end of coverage (13:00Z) is fine; a zero-length interval uses its hour.
    edge = [(T0 + timedelta(hours=2), T0 + timedelta(hours=3), 1.0), (T0, T0, 1.0)]
    assert carbon.hourly_matched_co2e_g(edge, hourly, 1.0) == pytest.approx(0.3, rel=1e-12)


def test_hourly_coverage_error(tmp_path: Path) -> None:
    hourly = carbon.load_hourly_csv(_write(tmp_path, HOURLY))
    late = (T0 + timedelta(hours=2, minutes=30), T0 + timedelta(hours=3, minutes=30), 1.0)
    with pytest.raises(CarbonError, match=r"no hourly intensity covers 2025-03-01T13:00:00Z"):
        carbon.hourly_matched_co2e_g([late], hourly, 1.0)
    early = (T0 - timedelta(minutes=1), T0 + timedelta(minutes=1), 1.0)
    with pytest.raises(CarbonError, match=r"covers 2025-03-01T09:59:00Z"):
        carbon.hourly_matched_co2e_g([early], hourly, 1.0)
    gappy = [(T0, 100.0), (T0 + timedelta(hours=2), 100.0)]
    across = (T0 + timedelta(minutes=30), T0 + timedelta(minutes=150), 1.0)
    with pytest.raises(CarbonError, match=r"covers 2025-03-01T11:00:00Z.*with gaps"):
        carbon.hourly_matched_co2e_g([across], gappy, 1.0)


def test_hourly_rejects_bad_intervals(tmp_path: Path) -> None:
    hourly = carbon.load_hourly_csv(_write(tmp_path, HOURLY))
    naive = (datetime(2025, 3, 1, 10, 30), datetime(2025, 3, 1, 10, 40), 1.0)
    with pytest.raises(CarbonError, match="no timezone"):
        carbon.hourly_matched_co2e_g([naive], hourly, 1.0)
    backwards = (T0 + timedelta(minutes=40), T0 + timedelta(minutes=30), 1.0)
    with pytest.raises(CarbonError, match="before it starts"):
        carbon.hourly_matched_co2e_g([backwards], hourly, 1.0)
    negative = (T0, T0 + timedelta(minutes=30), -1.0)
    with pytest.raises(CarbonError, match="energy_wh"):
        carbon.hourly_matched_co2e_g([negative], hourly, 1.0)
    with pytest.raises(CarbonError, match="PUE"):
        carbon.hourly_matched_co2e_g([], hourly, 0.9)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("timestamp,intensity_g_per_kwh\n2025-03-01T10:00:00,100\n", "no timezone"),
        ("timestamp,intensity_g_per_kwh\n2025-03-01 10:00:00,100\n", "no timezone"),
        ("timestamp,intensity_g_per_kwh\nyesterday,100\n", "not an RFC 3339"),
        ("time,g\n2025-03-01T10:00:00Z,100\n", "first line"),
        ("", "first line"),
        ("timestamp,intensity_g_per_kwh\n", "no rows"),
        ("timestamp,intensity_g_per_kwh\n2025-03-01T10:00:00Z,abc\n", "line 2.*not a number"),
        ("timestamp,intensity_g_per_kwh\n2025-03-01T10:00:00Z,-1\n", "between 0 and 5000"),
        ("timestamp,intensity_g_per_kwh\n2025-03-01T10:00:00Z,5001\n", "between 0 and 5000"),
        ("timestamp,intensity_g_per_kwh\n2025-03-01T10:00:00Z,nan\n", "between 0 and 5000"),
        ("timestamp,intensity_g_per_kwh\n2025-03-01T10:00:00Z,1,2\n", "2 columns"),
        (
            "timestamp,intensity_g_per_kwh\n2025-03-01T10:00:00Z,1\n2025-03-01T11:00:00+01:00,2\n",
            "appears twice",
        ),
        (
            "timestamp,intensity_g_per_kwh\n2025-03-01T10:00:00Z,1\n2025-03-01T10:30:00Z,2\n",
            "overlaps",
        ),
    ],
)
def test_load_hourly_csv_errors(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(CarbonError, match=match):
        carbon.load_hourly_csv(_write(tmp_path, text))


def test_load_hourly_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CarbonError, match="cannot read"):
        carbon.load_hourly_csv(tmp_path / "absent.csv")


def test_hourly_for_label(tmp_path: Path) -> None:
    hourly = carbon.load_hourly_csv(_write(tmp_path, HOURLY))
    got = carbon.hourly_for_label(hourly, T0 + timedelta(minutes=30), T0 + timedelta(hours=1))
    assert got == [{"timestamp": "2025-03-01T10:00:00Z", "intensity_g_per_kwh": 100.0}]
    got = carbon.hourly_for_label(hourly, T0 + timedelta(minutes=30), T0 + timedelta(minutes=61))
    assert [r["timestamp"] for r in got] == ["2025-03-01T10:00:00Z", "2025-03-01T11:00:00Z"]


def test_no_work_at_import() -> None:
    # Importing the module reads no data: the cached loaders stay empty until first use.
    code = (
        "import bench_runner.carbon as c; from schemas import grid; "
        "assert grid.table.cache_info().currsize == 0; "
        "assert grid.dataset_info.cache_info().currsize == 0; "
        "c.lookup('FR'); assert grid.table.cache_info().currsize == 1"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
