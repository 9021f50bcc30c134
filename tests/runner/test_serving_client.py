"""The serving client against a small fake OpenAI-compatible server (fault cases: 5xx, cut-off
streams, missing usage, error events, slow tokens), the probe of what a server serves, and the
pieces of a serving label (levels, engine, headline, percentile and ITL math)."""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from bench_runner.serving import client as serving_client
from bench_runner.serving import label as serving_label
from bench_runner.serving.client import ErrorKind, RequestResult, ServerInfo, ServingError
from bench_runner.serving.load import LoadGenerator
from bench_runner.serving.protocol import error_rate, window_of
from schemas.results import serving_results
from tests.fake_openai import Reply, fake_openai_server


def send(base: str, body: dict[str, Any] | None = None, timeout_s: float = 10.0) -> RequestResult:
    async def one() -> RequestResult:
        async with httpx.AsyncClient() as client:
            return await serving_client.send_chat(
                client,
                base + serving_client.CHAT_PATH,
                body or serving_client.chat_body("fake/model", "2+2?", 16),
                3,
                timeout_s=timeout_s,
            )

    return serving_client.run_blocking(one())


def test_a_complete_stream_is_timed_and_counted() -> None:
    with fake_openai_server(lambda _n: Reply(tokens=5)) as server:
        result = send(server.base)
    assert result.ok, result.describe()
    assert result.prompt_index == 3
    assert (result.input_tokens, result.output_tokens) == (10, 5)
    assert result.text == "t0 t1 t2 t3 t4 "
    assert 0 <= result.ttft_s <= result.e2e_s
    sent = server.received[0]
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["temperature"] == 0
    assert sent["max_tokens"] == 16
    assert sent["messages"] == [{"role": "user", "content": "2+2?"}]


def test_slow_tokens_give_the_right_ttft_and_itl() -> None:
    reply = Reply(tokens=6, first_token_delay_s=0.3, token_interval_s=0.05)
    with fake_openai_server(lambda _n: reply) as server:
        result = send(server.base)
    assert result.ok
    assert result.ttft_s == pytest.approx(0.3, abs=0.08)
    itl_s = (result.e2e_s - result.ttft_s) / (result.output_tokens - 1)
    assert itl_s == pytest.approx(0.05, abs=0.02)
    assert result.e2e_s == pytest.approx(0.3 + 5 * 0.05, abs=0.1)


@pytest.mark.parametrize(
    ("mode", "kind", "detail"),
    [
        ("http-500", ErrorKind.HTTP_STATUS, "HTTP 500"),
        ("http-429", ErrorKind.HTTP_STATUS, "HTTP 429"),
        ("cut-clean", ErrorKind.CUT_OFF, "without a finish_reason"),
        ("cut-drop", ErrorKind.CUT_OFF, ""),
        ("no-usage", ErrorKind.NO_USAGE, "usage.completion_tokens"),
        ("error-event", ErrorKind.SERVER_ERROR, "engine overloaded"),
    ],
)
def test_faults_are_typed_errors(mode: str, kind: ErrorKind, detail: str) -> None:
    with fake_openai_server(lambda _n: Reply(mode=mode, tokens=5)) as server:
        result = send(server.base)
    assert not result.ok
    assert result.error == kind
    assert detail in result.detail
    assert result.output_tokens == 0
    assert result.describe().startswith(kind.value)


def test_a_request_past_its_timeout_is_an_error() -> None:
    with fake_openai_server(lambda _n: Reply(first_token_delay_s=2.0)) as server:
        result = send(server.base, timeout_s=0.3)
    assert result.error == ErrorKind.TIMEOUT
    assert result.e2e_s < 1.5


def test_no_server_is_a_connect_error() -> None:
    with fake_openai_server() as server:
        base = server.base
    result = send(base)
    assert result.error == ErrorKind.CONNECT


def test_the_load_generator_keeps_concurrency_and_cycles_the_prompts() -> None:
    reply = Reply(tokens=3, token_interval_s=0.05)
    prompts = ["a", "b", "c"]
    with (
        fake_openai_server(lambda _n: reply) as server,
        LoadGenerator(server.base, "fake/model", prompts, 8) as load,
    ):
        load.start(4)
        while len(load.results) < 20:
            load.check()
            time.sleep(0.01)
        load.stop()
        assert not load.running
        sent = [body["messages"][0]["content"] for body in server.received]
    assert len(load.results) == load.sent == len(sent)
    assert all(r.ok for r in load.results)
    # the n-th request sent carries prompt n mod 3 (arrival order at the server may differ)
    in_order = [r.prompt_index for r in sorted(load.results, key=lambda r: r.start_s)]
    assert sorted(in_order) == sorted(i % 3 for i in range(len(in_order)))
    assert Counter(sent) == Counter(prompts[i] for i in in_order)
    # closed loop at 4: never more than 4 requests overlap, and 4 do
    events = sorted(
        [(r.start_s, 1) for r in load.results] + [(r.end_s, -1) for r in load.results],
        key=lambda e: (e[0], e[1]),
    )
    running = peak = 0
    for _t, step in events:
        running += step
        peak = max(peak, running)
    assert peak == 4


