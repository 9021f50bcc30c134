"""`carbonlabel advise` (issue 13, item 5 in part): the start hour and zone with the lowest CO2e
for a label's work, checked against a hand computation, the saving against now and here, the
assumptions, --json, and clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bench_runner.advise import AdviseError, advise, work_of
from carbonlabel.cli import app
from schemas.synthetic import make_label

EM_DE = Path(__file__).parent / "data" / "grid" / "electricitymaps-DE-2023-07-04.csv"
T0 = datetime(2023, 7, 4, tzinfo=UTC)


def label(**kwargs: Any) -> dict[str, Any]:
    return make_label(vendor="acme", model="m", registry="https://r.example", **kwargs)


def hours(values: list[float], start: datetime = T0) -> list[tuple[datetime, float, bool]]:
    return [(start + timedelta(hours=i), v, False) for i, v in enumerate(values)]


def units_for(doc: dict[str, Any], duration_s: float) -> float:
    return float(doc["results"]["throughput_units_per_s"]) * duration_s


def test_work_follows_the_label() -> None:
    doc = label(zone="FR", pue=1.2)
    work = work_of(doc, 5_000_000)
    mean_wh = doc["results"]["energy_per_unit_wh"]["mean"]  # per 1,000 inferences
    assert work.energy_kwh == pytest.approx(mean_wh * 5_000 / 1000 * 1.2)
    assert work.duration_s == pytest.approx(5_000_000 / doc["results"]["throughput_units_per_s"])


def test_the_cleanest_hour_and_zone_by_hand() -> None:
    doc = label(zone="FR", pue=1.2)
    units = units_for(doc, 7200.0)  # exactly two hours of work
    work = work_of(doc, units)
    zones = {
        "FR": hours([100, 100, 100, 20, 20, 100]),  # cleanest pair: hours 3-4
        "DE": hours([300, 50, 50, 300, 300, 300]),  # hours 1-2 at 50
    }
    answer = advise(doc, zones, units=units, now=T0, within_h=4)
    half = work.energy_kwh / 2  # each hour holds half the energy
    assert answer.baseline.zone == "FR"
    assert answer.baseline.start == T0
    assert answer.baseline.co2e_g == pytest.approx(half * 100 + half * 100)
    assert (answer.best.zone, answer.best.start) == ("FR", T0 + timedelta(hours=3))
    assert answer.best.co2e_g == pytest.approx(half * 20 * 2)
    assert answer.saving_g == pytest.approx(half * 200 - half * 40)
    by_zone = {o.zone: o for o in answer.per_zone}
    assert by_zone["DE"].start == T0 + timedelta(hours=1)
    assert by_zone["DE"].co2e_g == pytest.approx(half * 50 * 2)
    assert any("PUE 1.2" in line for line in answer.assumptions)


def test_a_part_hour_is_charged_its_share() -> None:
    doc = label(zone="FR")
    units = units_for(doc, 5400.0)  # an hour and a half
    work = work_of(doc, units)
    answer = advise(doc, {"FR": hours([100, 300])}, units=units, now=T0, within_h=0)
    rate = work.energy_kwh / 5400.0
    assert answer.baseline.co2e_g == pytest.approx(rate * 3600 * 100 + rate * 1800 * 300)


def test_missing_hours_and_missing_work_are_errors() -> None:
    doc = label(zone="FR")
    with pytest.raises(AdviseError, match="--units"):
        advise(doc, {"FR": hours([100])}, units=None)
    with pytest.raises(AdviseError, match="does not cover"):
        advise(doc, {"FR": hours([100])}, units=units_for(doc, 7200.0), now=T0)
    with pytest.raises(AdviseError, match="at least one zone"):
        advise(doc, {}, units=1.0)


def test_a_training_label_defaults_to_its_declared_steps() -> None:
    doc = label(phase="training", units_per_trial=20)
    doc["results"]["declared_total_steps"] = 10
    work = work_of(doc, None)
    assert work.units == 10
    assert work.unit_name == "training steps"


def test_the_command_with_an_electricity_maps_export(tmp_path: Path) -> None:
    doc = label(zone="DE")
    path = tmp_path / "label.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    fr = tmp_path / "fr.csv"
    rows = ["timestamp,intensity_g_per_kwh"] + [
        f"{(T0 + timedelta(hours=i)).isoformat()},{40 + i}" for i in range(72)
    ]
    fr.write_text("\n".join(rows) + "\n", encoding="utf-8")
    units = str(units_for(doc, 3 * 3600.0))
    runner = CliRunner()
    args = ["advise", str(path), "--hourly", str(EM_DE), "--hourly", f"FR={fr}", "--units", units]
    done = runner.invoke(app, [*args, "--json"])
    assert done.exit_code == 0, done.output
    answer = json.loads(done.output)
    assert answer["baseline"]["zone"] == "DE"  # the label's zone, at the data's first hour
    assert answer["baseline"]["start"] == "2023-07-04T00:00:00Z"
    assert answer["best"] == {
        "zone": "FR",
        "start": "2023-07-04T00:00:00Z",
        "co2e_g": pytest.approx(answer["work"]["energy_kwh"] / 3 * (40 + 41 + 42)),
        "estimated_hours": 0,
    }
    assert 0 < answer["saving_share"] < 1
    assert answer["assumptions"]
    text = runner.invoke(app, args)
    assert text.exit_code == 0, text.output
    assert text.output.startswith("best: start 2023-07-04 00:00 UTC in FR")
    assert "assumptions:" in text.output
    # a plain CSV must name its zone
    bad = runner.invoke(app, ["advise", str(path), "--hourly", str(fr), "--units", units])
    assert bad.exit_code != 0
    assert "name its zone as ZONE=" in str(bad.exception)
