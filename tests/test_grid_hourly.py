"""Hourly grid data from the exports people have (issue 13, item 3 in part; item 5's input):
Electricity Maps' hourly exports of both header generations and entsoe-py's generation CSV, each
read from a sample (tests/data/grid/README.md), and `bench --hourly` accepting an Electricity Maps
export."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench_runner import grid_hourly
from bench_runner.carbon import CarbonError, load_hourly_csv

DATA = Path(__file__).parent / "data" / "grid"
EM_2023 = DATA / "electricitymaps-DE-2023-07-04.csv"
EM_2024 = DATA / "electricitymaps-PT-2024-01-01.csv"
ENTSOE = DATA / "entsoe-py-generation.csv"


def test_electricity_maps_2023_release() -> None:
    series = grid_hourly.read_hourly_grid(EM_2023)
    assert series.zone == "DE"
    assert series.source == "Electricity Maps"
    assert len(series.hours) == 72
    first = series.hours[0]
    # 2023-07-04 00:00:00,Germany,Germany,DE,194.97,245.4,79.67,76.57,entsoe.eu,false,
    assert first.hour == datetime(2023, 7, 4, 0, tzinfo=UTC)
    assert first.intensity_g_per_kwh == 245.4  # life cycle, not direct (194.97)
    assert first.cfe_share == pytest.approx(0.7967)
    assert not first.estimated
    assert sum(h.estimated for h in series.hours) == 3
    assert series.hours[-1].hour == datetime(2023, 7, 6, 23, tzinfo=UTC)


def test_electricity_maps_2024_release() -> None:
    series = grid_hourly.read_hourly_grid(EM_2024)
    assert series.zone == "PT"
    assert len(series.hours) == 48
    # 2024-01-01 00:00:00,Portugal,Portugal,PT,92.93,118.8,86.43,70.06,entsoe.eu,false,
    assert series.hours[0].intensity_g_per_kwh == 118.8
    assert series.hours[0].cfe_share == pytest.approx(0.8643)
    assert sum(h.estimated for h in series.hours) == 4


def test_entsoe_generation_gives_the_carbon_free_share() -> None:
    series = grid_hourly.read_hourly_grid(ENTSOE, "DE")
    assert series.zone == "DE"
    first = series.hours[0]
    # 2023-03-26 00:00:00+01:00 = 2023-03-25 23:00 UTC: biomass 4200 and gas 9000 are not
    # carbon-free; pumped storage 300, nuclear 2900, solar 0, wind 3000 + 15000 are; the 800 MW
    # of pumping (Actual Consumption) is not generation
    assert first.hour == datetime(2023, 3, 25, 23, tzinfo=UTC)
    assert first.intensity_g_per_kwh is None
    free = 300 + 2900 + 0 + 3000 + 15000
    assert first.cfe_share == pytest.approx(free / (4200 + 9000 + free))
    assert len(series.hours) == 24
    # across the clock change the UTC hours stay consecutive
    steps = {(b.hour - a.hour).total_seconds() for a, b in itertools.pairwise(series.hours)}
    assert steps == {3600.0}
    with pytest.raises(grid_hourly.GridDataError, match="does not name its zone"):
        grid_hourly.read_hourly_grid(ENTSOE)


def test_bench_hourly_takes_an_electricity_maps_export() -> None:
    rows = load_hourly_csv(EM_2023)
    assert rows[0] == (datetime(2023, 7, 4, 0, tzinfo=UTC), 245.4)
    assert len(rows) == 72


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b\n1,2\n", "neither an Electricity Maps"),
        (EM_2023.read_text().splitlines()[0] + "\n", "no rows after the header"),
        (
            EM_2023.read_text().splitlines()[0]
            + "\n2023-07-04 00:00:00,Germany,Germany,DE,1,x,1,1,s,false,\n",
            "intensity 'x' is not a number",
        ),
        (
            "\n".join(EM_2023.read_text().splitlines()[:2] + EM_2023.read_text().splitlines()[1:2])
            + "\n",
            "appears twice",
        ),
    ],
)
def test_bad_files_are_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "grid.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(grid_hourly.GridDataError, match=message):
        grid_hourly.read_hourly_grid(path, "DE")


def test_a_bad_export_given_to_bench_is_a_carbon_error(tmp_path: Path) -> None:
    path = tmp_path / "grid.csv"
    path.write_text(EM_2023.read_text().splitlines()[0] + "\n", encoding="utf-8")
    with pytest.raises(CarbonError, match="no rows"):
        load_hourly_csv(path)
