"""``carbonlabel.track`` (issue 14, item 1): a whole training run measured by the bench's meters,
bounded memory over long runs with the energy exact, a journal that survives a kill, and a signed
training-run label whose totals are the meters' own."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

import carbonlabel
from bench_runner.tracking import segments as seg
from bench_runner.tracking.track import TrackError
from carbonlabel.cli import app
from schemas import validate_label
from schemas.dsse import load_private_key, parse_envelope, verify_signature
from schemas.results import check_results
from schemas.window_energy import component_energy_j
from tests.devices.conftest import FakeGpu, FakeNvml, fake_nvml, no_real_nvml  # noqa: F401
from tests.tracking_fakes import ClockCounter

AUDIENCE = "http://testserver"
PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "acme.pem"
    path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def trace_energy_j(label: dict[str, Any]) -> float:
    return sum(
        component_energy_j(c, t["t_start_s"], t["t_end_s"])
        for t in label["traces"]["trials"]
        for c in t["components"]
    )


def test_a_real_pytorch_training_loop_gives_the_meters_totals(
    fake_nvml: FakeNvml,  # noqa: F811
    key: Path,
    tmp_path: Path,
) -> None:
    """The NVML counter meter the bench uses (over a fake NVML at 250 W) meters a real PyTorch
    training loop; the label's total is the meter's energy over the run, not an extrapolation."""
    import torch

    t0 = time.monotonic()
    fake_nvml.add(
        FakeGpu(
            uuid="GPU-track",
            name="NVIDIA H100 80GB HBM3",
            energy_mj=lambda: int((time.monotonic() - t0) * 250_000),
        )
    )
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))
    optimiser = torch.optim.SGD(net.parameters(), lr=0.05)
    inputs, targets = torch.randn(256, 32), torch.randint(0, 4, (256,))
    steps = 0
    with carbonlabel.track(
        task="text-classification",
        model="acme/tiny-mlp",
        key=key,
        registry=AUDIENCE,
        batch_size=32,
        precision="fp32",
        out_dir=tmp_path,
        segment_s=0.05,
        idle_s=0.1,
    ) as run:
        deadline = time.monotonic() + 0.6
        while time.monotonic() < deadline:
            for i in range(0, 256, 32):
                optimiser.zero_grad()
                loss = torch.nn.functional.cross_entropy(
                    net(inputs[i : i + 32]), targets[i : i + 32]
                )
                loss.backward()
                optimiser.step()
                run.step()
                steps += 1
    label = run.label
    assert label is not None
    assert run.envelope_path is not None
    assert label["kind"] == "training-run"
    assert label["run"]["status"] == "complete"
    assert validate_label(label) == []
    assert check_results(label) == []
    assert label["hardware"]["hardware_class"] == "nvidia-h100-sxm-80gb"
    assert label["measurement"]["components"] == [{"name": "gpu", "method": "nvml-energy-counter"}]
    results = label["results"]
    assert results["steps_measured"] == steps
    assert results["samples_total"] == steps * 32
    # the meter's own total over the run: its counter at the first segment's start and at the
    # last one's end (segments meet, so their sum is that, give or take the instant between a
    # window's opening and the previous one's closing)
    trials = label["traces"]["trials"]
    meter_j = (
        trials[-1]["components"][0]["counter_end_j"] - trials[0]["components"][0]["counter_start_j"]
    )
    assert results["total_energy_wh"] * 3600 == pytest.approx(trace_energy_j(label))
    assert results["total_energy_wh"] * 3600 == pytest.approx(meter_j, rel=0.01)
    # and the fake GPU's 250 W over the run's length
    run_s = trials[-1]["t_end_s"] - trials[0]["t_start_s"]
    assert results["total_energy_wh"] * 3600 == pytest.approx(250 * run_s, rel=0.02)
    assert results["energy_per_sample_wh"] == pytest.approx(
        results["total_energy_wh"] / (steps * 32)
    )
    envelope = parse_envelope(run.envelope_path.read_bytes())
    assert verify_signature(envelope, load_private_key(key).public_key())
    journal = run.journal_path.read_text().splitlines()
    assert json.loads(journal[-1])["type"] == "end"


def test_a_week_long_run_keeps_few_segments_and_the_exact_energy(key: Path, tmp_path: Path) -> None:
    """A simulated week (a fake clock, a step every 10 s): segments double in length every 16,
    so the label has a few hundred, and its energy is the meter's to the joule."""

    class Clock:
        now_s = 50_000.0

        def __call__(self) -> float:
            return self.now_s

        def sleep(self, seconds: float) -> None:
            self.now_s += seconds

    clock = Clock()
    meter = ClockCounter(power_w=400.0, clock=clock)
    with carbonlabel.track(
        task="image-classification",
        model="acme/week",
        key=key,
        registry=AUDIENCE,
        batch_size=64,
        out_dir=tmp_path,
        meters=[meter],
        clock=clock,
        sleep=clock.sleep,
        idle_s=10.0,
    ) as run:
        for _ in range(7 * 24 * 360):
            clock.now_s += 10.0
            run.step()
    label = run.label
    assert label is not None
    assert 100 < len(label["traces"]["trials"]) < 300
    assert check_results(label) == []
    week_s = 7 * 24 * 3600
    assert label["results"]["total_energy_wh"] * 3600 == pytest.approx(400.0 * week_s, rel=1e-9)
    assert label["results"]["steps_measured"] == 7 * 24 * 360
    assert len(run.envelope_path.read_bytes()) < 1_000_000  # under the registry's body limit


