"""``carbonlabel watch`` (issue 14, item 2): a real prometheus_client exporter stands in for the
serving engine, fake meters for the GPUs; every period gives a signed operational label whose
figures are the meters' energy over the engine's own counts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from typer.testing import CliRunner

from bench_runner.bench_carbon import carbon_inputs
from bench_runner.label import Accelerator
from bench_runner.tracking import engine_metrics as em
from bench_runner.tracking.watch import Watcher, WatchOptions
from carbonlabel.cli import app
from schemas import validate_label
from schemas.results import check_results
from tests.devices.conftest import FakeGpu, FakeNvml, fake_nvml, no_real_nvml  # noqa: F401
from tests.helpers import ADMIN_TOKEN
from tests.server import running_server
from tests.test_track import key  # noqa: F401
from tests.tracking_fakes import ClockCounter

AUDIENCE = "http://testserver"


class Engine:
    """A stand-in for vLLM: its real metric names, served by prometheus_client over HTTP."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "vllm:request_success", "done", ["finished_reason"], registry=self.registry
        )
        self.requests.labels("stop")  # as vLLM does: the series exists before the first request
        self.generated = Counter("vllm:generation_tokens", "out", registry=self.registry)
        self.prompt = Counter("vllm:prompt_tokens", "in", registry=self.registry)
        self.running = Gauge("vllm:num_requests_running", "running", registry=self.registry)
        self.server, _ = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.url = f"http://127.0.0.1:{self.server.server_port}/metrics"

    def serve(self, requests: int, busy: bool = True) -> None:
        self.requests.labels("stop").inc(requests)
        self.generated.inc(150 * requests)
        self.prompt.inc(40 * requests)
        self.running.set(3 if busy else 0)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = Engine()
    yield engine
    engine.close()


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def options(tmp_path: Path, **overrides: Any) -> WatchOptions:
    kwargs: dict[str, Any] = {
        "model": "acme/chat-7b",
        "registry": AUDIENCE,
        "engine": "vllm",
        "metric_names": em.mapping_for("vllm", {}),
        "carbon": carbon_inputs(
            zone="FR", intensity=None, intensity_source="", pue=1.3, hourly=None, wue=None
        ),
        "every_s": 60.0,
        "window_s": 10.0,
        "scrape_s": 1.0,
        "out_dir": tmp_path,
    }
    return WatchOptions(**(kwargs | overrides))


def test_each_period_is_signed_with_the_meters_energy_over_the_engines_counts(
    engine: Engine, tmp_path: Path
) -> None:
    clock = Clock()
    meter = ClockCounter(power_w=350.0, clock=clock, device="GPU-0")
    served: list[int] = []
    idle: list[float] = []

    def sleep(seconds: float) -> None:
        # 4 requests a second, except from 20 s to 25 s of each minute: nothing running
        clock.now_s += seconds
        quiet = 20 <= (clock.now_s - 1000.0) % 60 < 25
        engine.serve(0 if quiet else 4, busy=not quiet)
        served.append(0 if quiet else 4)
        idle.append(seconds if quiet else 0.0)

    watcher = Watcher(
        options(tmp_path),
        [meter],
        em.EngineScraper(engine.url, em.mapping_for("vllm", {})),
        private_key=Ed25519PrivateKey.generate(),
        accelerator=Accelerator("nvidia", "NVIDIA H100 80GB HBM3", 1),
        utilisation=lambda: 0.6,
        clock=clock,
        sleep=sleep,
    )
    outcomes = list(watcher.run(periods=2))
    assert len(outcomes) == 2
    for n, outcome in enumerate(outcomes):
        label = outcome.label
        assert label is not None
        assert outcome.envelope_path is not None
        assert outcome.envelope_path.exists()
        assert label["kind"] == "operational"
        assert label["run"]["engine"]["metrics"]["requests"] == "vllm:request_success_total"
        assert label["provenance"]["source"] == "carbonlabel-watch"
        assert validate_label(label) == []
        assert check_results(label) == []
        figures = label["results"]["operational"]
        # each period is 60 ticks of 1 s; the engine served 4 requests a tick, 55 of them
        ticks = served[n * 60 : (n + 1) * 60]
        assert figures["requests"] == sum(ticks) == 220
        assert figures["output_tokens"] == 150 * sum(ticks)
        assert figures["input_tokens"] == 40 * sum(ticks)
        assert figures["period_s"] == pytest.approx(60.0)
        assert figures["energy_wh"] == pytest.approx(350.0 * 60 / 3600)
        assert figures["energy_per_1k_requests_wh"] == pytest.approx(350 * 60 / 3600 / 220 * 1000)
        assert figures["energy_per_output_token_j"] == pytest.approx(350 * 60 / (150 * 220))
        assert figures["utilisation"] == pytest.approx(0.6)
        assert figures["idle_share"] == pytest.approx(sum(idle[n * 60 : (n + 1) * 60]) / 60)
        assert figures["co2e_g"] == pytest.approx(
            350 * 60 / 3600 * 1.3 * label["carbon"]["intensity_g_per_kwh"] / 1000
        )
        assert label["hardware"]["hardware_class"] == "nvidia-h100-sxm-80gb"
    # periods follow each other with no gap
    first, second = (o.label["traces"]["trials"] for o in outcomes if o.label)
    assert second[0]["t_start_s"] == pytest.approx(first[-1]["t_end_s"])


