"""``carbonlabel bench --task chat-serving`` end to end: against a REAL OpenAI-compatible engine
(``transformers serve`` on a tiny local model), signed and stored by a running registry; and
against the small fake server for the fault cases only (error rate over and under the limit,
the endpoint down, a model it does not serve)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench_runner.serving.label import served_model_digest
from schemas import suites
from tests.fake_openai import Reply, fake_openai_server
from tests.helpers import ADMIN_TOKEN
from tests.hf_models import TinyModels
from tests.runner.test_bench_e2e import carbonlabel
from tests.runner.test_hf_bench import REGISTRY, run_cli, statement_of
from tests.server import free_port, running_server

QUICK = [
    "--trials",
    "2",
    "--min-window-s",
    "0.5",
    "--idle-s",
    "0.3",
    "--warmup-min-s",
    "0",
    "--cooldown-s",
    "0",
    "--meter",
    "estimate",
    "--quiet",
]


def serving_args(endpoint: str, served_model: str, *extra: str) -> list[str]:
    return [
        "bench",
        "--task",
        "chat-serving",
        "--endpoint",
        endpoint,
        "--served-model",
        served_model,
        "--precision",
        "fp32",
        "--model-id",
        "acme/served",
        "--key",
        "key.pem",
        "--out",
        "out",
        *extra,
    ]


@pytest.fixture(scope="module")
def transformers_serve(
    tiny_models: TinyModels, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``transformers serve <tiny gen_eos model>`` on a free port; its base URL."""
    port = free_port()
    log = (tmp_path_factory.mktemp("serve") / "serve.log").open("wb")
    executable = Path(sys.executable).with_name("transformers")
    command = [str(executable), "serve", str(tiny_models.gen_eos), "--port", str(port)]
    env = os.environ | {"CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {process.returncode}")
            try:
                if httpx.get(f"{base}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("transformers serve did not answer /v1/models in 120 s")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_serving_a_real_engine_to_a_registry(
    transformers_serve: str, tiny_models: TinyModels, tmp_path: Path
) -> None:
    served = str(tiny_models.gen_eos)  # transformers serve lists the model by its path
    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert carbonlabel("db", "upgrade", "--database-url", url, cwd=tmp_path).returncode == 0
    token = carbonlabel(
        "vendor", "create", "acme", "--database-url", url, cwd=tmp_path
    ).stdout.strip()
    carbonlabel("keygen", "--out", "key.pem", cwd=tmp_path)
    quick = [arg for arg in QUICK if arg != "--quiet"]
    with running_server(url, ADMIN_TOKEN) as base:
        env = {"CARBONLABEL_TOKEN": token, "HF_HUB_OFFLINE": "1"}
        registered = carbonlabel(
            "key", "register", "acme", "--key", "key.pem", "--registry", base, cwd=tmp_path, env=env
        )
        assert registered.returncode == 0, registered.stderr
        result = carbonlabel(
            *serving_args(
                transformers_serve,
                served,
                "--concurrency",
                "1,2",
                "--engine",
                "transformers==5.25.0",
                "--model",
                f"hf:{tiny_models.gen_eos}",
                "--revision",
                "v1",
                "--samples",
                "16",
                "--max-new-tokens",
                "8",
                "--submit",
                base,
                *quick,
            ),
            cwd=tmp_path,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        err = result.stderr
        statement = statement_of(tmp_path / result.stdout.strip().splitlines()[-1])
        label = statement["predicate"]
        stored = httpx.get(f"{base}/v1/labels/{label['label_id']}").json()

    assert f"task chat-serving (inference); model {served} at {transformers_serve}" in err
    assert "(transformers 5.25.0, declared); data gsm8k-test, 16 of 1,319 items" in err
    assert "concurrency 1, 2 (headline 2)" in err
    for level in (1, 2):
        for trial in (1, 2):
            assert f"concurrency {level}: trial {trial}/2 done: " in err
    assert "(this client: " in err
    assert "TTFT p50" in err
    assert "headline (concurrency 2): " in err
    assert "stored:" in err

    assert label["benchmark"]["task"] == "chat-serving"
    workload = label["benchmark"]["workload"]
    serving = workload["serving"]
    assert serving == {
        "engine": {"name": "transformers", "version": "5.25.0", "source": "declared"},
        "api": "openai-chat-completions",
        "endpoint_host": transformers_serve.removeprefix("http://"),
        "served_model": served,
        "concurrency_levels": [1, 2],
        "headline_concurrency": 2,
        "max_error_rate": 0.05,
        "client_on_metered_host": True,
        "max_new_tokens": 8,
    }
    assert workload["samples"] == 16
    assert workload["batch_size"] == 2
    assert workload["max_new_tokens"] == 8
    assert label["model"]["revision"] == "v1"
    assert label["model"]["dtype"] == "float32"
    assert label["model"]["parameter_count"] > 0
    assert statement["subject"][0]["digest"]["sha256"] == suites.files_digest(
        label["model"]["files"]
    )
    trials = label["traces"]["trials"]
    assert [t["concurrency"] for t in trials] == [1, 1, 2, 2]
    for trial in trials:
        assert trial["units"] == len(trial["requests"]) > 0
        assert trial["errors"] == 0
        assert trial["output_tokens"] == sum(r[2] for r in trial["requests"])
        assert all(1 <= r[2] <= 8 and 0 <= r[0] <= r[1] for r in trial["requests"])
        assert trial["input_tokens"] > 0
    levels = label["results"]["serving"]["levels"]
    assert [lv["concurrency"] for lv in levels] == [1, 2]
    assert label["results"]["output_tokens_total"] == sum(t["output_tokens"] for t in trials[2:])
    assert "unavailable_reason" in label["quality"]
    # under continuous load a window needs no settling delay (see the methodology)
    assert label["measurement"].get("settle_s", 0.0) == 0.0

    assert stored["label"]["results"]["serving"] == label["results"]["serving"]
    assert stored["energy_per_output_token_j"] == pytest.approx(
        label["results"]["energy_per_output_token_j"]["mean"]
    )


# -- fault cases, on the fake server -----------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CARBONLABEL_TOKEN", raising=False)
    run_cli(["keygen", "--out", "key.pem"], capsys, monkeypatch)

    def run(args: list[str]) -> tuple[int, str, str]:
        return run_cli(args, capsys, monkeypatch)

    return run


def every(n: int, failing: Reply, tokens: int = 4) -> Any:
    """Request k fails when k % n == n - 1 (the preflight, request 0, succeeds)."""
    return lambda k: failing if k % n == n - 1 else Reply(tokens=tokens)


def test_errors_under_the_limit_are_recorded(cli: Any, tmp_path: Path) -> None:
    plan = every(50, Reply(mode="http-503"))  # 2 % of requests
    with fake_openai_server(plan, owned_by="vllm", version="0.11.0") as server:
        args = serving_args(server.base, "fake/model", "--concurrency", "4", *REGISTRY, *QUICK)
        # windows of >= 20 requests keep one error in 50 under 5 % in every window
        code, out, err = cli([*args, "--min-window-s", "1"])
    assert code == 0, err
    statement = statement_of(tmp_path / out.strip().splitlines()[-1])
    label = statement["predicate"]
    serving = label["benchmark"]["workload"]["serving"]
    assert serving["engine"] == {"name": "vllm", "version": "0.11.0", "source": "server"}
    assert serving["headline_concurrency"] == 4
    trials = label["traces"]["trials"]
    assert sum(t["errors"] for t in trials) > 0
    for trial in trials:
        assert trial["errors"] <= 0.05 * (trial["units"] + trial["errors"])
    level = label["results"]["serving"]["levels"][0]
    assert level["errors"] == sum(t["errors"] for t in trials)
    assert level["requests"] == sum(t["units"] for t in trials)
    # no files given: the model is named by its served id
    assert label["model"] == {"id": "acme/served", "revision": "main"}
    assert statement["subject"][0]["digest"]["sha256"] == served_model_digest("fake/model")
    assert "flags: estimated" in err


def test_slow_tokens_are_timed_in_the_label(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench_runner import serving_cli

    monkeypatch.setattr(serving_cli, "REGISTRY_BODY_LIMIT_BYTES", 1000)
    reply = Reply(tokens=5, first_token_delay_s=0.1, token_interval_s=0.02)
    with fake_openai_server(lambda _k: reply, owned_by="sglang") as server:
        args = serving_args(server.base, "fake/model", "--concurrency", "1,2", *REGISTRY, *QUICK)
        code, out, err = cli(args)
    assert code == 0, err
    assert "note: the envelope is " in err  # over the (lowered) registry body limit
    label = statement_of(tmp_path / out.strip().splitlines()[-1])["predicate"]
    assert label["benchmark"]["workload"]["serving"]["engine"] == {
        "name": "sglang",
        "source": "server",
    }
    for level in label["results"]["serving"]["levels"]:
        assert level["ttft_s"]["p50"] == pytest.approx(0.1, abs=0.03)
        assert level["itl_s"]["p50"] == pytest.approx(0.02, abs=0.01)
        # a closed loop of c workers: at most c / 0.18 s requests per second
        assert 0.3 < level["requests_per_s"] / (level["concurrency"] / 0.18) < 1.1
    for trial in label["traces"]["trials"]:
        assert all(r[2] == 5 for r in trial["requests"])
        assert trial["output_tokens"] == 5 * trial["units"]


@pytest.mark.parametrize("mode", ["http-500", "cut-drop", "no-usage"])
def test_an_error_rate_over_the_limit_fails_the_run(cli: Any, tmp_path: Path, mode: str) -> None:
    plan = every(5, Reply(mode=mode, tokens=5), tokens=5)  # 20 % of requests
    with fake_openai_server(plan) as server:
        args = serving_args(
            server.base, "fake/model", "--concurrency", "2", "--engine", "sglang", *REGISTRY, *QUICK
        )
        code, _out, err = cli(args)
    assert code == 1
    # the estimate meter's warning and notes come first; the error is one line, the last
    line = err.splitlines()[-1]
    assert [x for x in err.splitlines() if x.startswith("error")] == [line]
    assert line.startswith("error: trial 1 at concurrency 2: ")
    assert "over the maximum error rate of 5%" in line
    assert "no label was written" in line
    assert not (tmp_path / "out").exists()


def test_a_server_failing_every_request_stops_at_the_warm_up(cli: Any, tmp_path: Path) -> None:
    def plan(k: int) -> Reply:
        return Reply() if k == 0 else Reply(mode="http-500")

    with fake_openai_server(plan) as server:
        args = serving_args(server.base, "fake/model", "--concurrency", "2", "--engine", "x")
        code, _out, err = cli([*args, *REGISTRY, *QUICK])
    assert code == 1
    line = err.splitlines()[-1]
    assert line.startswith("error: every warm-up request at concurrency 2 failed (")
    assert "the first: http-status: HTTP 500 " in line
    assert not (tmp_path / "out").exists()


def test_an_endpoint_down_is_one_error_line(cli: Any, tmp_path: Path) -> None:
    port = free_port()
    code, _out, err = cli(serving_args(f"http://127.0.0.1:{port}", "m", *REGISTRY, *QUICK))
    assert code == 1
    [line] = err.splitlines()
    assert line.startswith(f"error: cannot reach http://127.0.0.1:{port}: ")
    assert not (tmp_path / "out").exists()


def test_a_model_the_server_does_not_serve(cli: Any) -> None:
    with fake_openai_server(models=["a", "b"]) as server:
        code, _out, err = cli(serving_args(server.base, "c", *REGISTRY, *QUICK))
    assert code == 1
    assert err.splitlines() == ["error: the server does not serve 'c'; it serves: a, b"]


def test_a_failing_test_request_stops_before_measuring(cli: Any) -> None:
    with fake_openai_server(lambda _k: Reply(mode="no-usage")) as server:
        code, _out, err = cli(
            serving_args(server.base, "fake/model", "--engine", "x", *REGISTRY, *QUICK)
        )
    assert code == 1
    [line] = err.splitlines()
    assert "a test request to" in line
    assert line.endswith(
        "failed before measuring: no-usage: no usage.completion_tokens in the stream"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "bench",
                "--task",
                "text-classification",
                "--endpoint",
                "http://h:1",
                "--concurrency",
                "8",
            ],
            "error: --endpoint, --concurrency: for --task chat-serving only",
        ),
        (
            ["bench", "--task", "chat-serving", "--endpoint", "http://h:1"],
            "error: --task chat-serving needs --endpoint URL and --served-model NAME",
        ),
        (
            ["bench", "--task", "chat-serving", "--endpoint", "http://h:1", "--served-model", "m"],
            "error: --task chat-serving: declare the precision the engine serves the model at",
        ),
        (
            [*serving_args("http://h:1", "m"), "--phase", "training"],
            "error: --task chat-serving is an inference task",
        ),
        (
            [*serving_args("http://h:1", "m"), "--concurrency", "8,8"],
            "error: --concurrency repeats a level",
        ),
    ],
)
def test_option_errors(cli: Any, args: list[str], message: str) -> None:
    if "--model-id" not in args:
        args = [*args, "--model-id", "acme/m", "--key", "key.pem"]
    code, _out, err = cli([*args, *REGISTRY, *QUICK])
    assert code == 1
    assert len(err.splitlines()) == 1
    assert err.startswith(message)