def test_bucket_means_keep_the_energy_and_bound_the_samples() -> None:
    rng = random.Random(7)
    t, samples = 0.0, []
    for _ in range(50_000):
        t += rng.uniform(0.05, 0.15)
        samples.append([t, rng.uniform(80, 700)])
    small = seg.bucket_means(samples, 400)
    assert len(small) <= 400
    assert seg.trapezoid_j(small) == pytest.approx(seg.trapezoid_j(samples), rel=1e-12)
    assert all(b[0] >= a[0] for a, b in itertools.pairwise(small))
    assert small[0][0] == samples[0][0]
    assert small[-1][0] == samples[-1][0]


def test_a_sampled_trace_is_downsampled_in_the_label_with_its_energy(
    key: Path, tmp_path: Path
) -> None:
    """A power-sampling meter over a long run: the label keeps its sample budget, and the
    registry's integral of the label's samples is the meter's."""

    class Sampled(ClockCounter):
        method = "nvml-power-sampling"
        interval_s = 0.1

        def __init__(self, clock: Any) -> None:
            super().__init__(300.0, clock)
            self.log: list[list[float]] = []
            self.opened: dict[str, float] = {}

        def tick(self) -> None:
            now = self.clock()
            self.log.append([now, 300.0 + 100.0 * ((now * 7) % 1.0)])

        def begin_window(self, key: str) -> None:
            self.tick()
            self.opened[key] = self.clock()

        def end_window(self, key: str) -> dict[str, Any]:
            self.tick()
            start = self.opened.pop(key)
            inside = [s for s in self.log if s[0] >= start]
            return {"name": "gpu", "method": self.method, "device": "G", "samples": inside}

    class Clock:
        now_s = 10.0

        def __call__(self) -> float:
            return self.now_s

        def sleep(self, seconds: float) -> None:
            self.now_s += seconds

    clock = Clock()
    meter = Sampled(clock)
    with carbonlabel.track(
        task="text-classification",
        model="acme/sampled",
        key=key,
        registry=AUDIENCE,
        batch_size=8,
        out_dir=tmp_path,
        meters=[meter],
        clock=clock,
        sleep=clock.sleep,
        idle_s=1.0,
        segment_s=30.0,
    ) as run:
        for _ in range(40_000):
            clock.now_s += 0.1
            meter.tick()
            if clock.now_s % 1.0 < 0.1:
                run.step()
    label = run.label
    assert label is not None
    samples = sum(len(c["samples"]) for t in label["traces"]["trials"] for c in t["components"])
    assert samples <= seg.LABEL_SAMPLE_BUDGET + 4 * len(label["traces"]["trials"])
    assert label["run"]["downsampling"]["rule"] == "bucket-mean"
    assert check_results(label) == []
    first = label["traces"]["trials"][0]["t_start_s"]
    metered = seg.trapezoid_j([s for s in meter.log if s[0] >= first])
    assert label["results"]["total_energy_wh"] * 3600 == pytest.approx(metered, rel=1e-6)