# -- what the server serves --------------------------------------------------------------------


def test_probe_lists_models_and_reads_the_version() -> None:
    with fake_openai_server(models=["a", "b"], owned_by="vllm", version="0.11.0") as server:
        info = serving_client.probe_server(server.base, "b")
        with pytest.raises(ServingError) as absent:
            serving_client.probe_server(server.base, "c")
    assert info == ServerInfo(["a", "b"], "vllm", "0.11.0")
    assert info.engine_name == "vllm"
    assert str(absent.value) == "the server does not serve 'c'; it serves: a, b"


def test_probe_of_nothing_is_one_line() -> None:
    with fake_openai_server() as server:
        base = server.base
    with pytest.raises(ServingError) as caught:
        serving_client.probe_server(base, "fake/model", timeout_s=2)
    assert str(caught.value).startswith(f"cannot reach {base}: ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("endpoint", "base", "host"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000", "127.0.0.1:8000"),
        ("http://localhost:8000/v1/", "http://localhost:8000", "localhost:8000"),
        (
            "https://user:pw@gpu.example/api/v1",
            "https://user:pw@gpu.example/api",
            "gpu.example:443",
        ),
        ("http://[::1]:9000", "http://[::1]:9000", "[::1]:9000"),
    ],
)
def test_endpoint_forms(endpoint: str, base: str, host: str) -> None:
    assert serving_client.base_url(endpoint) == base
    assert serving_client.endpoint_host(base) == host


@pytest.mark.parametrize("endpoint", ["ftp://x", "127.0.0.1:8000", "http://h:1/?q=1"])
def test_bad_endpoints(endpoint: str) -> None:
    with pytest.raises(ServingError, match="--endpoint"):
        serving_client.base_url(endpoint)


def test_this_machine() -> None:
    assert serving_client.is_this_machine("http://localhost:1")
    assert serving_client.is_this_machine("http://127.0.0.1:1")
    assert not serving_client.is_this_machine("http://192.0.2.1:8000")  # TEST-NET-1


# -- label pieces ------------------------------------------------------------------------------


def test_levels() -> None:
    assert serving_label.parse_levels("1,8,32") == [1, 8, 32]
    assert serving_label.parse_levels("16, 4") == [16, 4]
    for bad in ("0,8", "a", "8,8", ""):
        with pytest.raises(ServingError, match="--concurrency"):
            serving_label.parse_levels(bad)


@pytest.mark.parametrize(
    ("levels", "headline"),
    [([1, 8, 32], 8), ([1, 2], 2), ([4, 12], 4), ([6, 10], 6), ([16, 32], 16), ([64], 64)],
)
def test_headline_is_8_or_the_closest_level(levels: list[int], headline: int) -> None:
    block = serving_label.serving_block(
        engine={"name": "vllm", "source": "server"},
        endpoint_host="h:1",
        served_model="m",
        levels=levels,
        client_on_metered_host=True,
        max_new_tokens=256,
    )
    assert block["headline_concurrency"] == headline
    assert block["concurrency_levels"] == levels
    assert block["max_error_rate"] == 0.05


def test_engine_from_the_server_or_declared() -> None:
    vllm = ServerInfo(["m"], "vllm", "0.11.0")
    assert serving_label.engine_of(vllm, None) == {
        "name": "vllm",
        "version": "0.11.0",
        "source": "server",
    }
    assert serving_label.engine_of(vllm, "vllm==0.11.0")["source"] == "server"
    with pytest.raises(ServingError, match=r"the server says it is vllm 0\.11\.0"):
        serving_label.engine_of(vllm, "sglang")
    local = ServerInfo(["m"], "local", None)
    assert serving_label.engine_of(local, "transformers==5.25.0") == {
        "name": "transformers",
        "version": "5.25.0",
        "source": "declared",
    }
    assert serving_label.engine_of(local, "tgi") == {"name": "tgi", "source": "declared"}
    with pytest.raises(ServingError, match="--engine NAME"):
        serving_label.engine_of(local, None)
    with pytest.raises(ServingError, match="NAME==VERSION"):
        serving_label.engine_of(local, "a b")


def test_error_rate() -> None:
    assert error_rate(95, 5) == pytest.approx(0.05)
    assert error_rate(0, 0) == 0.0
    assert error_rate(0, 3) == 1.0


def _result(start: float, ttft: float, e2e: float, tokens: int, ok: bool = True) -> RequestResult:
    result = RequestResult(0, start, start + e2e, first_token_s=start + ttft)
    result.output_tokens, result.input_tokens = tokens, 7
    if not ok:
        result.error = ErrorKind.HTTP_STATUS
    return result


