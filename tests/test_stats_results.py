"""Statistics against hand computations and tables; results recomputation from traces."""

from __future__ import annotations

import copy
import math

import pytest

from schemas.results import check_results, component_energy_j, compute_results
from schemas.stats import summarize, t_quantile
from schemas.synthetic import make_label


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (29, 2.0452), (1000, 1.9623)],
)
def test_t_quantile_matches_tables(df: int, expected: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)


def test_summary_by_hand() -> None:
    values = [10.0, 12.0, 11.0, 13.0, 9.0]
    s = summarize(values)
    assert s.mean == 11.0
    assert s.median == 11.0
    assert s.std == pytest.approx(math.sqrt(2.5))  # sum of squares 10 over n-1 = 4
    half = 2.7764451 * math.sqrt(2.5) / math.sqrt(5)
    assert s.ci95_low == pytest.approx(11.0 - half, rel=1e-6)
    assert s.ci95_high == pytest.approx(11.0 + half, rel=1e-6)
    assert s.cv == pytest.approx(math.sqrt(2.5) / 11.0)
    with pytest.raises(ValueError, match="two trials"):
        summarize([1.0])


def test_counter_wraparound_and_trapezoid() -> None:
    wrapped = {"counter_start_j": 990.0, "counter_end_j": 10.0, "counter_range_j": 1000.0}
    assert component_energy_j(wrapped, 0, 1) == 20.0
    with pytest.raises(ValueError, match="backwards"):
        component_energy_j({"counter_start_j": 5.0, "counter_end_j": 1.0}, 0, 1)
    samples = {"samples": [[0.0, 100.0], [1.0, 200.0], [3.0, 200.0]]}
    assert component_energy_j(samples, 0, 3) == 150.0 + 400.0


def test_inference_results_by_hand() -> None:
    label = make_label(vendor="acme", model="m", registry="http://x", trials=2)
    trials = label["traces"]["trials"]
    energies_j = [
        t["components"][0]["counter_end_j"] - t["components"][0]["counter_start_j"] for t in trials
    ]
    per_1k_wh = [e / 3600 / t["units"] * 1000 for e, t in zip(energies_j, trials, strict=True)]
    results = compute_results(label)
    assert results["/results/energy_per_unit_wh"]["mean"] == pytest.approx(sum(per_1k_wh) / 2)
    co2e = results["/carbon/co2e_per_unit_g"]["mean"]
    assert co2e == pytest.approx(sum(per_1k_wh) / 2 / 1000 * 1.2 * 56.0)
    assert check_results(label) == []


def test_training_extrapolation_is_recomputed() -> None:
    label = make_label(vendor="acme", model="m", registry="http://x", phase="training")
    assert check_results(label) == []
    bad = copy.deepcopy(label)
    bad["results"]["extrapolated_total_kwh"] *= 2
    assert [m.pointer for m in check_results(bad)] == ["/results/extrapolated_total_kwh"]


def test_broken_trace_is_reported_not_raised() -> None:
    label = make_label(vendor="acme", model="m", registry="http://x")
    label["traces"]["trials"][0]["t_end_s"] = label["traces"]["trials"][0]["t_start_s"]
    mismatches = check_results(label)
    assert mismatches
    assert mismatches[0].pointer.startswith("/traces")