def test_hourly_carbon_of_the_headline_level(cli: Any, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    rows = [f"{(hour + timedelta(hours=h)).isoformat()},{100.0 * (h + 3)}" for h in range(-1, 3)]
    (tmp_path / "hourly.csv").write_text("timestamp,intensity_g_per_kwh\n" + "\n".join(rows) + "\n")
    with fake_openai_server(owned_by="vllm") as server:
        args = serving_args(
            server.base, "fake/model", "--concurrency", "1,8", "--hourly", "hourly.csv"
        )
        declared = ["--no-client-on-metered-host", "--pue", "1.2"]
        code, out, err = cli([*args, *declared, *REGISTRY, *QUICK])
    assert code == 0, err
    label = statement_of(tmp_path / out.strip().splitlines()[-1])["predicate"]
    assert label["benchmark"]["workload"]["serving"]["client_on_metered_host"] is False
    hourly = label["carbon"]["hourly"]
    used = {row["intensity_g_per_kwh"] for row in hourly["intensities"]}
    assert used <= {200.0, 300.0, 400.0, 500.0}
    # per unit of the headline level (8), whose energy is the label's top-level figure
    energy_kwh = label["results"]["energy_per_unit_wh"]["mean"] / 1000
    assert (
        energy_kwh * 1.2 * min(used) * 0.99
        <= hourly["co2e_per_unit_g"]
        <= energy_kwh * 1.2 * max(used) * 1.01
    )


def test_gpus_are_metered_and_their_processes_are_the_deployments(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench_runner import serving_cli
    from bench_runner.devices import discover
    from bench_runner.devices.estimate import EstimatedCpuMeter
    from bench_runner.devices.nvml import GpuInfo

    seen: dict[str, Any] = {}
    gpus = [
        GpuInfo(
            index=i,
            uuid=f"GPU-{i}",
            name="NVIDIA H100",
            driver_version="550.1",
            power_limit_w=700.0,
            energy_counter=True,
            cuda_index=i,
        )
        for i in range(2)
    ]

    def fake_discover(**kwargs: Any) -> discover.MeterSet:
        seen.update(kwargs)
        found = discover.MeterSet(meters=[EstimatedCpuMeter(tdp_w=10.0)], gpus=gpus)
        found.foreign_pids = {0: [4242, 4243]}
        found.notes.append("other processes share the measured GPU (GPU 0: PID 4242): flagged")
        return found

    monkeypatch.setattr(discover, "discover_meters", fake_discover)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    found = serving_cli._meters({"gpus": "0,1", "meter": "auto"})
    err = capsys.readouterr().err
    assert seen["gpu"] is True
    assert seen["allow_foreign_processes"] is True
    assert seen["env"]["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert seen["env"]["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert "note: GPU 0: processes 4242, 4243 (the deployment's)" in err
    assert "note: GPU 1 runs no process: is the engine on it?" in err
    assert "flagged" not in err
    assert "foreign-processes" in found.flags  # the CLI drops it: see bench_serving
    found.close()
    serving_cli._meters({"gpus": None, "meter": "auto"})
    assert seen["gpu"] is None
    assert seen["env"]["CUDA_VISIBLE_DEVICES"] == ""
