"""Issue 10 in the contract: chat-serving levels recomputed from per-request traces, the headline
rule, the error-rate limit, multi-node windows, counter resets and the meter bias bound."""

from __future__ import annotations

import copy
import statistics
from typing import Any

import pytest

from schemas.contract import semantic_issues, validate_label
from schemas.dsse import build_statement
from schemas.results import check_results, compute_results, fill_results
from schemas.suites import headline_concurrency, meter_bias
from schemas.synthetic import make_label


def serving_label(**kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "vendor": "acme",
        "model": "m",
        "registry": "http://x",
        "suite": "2",
        "task": "chat-serving",
        "units_per_trial": 30,
        "trials": 4,
    }
    return make_label(**(args | kwargs))


def pointers(label: dict[str, Any]) -> list[str]:
    return [m.pointer for m in check_results(label)]


def test_levels_are_recomputed_from_the_requests() -> None:
    label = serving_label()
    assert check_results(label) == []
    assert validate_label(label) == []
    assert semantic_issues(build_statement(label)) == []
    serving = label["results"]["serving"]
    assert serving["headline_concurrency"] == 8
    assert [lv["concurrency"] for lv in serving["levels"]] == [1, 8]
    for level in serving["levels"]:
        trials = [t for t in label["traces"]["trials"] if t["concurrency"] == level["concurrency"]]
        requests = [r for t in trials for r in t["requests"]]
        assert level["requests"] == len(requests) == sum(t["units"] for t in trials)
        ttft = sorted(r[0] for r in requests)
        itl = [(e2e - first) / (n - 1) for first, e2e, n in requests if n > 1]
        cuts = statistics.quantiles(ttft, n=100, method="inclusive")
        assert level["ttft_s"] == {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98]}
        assert level["itl_s"]["p50"] == pytest.approx(statistics.median(itl))
        energy_j = [t["components"][0]["counter_end_j"] - t["components"][0]["counter_start_j"]
                    for t in trials]  # fmt: skip
        per_token = [e / t["output_tokens"] for e, t in zip(energy_j, trials, strict=True)]
        assert level["energy_per_output_token_j"]["mean"] == pytest.approx(
            statistics.fmean(per_token)
        )
    # the headline figures are the headline level's, not a mix of levels
    headline = serving["levels"][1]
    assert label["results"]["energy_per_unit_wh"] == pytest.approx(headline["energy_per_unit_wh"])
    assert label["results"]["energy_per_output_token_j"] == pytest.approx(
        headline["energy_per_output_token_j"]
    )
    assert label["results"]["energy_per_unit_wh"]["n_trials"] == 2


def test_a_changed_request_is_inconsistent() -> None:
    label = serving_label()
    label["traces"]["trials"][0]["requests"][0][0] += 5.0  # a slower first token
    assert any(p.startswith("/results/serving/levels/0/ttft_s") for p in pointers(label))
    label = serving_label()
    label["traces"]["trials"][1]["output_tokens"] += 3
    assert "/results/serving/levels/1/energy_per_output_token_j/mean" in pointers(label)
    assert "/results/energy_per_output_token_j/mean" in pointers(label)  # level 8 is the headline


def test_a_dropped_level_is_inconsistent() -> None:
    label = serving_label()
    del label["results"]["serving"]["levels"][0]
    assert "/results/serving/levels" in pointers(label)


def test_errors_over_the_limit_make_the_label_inconsistent() -> None:
    label = serving_label()
    trial = label["traces"]["trials"][0]
    trial["errors"] = 1  # 1 of 31 requests: 3.2 %, under 5 %
    fill_results(label)
    assert check_results(label) == []
    assert label["results"]["serving"]["levels"][0]["errors"] == 1
    trial["errors"] = 2  # 2 of 32: 6.25 %
    fill_results(label)
    assert pointers(label) == ["/traces/trials/0/errors"]


@pytest.mark.parametrize(
    ("levels", "headline"),
    [([1, 8, 32], 8), ([1, 32], 1), ([4, 12], 4), ([16, 64], 16), ([64], 64)],
)
def test_headline_rule(levels: list[int], headline: int) -> None:
    assert headline_concurrency(levels) == headline