def test_a_killed_run_leaves_a_journal_that_recovers_into_an_incomplete_label(
    key: Path, tmp_path: Path
) -> None:
    journal = tmp_path / "run.journal.jsonl"
    env = dict(os.environ, PYTHONPATH=str(PROJECT))
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.tracking_fakes", str(journal), str(key), str(tmp_path)],
        cwd=PROJECT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lines = journal.read_text().splitlines() if journal.exists() else []
            if sum('"type":"segment"' in line for line in lines) >= 5:
                break
            assert process.poll() is None, "the tracked run ended by itself"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert not list(tmp_path.glob("*.dsse.json"))  # the run wrote no label
    flushed = [json.loads(x) for x in journal.read_text().splitlines() if '"segment"' in x]

    result = CliRunner().invoke(
        app, ["track", "recover", str(journal), "--key", str(key), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    envelope_path = Path(result.stdout.strip().splitlines()[-1])
    label = json.loads(
        envelope_path.with_name(envelope_path.name.replace(".dsse", ".label")).read_text()
    )
    assert label["run"]["status"] == "incomplete"
    assert validate_label(label) == []
    assert check_results(label) == []
    steps = sum(r["segment"]["units"] for r in flushed)
    assert label["results"]["steps_measured"] == steps
    assert label["results"]["samples_total"] == steps * 4


def test_an_exception_keeps_the_journal_and_writes_no_label(key: Path, tmp_path: Path) -> None:
    journals: list[Path] = []

    def train() -> None:
        with carbonlabel.track(
            task="text-classification",
            model="acme/boom",
            key=key,
            registry=AUDIENCE,
            batch_size=4,
            out_dir=tmp_path,
            meters=[ClockCounter()],
            idle_s=0.02,
            segment_s=0.01,
        ) as run:
            journals.append(run.journal_path)
            for _ in range(30):
                time.sleep(0.002)
                run.step()
            raise RuntimeError("loss diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        train()
    assert not list(tmp_path.glob("*.dsse.json"))
    records = [json.loads(x) for x in journals[0].read_text().splitlines()]
    assert records[-1]["type"] == "segment"  # flushed up to the exception, no end record
    result = CliRunner().invoke(
        app, ["track", "recover", str(journals[0]), "--key", str(key), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, (result.output, result.exception)


def test_the_run_serves_its_own_prometheus_metrics(key: Path, tmp_path: Path) -> None:
    import httpx

    with carbonlabel.track(
        task="text-classification",
        model="acme/scraped",
        key=key,
        registry=AUDIENCE,
        batch_size=4,
        out_dir=tmp_path,
        meters=[ClockCounter(power_w=200.0, device="GPU-a")],
        idle_s=0.02,
        segment_s=0.01,
        prometheus_port=0,
    ) as run:
        for _ in range(20):
            time.sleep(0.003)
            run.step()
        assert run.metrics_port is not None
        text = httpx.get(f"http://127.0.0.1:{run.metrics_port}/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    energy = families["carbonlabel_energy_joules"]
    (sample,) = [s for s in energy.samples if s.name == "carbonlabel_energy_joules_total"]
    assert sample.labels == {"device": "GPU-a", "component": "gpu"}
    closed = run.segments[:-1]  # the last one closed at the end of the block, after the scrape
    metered_j = sum(component_energy_j(c, 0, 0) for s in closed for c in s.components)
    assert sample.value == pytest.approx(metered_j, rel=1e-9)
    assert families["carbonlabel_power_watts"].samples[0].value == pytest.approx(200.0, rel=0.05)
    steps = next(s for s in families["carbonlabel_units"].samples if s.name.endswith("_total"))
    assert steps.labels == {"unit": "step"}
    assert steps.value <= 20
    assert "carbonlabel_co2e_grams" in families


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"task": "chat-serving"}, "no training phase"),
        ({"batch_size": 0}, "batch_size"),
        ({"precision": "fp64"}, "precision"),
        ({"model": "no-vendor"}, "vendor/name"),
        ({"zone": "Mars"}, "carbon options"),
        ({"idle_s": 0}, "idle_s"),
    ],
)
def test_bad_options_are_refused_before_anything_runs(
    key: Path, tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    kwargs: dict[str, Any] = {
        "task": "text-classification",
        "model": "acme/m",
        "key": key,
        "registry": AUDIENCE,
        "batch_size": 4,
        "out_dir": tmp_path,
        "meters": [ClockCounter()],
    }
    with pytest.raises(TrackError, match=message), carbonlabel.track(**(kwargs | overrides)):
        pass
    assert not list(tmp_path.glob("*.jsonl"))


def test_a_run_too_short_for_two_segments_says_so(key: Path, tmp_path: Path) -> None:
    with (
        pytest.raises(TrackError, match="at least 2"),
        carbonlabel.track(
            task="text-classification",
            model="acme/short",
            key=key,
            registry=AUDIENCE,
            batch_size=4,
            out_dir=tmp_path,
            meters=[ClockCounter()],
            idle_s=0.01,
            segment_s=60.0,
        ) as run,
    ):
        run.step()
    # the journal stays, complete, for a later look
    assert list(tmp_path.glob("*.journal.jsonl"))