def test_window_counts_completed_requests_and_errors() -> None:
    ended = [_result(0, 0.1, 1.0, 5), _result(0, 0.2, 2.0, 1), _result(0, 0, 0.5, 0, ok=False)]
    window = window_of(ended, 0.0, 3.0, [], 2)
    assert (window.units, window.errors, window.concurrency) == (2, 1, 2)
    assert (window.input_tokens, window.output_tokens) == (14, 6)
    assert window.requests == [[0.1, 1.0, 5], [0.2, 2.0, 1]]
    trace = window.trace(4)
    assert trace["index"] == 4
    assert trace["requests"] == window.requests


def _serving_label(trials: list[dict[str, Any]], levels: list[int]) -> dict[str, Any]:
    return {
        "benchmark": {
            "suite": {"name": "carbonlabel-suite", "version": "2"},
            "task": "chat-serving",
            "phase": "inference",
            "workload": {"serving": {"concurrency_levels": levels, "headline_concurrency": 8}},
        },
        "measurement": {},
        "traces": {"trials": trials},
    }


def _trial(concurrency: int, energy_j: float, window_s: float, requests: list[list[Any]]) -> Any:
    return {
        "index": 0,
        "concurrency": concurrency,
        "units": len(requests),
        "errors": 1,
        "output_tokens": sum(r[2] for r in requests),
        "t_start_s": 10.0,
        "t_end_s": 10.0 + window_s,
        "components": [
            {
                "name": "gpu",
                "method": "nvml-energy-counter",
                "device": "g",
                "counter_start_j": 0.0,
                "counter_end_j": energy_j,
            }
        ],
        "requests": requests,
    }


def test_percentiles_and_itl_against_hand_computed_values() -> None:
    # level 8, two trials; TTFTs 0.1 .. 1.0 s; ITL = (e2e - ttft) / (tokens - 1)
    first = [[0.1, 1.1, 11], [0.2, 2.2, 21], [0.3, 0.3, 1], [0.4, 4.4, 41], [0.5, 1.5, 3]]
    second = [[0.6, 1.6, 6], [0.7, 2.7, 5], [0.8, 1.8, 2], [0.9, 2.9, 3], [1.0, 2.0, 11]]
    label = _serving_label([_trial(8, 3600.0, 10.0, first), _trial(8, 7200.0, 20.0, second)], [8])
    level = serving_results(label)["levels"][0]
    assert level["requests"] == 10
    assert level["errors"] == 2
    ttft = level["ttft_s"]
    # inclusive quantiles of 0.1..1.0 (n = 10): position 1 + (n - 1) q
    assert ttft["p50"] == pytest.approx(0.55)  # between 0.5 and 0.6
    assert ttft["p90"] == pytest.approx(0.91)  # 9.1 -> 0.9 + 0.1 x 0.1
    assert ttft["p99"] == pytest.approx(0.991)  # 9.91 -> 0.9 + 0.91 x 0.1
    # ITLs: 0.1, 0.1, (one token: none), 0.1, 0.5, 0.2, 0.5, 1.0, 1.0, 0.1 -> 9 values
    itl = sorted([0.1, 0.1, 0.1, 0.5, 0.2, 0.5, 1.0, 1.0, 0.1])
    assert itl == [0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 0.5, 1.0, 1.0]
    assert level["itl_s"]["p50"] == pytest.approx(0.2)  # position 5 of 9
    assert level["itl_s"]["p90"] == pytest.approx(1.0)  # 8.2 -> between 1.0 and 1.0
    assert level["itl_s"]["p99"] == pytest.approx(1.0)
    # energy: trial 1 3600 J / 5 requests, 3600 J / 77 tokens; trial 2 7200 J / 5, / 27
    per_request_wh = [3600 / 5 * 1000 / 3600, 7200 / 5 * 1000 / 3600]
    assert level["energy_per_unit_wh"]["mean"] == pytest.approx(sum(per_request_wh) / 2)
    per_token_j = [3600 / 77, 7200 / 27]
    assert level["energy_per_output_token_j"]["mean"] == pytest.approx(sum(per_token_j) / 2)
    assert level["output_tokens_per_s"] == pytest.approx((77 / 10 + 27 / 20) / 2)
    assert level["requests_per_s"] == pytest.approx((5 / 10 + 5 / 20) / 2)


def test_a_single_request_is_its_own_percentiles() -> None:
    label = _serving_label(
        [_trial(1, 10.0, 1.0, [[0.25, 1.25, 5]]), _trial(1, 10.0, 1.0, [[0.25, 1.25, 1]])], [1]
    )
    level = serving_results(label)["levels"][0]
    assert level["ttft_s"] == {"p50": 0.25, "p90": 0.25, "p99": 0.25}
    assert level["itl_s"] == {"p50": 0.25, "p90": 0.25, "p99": 0.25}  # (1.25 - 0.25) / 4
    assert not math.isnan(level["energy_per_unit_wh"]["mean"])