def test_the_headline_must_follow_the_rule() -> None:
    label = serving_label()
    label["benchmark"]["workload"]["serving"]["headline_concurrency"] = 1
    fill_results(label)
    issues = [i.pointer for i in semantic_issues(build_statement(label))]
    assert issues == ["/predicate/benchmark/workload/serving/headline_concurrency"]


def two_node_label() -> dict[str, Any]:
    label = make_label(vendor="acme", model="m", registry="http://x")
    label["hardware"]["nodes"] = [
        {
            "name": f"node-{rank}",
            "node_rank": rank,
            "accelerator": dict(label["hardware"]["accelerator"]),
            "cpu": dict(label["hardware"]["cpu"]),
        }
        for rank in (0, 1)
    ]
    for window in [label["traces"]["idle"], *label["traces"]["trials"]]:
        first = window["components"][0]
        first["node"] = "node-0"
        second = copy.deepcopy(first)
        second["node"] = "node-1"
        second["counter_end_j"] = second["counter_start_j"] + 3 * (
            first["counter_end_j"] - first["counter_start_j"]
        )
        window["components"].append(second)
    return fill_results(label)


def test_nodes_are_summed_and_none_may_be_missing() -> None:
    label = two_node_label()
    assert check_results(label) == []
    assert validate_label(label) == []
    one_node = make_label(vendor="acme", model="m", registry="http://x")
    # node-1 draws three times node-0's energy: the sum is four times one node's
    assert compute_results(label)["/results/energy_per_unit_wh"]["mean"] == pytest.approx(
        4 * compute_results(one_node)["/results/energy_per_unit_wh"]["mean"]
    )
    del label["traces"]["trials"][1]["components"][1]
    assert pointers(label)[-1] == "/traces/trials/1/components: no trace of node 'node-1'"


def test_a_counter_reset_uses_the_polled_energy() -> None:
    label = make_label(vendor="acme", model="m", registry="http://x")
    component = label["traces"]["trials"][0]["components"][0]
    energy_j = component["counter_end_j"] - component["counter_start_j"]
    component.update(counter_end_j=10.0, resets=1, polls=5, energy_j=energy_j)
    assert check_results(label) == []  # the same energy, from the polls
    component["energy_j"] = energy_j * 2
    assert "/results/energy_per_unit_wh/mean" in pointers(label)


def test_the_stated_bias_must_be_the_methodologys() -> None:
    label = make_label(vendor="acme", model="m", registry="http://x")
    label["measurement"]["bias"] = meter_bias(label["hardware"]["hardware_class"])
    assert semantic_issues(build_statement(label)) == []
    assert validate_label(label) == []
    label["measurement"]["bias"] = {"relative": 0.01, "validated": True, "source": "trust me"}
    assert [i.pointer for i in semantic_issues(build_statement(label))] == [
        "/predicate/measurement/bias"
    ]


def test_the_settling_tail_is_taken_out_at_idle_power() -> None:
    # The end edge is read settle_s after the last step: the tail's energy at each component's
    # idle power comes back out, and throughput counts the working time only.
    label = make_label(vendor="acme", model="m", registry="http://x")
    idle = label["traces"]["idle"]
    idle_w = (idle["components"][0]["counter_end_j"] - idle["components"][0]["counter_start_j"]) / (
        idle["t_end_s"] - idle["t_start_s"]
    )
    settled = copy.deepcopy(label)
    settled["measurement"]["settle_s"] = 1.0
    for trial in settled["traces"]["trials"]:
        trial["t_end_s"] += 1.0
        trial["components"][0]["counter_end_j"] += idle_w * 1.0
    fill_results(settled)
    assert check_results(settled) == []
    for key in ("energy_per_unit_wh", "throughput_units_per_s", "dynamic_energy_per_unit_wh"):
        assert settled["results"][key] == pytest.approx(label["results"][key], rel=1e-9)
    settled["measurement"]["settle_s"] = 0.0  # the same traces read without settling: more energy
    assert "/results/energy_per_unit_wh/mean" in pointers(settled)