def test_a_period_without_traffic_makes_no_label(engine: Engine, tmp_path: Path) -> None:
    clock = Clock()

    def sleep(seconds: float) -> None:
        clock.now_s += seconds
        engine.serve(0, busy=False)

    watcher = Watcher(
        options(tmp_path),
        [ClockCounter(clock=clock)],
        em.EngineScraper(engine.url, em.mapping_for("vllm", {})),
        private_key=Ed25519PrivateKey.generate(),
        accelerator=Accelerator("none", "none", 0),
        clock=clock,
        sleep=sleep,
    )
    (outcome,) = list(watcher.run(periods=1))
    assert outcome.label is None
    assert "at least 2 windows" in (outcome.skipped_because or "")
    assert not list(tmp_path.glob("*.dsse.json"))


def test_engine_presets_parse_counters_histograms_and_resets() -> None:
    tgi = em.mapping_for("tgi", {})
    text = "\n".join(
        [
            "# TYPE tgi_request_success counter",
            "tgi_request_success 12",
            "# TYPE tgi_request_generated_tokens histogram",
            'tgi_request_generated_tokens_bucket{le="+Inf"} 12',
            "tgi_request_generated_tokens_sum 1800",
            "tgi_request_generated_tokens_count 12",
            "# TYPE tgi_batch_current_size gauge",
            "tgi_batch_current_size 0",
        ]
    )
    reading = em.parse(text + "\n", tgi)
    assert reading.values == {
        "requests": 12.0,
        "output_tokens": 1800.0,
        "input_tokens": None,
        "running": 0.0,
    }
    assert em.increase(100.0, 130.0) == 30.0
    assert em.increase(100.0, 7.0) == 7.0  # the engine restarted: its counter began again
    custom = em.mapping_for("custom", {"requests": "my_done_total"})
    assert custom == {"requests": "my_done_total"}
    with pytest.raises(ValueError, match="requests"):
        em.mapping_for("custom", {})
    with pytest.raises(ValueError, match="figures"):
        em.mapping_for("vllm", {"tokens": "x"})


def test_a_counter_that_never_appears_is_named_in_the_skip_reason(
    engine: Engine, tmp_path: Path
) -> None:
    """An engine that creates its counters with the first request is not refused; a wrong name
    shows up in each period's reason for making no label."""
    clock = Clock()

    def sleep(seconds: float) -> None:
        clock.now_s += seconds
        engine.serve(3)

    names = em.mapping_for("tgi", {})  # the vLLM stand-in has no TGI counters
    watcher = Watcher(
        options(tmp_path, engine="tgi", metric_names=names),
        [ClockCounter(clock=clock)],
        em.EngineScraper(engine.url, names),
        private_key=Ed25519PrivateKey.generate(),
        accelerator=Accelerator("none", "none", 0),
        clock=clock,
        sleep=sleep,
    )
    (outcome,) = list(watcher.run(periods=1))
    assert outcome.label is None
    assert "tgi_request_success" in (outcome.skipped_because or "")


def test_watch_cli_submits_operational_labels_to_a_registry(
    fake_nvml: FakeNvml,  # noqa: F811
    engine: Engine,
    key: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The command end to end: the NVML meter (fake NVML), the engine over HTTP, a real registry
    that stores the label as operational and logs it."""
    t0 = time.monotonic()
    fake_nvml.add(
        FakeGpu(
            uuid="GPU-watch",
            name="NVIDIA H100 80GB HBM3",
            energy_mj=lambda: int((time.monotonic() - t0) * 300_000),
            utilisation_pct=70,
        )
    )
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            engine.serve(2)
            time.sleep(0.01)

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    database = f"sqlite:///{tmp_path / 'registry.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade", "--database-url", database]).exit_code == 0
    created = runner.invoke(app, ["vendor", "create", "acme", "--database-url", database])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    try:
        with running_server(database, ADMIN_TOKEN) as base:
            env = {"CARBONLABEL_REGISTRY": base, "CARBONLABEL_TOKEN": token}
            result = runner.invoke(app, ["key", "register", "acme", "--key", str(key)], env=env)
            assert result.exit_code == 0, (result.output, result.exception)
            result = CliRunner().invoke(
                app,
                [
                    "watch",
                    "--endpoint",
                    engine.url,
                    "--model",
                    "acme/chat-7b",
                    "--key",
                    str(key),
                    "--registry",
                    base,
                    "--every",
                    "1.2s",
                    "--window",
                    "0.3s",
                    "--scrape-every",
                    "0.05s",
                    "--periods",
                    "1",
                    "--submit",
                    "--token",
                    token,
                    "--out",
                    str(tmp_path),
                ],
            )
            assert result.exit_code == 0, (result.output, result.exception)
            envelope_path = Path(result.stdout.strip().splitlines()[-1])
            label = json.loads(
                envelope_path.with_name(envelope_path.name.replace(".dsse", ".label")).read_text()
            )
            assert label["kind"] == "operational"
            assert label["results"]["operational"]["utilisation"] == pytest.approx(0.7)
            assert label["measurement"]["components"][0]["method"] == "nvml-energy-counter"
            assert "foreign-processes" not in label["measurement"]["flags"]
            stored = httpx.get(f"{base}/v1/labels/{label['label_id']}").json()
            assert stored["kind"] == "operational"
            assert stored["log_index"] is not None
            listed = httpx.get(f"{base}/v1/labels", params={"model": "acme/chat-7b"}).json()
            assert [i["kind"] for i in listed["items"]] == ["operational"]
    finally:
        stop.set()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--every", "soon"], "--every"),
        (["--every", "1m", "--window", "2m"], "in that order"),
        (["--engine", "sglang"], "engine"),
        (["--metric", "requests"], "FIGURE=METRIC"),
        (["--task", "text-classification"], "--task"),
    ],
)
def test_bad_watch_options_fail_with_a_message(
    engine: Engine,
    key: Path,  # noqa: F811
    args: list[str],
    message: str,
) -> None:
    base = ["watch", "--endpoint", engine.url, "--model", "acme/m", "--key", str(key)]
    result = CliRunner().invoke(app, [*base, "--registry", AUDIENCE, *args])
    assert result.exit_code != 0
    assert message in str(result.exception or result.output)


def test_with_hourly_intensities_each_window_is_charged_its_hour(
    engine: Engine, tmp_path: Path
) -> None:
    """A period across 12:00: the windows before it are charged 100 g/kWh, those after 400."""
    csv = tmp_path / "hourly.csv"
    csv.write_text(
        "timestamp,intensity_g_per_kwh\n2026-12-01T11:00:00Z,100\n2026-12-01T12:00:00Z,400\n"
    )
    clock = Clock()
    start = datetime(2026, 12, 1, 11, 59, 30, tzinfo=UTC)

    def sleep(seconds: float) -> None:
        clock.now_s += seconds
        engine.serve(2)

    carbon = carbon_inputs(
        zone="DE", intensity=None, intensity_source="", pue=1.5, hourly=csv, wue=None
    )
    watcher = Watcher(
        options(tmp_path, carbon=carbon),
        [ClockCounter(power_w=360.0, clock=clock)],
        em.EngineScraper(engine.url, em.mapping_for("vllm", {})),
        private_key=Ed25519PrivateKey.generate(),
        accelerator=Accelerator("none", "none", 0),
        clock=clock,
        sleep=sleep,
        wall=lambda: start,
    )
    (outcome,) = list(watcher.run(periods=1))
    label = outcome.label
    assert label is not None
    assert check_results(label) == []
    assert [h["intensity_g_per_kwh"] for h in label["carbon"]["hourly"]["intensities"]] == [
        100,
        400,
    ]
    # 6 windows of 10 s at 360 W = 1 Wh each: 3 (mid-points before 12:00) at 100, 3 at 400
    figures = label["results"]["operational"]
    assert figures["co2e_g"] == pytest.approx(1.0 * 1.5 * (3 * 100 + 3 * 400) / 1000)
    # a changed intensity no longer matches
    label["carbon"]["hourly"]["intensities"][1]["intensity_g_per_kwh"] = 40
    assert "/results/operational/co2e_g" in [m.pointer for m in check_results(label)]
