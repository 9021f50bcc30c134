"""MLflow logging (issue 14, item 5): a signed label's figures, context and envelope logged to a
real MLflow tracking store (SQLite in a temporary folder) and read back through MlflowClient."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mlflow.tracking import MlflowClient

from bench_runner.tracking import mlflow_log
from bench_runner.tracking.mlflow_log import (
    MlflowLogError,
    MlflowUnavailable,
    label_metrics,
    log_label,
    log_metrics,
)
from schemas.dsse import keyid_for
from schemas.synthetic import make_label
from tests.helpers import ADMIN_TOKEN, envelope_bytes
from tests.runner.test_bench_e2e import QUICK, REFERENCE_BENCH, carbonlabel
from tests.server import running_server

pytestmark = pytest.mark.filterwarnings(
    # MLflow's SQL store on SQLAlchemy 2.1 (its own code, nothing of ours)
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"
)

REGISTRY = "https://registry.example"


@pytest.fixture
def tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite tracking store; MLflow's default artifact root (./mlruns) in tmp_path."""
    monkeypatch.chdir(tmp_path)
    for name in ("MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def signed() -> tuple[dict[str, Any], bytes, str]:
    """A suite-2 text-generation label (quality, tokens, embodied, water), its envelope, keyid."""
    key = Ed25519PrivateKey.generate()
    label = make_label(
        vendor="acme", model="qwen-mini", registry=REGISTRY, suite="2", task="text-generation"
    )
    return label, envelope_bytes(label, key), keyid_for(key.public_key())


def artifact(client: MlflowClient, run_id: str, name: str, into: Path) -> bytes:
    return Path(client.download_artifacts(run_id, f"carbonlabel/{name}", str(into))).read_bytes()


def test_a_label_is_logged_to_a_new_run_and_reads_back(
    tracking_uri: str, tmp_path: Path, signed: tuple[dict[str, Any], bytes, str]
) -> None:
    label, envelope, keyid = signed
    run_id = log_label(
        label,
        envelope,
        tracking_uri=tracking_uri,
        experiment="labels",
        registry_url="https://submitted.example/",
    )
    client = MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"  # this call started the run, so it ended it
    assert client.get_experiment(run.info.experiment_id).name == "labels"
    metrics = run.data.metrics
    results, carbon = label["results"], label["carbon"]
    assert metrics["energy_per_unit_wh"] == results["energy_per_unit_wh"]["mean"]
    assert metrics["energy_per_unit_ci95_high_wh"] == results["energy_per_unit_wh"]["ci95_high"]
    assert metrics["dynamic_energy_per_unit_wh"] == results["dynamic_energy_per_unit_wh"]
    assert metrics["co2e_per_unit_g"] == carbon["co2e_per_unit_g"]["mean"]
    assert metrics["energy_per_output_token_j"] == results["energy_per_output_token_j"]["mean"]
    assert metrics["throughput_units_per_s"] == results["throughput_units_per_s"]
    assert metrics["quality_gsm8k_exact_match"] == label["quality"]["measured"]["value"]
    embodied = carbon["embodied"]["co2e_per_unit_g"]
    assert metrics["embodied_co2e_per_unit_g"] == embodied
    assert metrics["total_co2e_per_unit_g"] == pytest.approx(
        carbon["co2e_per_unit_g"]["mean"] + embodied
    )
    assert metrics["water_per_unit_l"] == carbon["water"]["per_unit_l"]
    assert metrics == label_metrics(label)  # every figure, nothing else
    params = run.data.params
    assert params["carbonlabel.task"] == "text-generation"
    assert params["carbonlabel.phase"] == "inference"
    assert params["carbonlabel.functional_unit"] == results["functional_unit"]
    assert params["carbonlabel.hardware_class"] == label["hardware"]["hardware_class"]
    assert params["carbonlabel.accelerator_model"] == label["hardware"]["accelerator"]["model_name"]
    assert params["carbonlabel.accelerator_count"] == "1"
    assert params["carbonlabel.zone"] == "FR"
    assert params["carbonlabel.grid_intensity_g_per_kwh"] == "56.0"
    assert params["carbonlabel.pue"] == "1.2"
    assert params["carbonlabel.suite_version"] == "2"
    assert params["carbonlabel.methodology_version"] == "1"
    assert params["carbonlabel.model_id"] == "acme/qwen-mini"
    assert params["carbonlabel.model_revision"] == "v1"
    assert params["carbonlabel.kind"] == "benchmark"
    tags = run.data.tags
    label_id = label["label_id"]
    assert tags["carbonlabel.label_id"] == label_id
    assert tags["carbonlabel.model"] == "acme/qwen-mini"
    assert tags["carbonlabel.vendor"] == "acme"
    assert tags["carbonlabel.kind"] == "benchmark"
    assert tags["carbonlabel.keyid"] == keyid
    assert tags["carbonlabel.registry_url"] == f"https://submitted.example/v1/labels/{label_id}"
    assert tags["carbonlabel.model_page"] == "https://submitted.example/models/acme/qwen-mini"
    assert tags["mlflow.runName"] == "carbonlabel acme/qwen-mini"
    # the envelope byte for byte, and the label
    assert artifact(client, run_id, f"{label_id}.dsse.json", tmp_path / "dl") == envelope
    got = json.loads(artifact(client, run_id, f"{label_id}.label.json", tmp_path / "dl"))
    assert got == label


def test_it_logs_into_the_run_named_or_active_and_leaves_it_running(
    tracking_uri: str, tmp_path: Path, signed: tuple[dict[str, Any], bytes, str]
) -> None:
    label, envelope, _ = signed
    client = MlflowClient(tracking_uri)
    training = client.create_run(client.create_experiment("training")).info.run_id
    client.log_param(training, "task", "my own param")  # the user's params stay theirs
    assert log_label(label, envelope, run_id=training) == training
    run = client.get_run(training)
    assert run.info.status == "RUNNING"
    assert run.data.params["task"] == "my own param"
    assert run.data.params["carbonlabel.task"] == "text-generation"
    # the label's audience is the registry link when none is given
    assert run.data.tags["carbonlabel.registry_url"] == f"{REGISTRY}/v1/labels/{label['label_id']}"
    assert artifact(client, training, f"{label['label_id']}.dsse.json", tmp_path / "a") == envelope
    # the same label again is fine; another label whose params differ is refused, naming them
    log_label(label, envelope, run_id=training)
    other = make_label(vendor="acme", model="qwen-mini", registry=REGISTRY, zone="PL", seed=9)
    with pytest.raises(MlflowLogError, match=r"carbonlabel\.zone='FR' \(this label: 'PL'\)"):
        log_label(other, envelope_bytes(other, Ed25519PrivateKey.generate()), run_id=training)
    # figures along the way (track, watch), at steps
    log_metrics({"energy_so_far_wh": 1.5, "not a number": "x"}, step=1, run_id=training)
    log_metrics({"energy_so_far_wh": 3.0}, step=2, run_id=training)
    history = client.get_metric_history(training, "energy_so_far_wh")
    assert [(m.step, m.value) for m in history] == [(1, 1.5), (2, 3.0)]
    assert "not a number" not in client.get_run(training).data.metrics

    # the active run of the fluent API (tracking URI from MLFLOW_TRACKING_URI)
    with mlflow.start_run() as active:
        assert log_label(label, envelope) == active.info.run_id
        assert log_metrics({"energy_so_far_wh": 2.0}, step=5) == active.info.run_id
        assert client.get_run(active.info.run_id).info.status == "RUNNING"
    logged = client.get_run(active.info.run_id)
    assert (
        logged.data.metrics["energy_per_unit_wh"] == label["results"]["energy_per_unit_wh"]["mean"]
    )
    assert logged.data.metrics["energy_so_far_wh"] == 2.0
    with pytest.raises(MlflowLogError, match="no MLflow run to log into"):
        log_metrics({"energy_so_far_wh": 1.0})


def test_missing_figures_are_skipped_and_new_kinds_are_logged() -> None:
    assert label_metrics({}) == {}
    assert mlflow_log.label_params({}) == {"carbonlabel.kind": "benchmark"}
    assert mlflow_log.label_tags({"label_id": "x"}, b"not json") == {
        "carbonlabel.label_id": "x",
        "carbonlabel.kind": "benchmark",
    }
    operational = {
        "kind": "operational",
        "results": {
            "energy_per_unit_wh": {"mean": 2.0},
            "total_energy_wh": 120.5,
            "operational": {
                "period_s": 3600.0,
                "energy_wh": 120.5,
                "requests": 4000,
                "energy_per_1k_requests_wh": 30.125,
                "note": "not a number",
                "nan": float("nan"),
            },
        },
        "carbon": {"co2e_per_unit_g": {"mean": 0.1}, "embodied": {"status": "unknown-hardware"}},
        "quality": {"measured": {"value": 0.5}},
    }
    assert label_metrics(operational) == {
        "energy_per_unit_wh": 2.0,
        "co2e_per_unit_g": 0.1,
        "total_energy_wh": 120.5,
        "quality_value": 0.5,
        "operational_period_s": 3600.0,
        "operational_energy_wh": 120.5,
        "operational_requests": 4000.0,
        "operational_energy_per_1k_requests_wh": 30.125,
    }
    assert mlflow_log.label_params(operational)["carbonlabel.kind"] == "operational"


def test_bench_mlflow_end_to_end(tracking_uri: str, tmp_path: Path) -> None:
    """``bench --submit URL --mlflow``: the run links to the label the registry stored."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert carbonlabel("db", "upgrade", "--database-url", url, cwd=tmp_path).returncode == 0
    token = carbonlabel("vendor", "create", "acme", "--database-url", url, cwd=tmp_path).stdout
    assert carbonlabel("keygen", "--out", "key.pem", cwd=tmp_path).returncode == 0
    with running_server(url, ADMIN_TOKEN) as base:
        env = {"CARBONLABEL_TOKEN": token.strip(), "CARBONLABEL_REGISTRY": base}
        registered = carbonlabel(
            "key", "register", "acme", "--key", "key.pem", cwd=tmp_path, env=env
        )
        assert registered.returncode == 0, registered.stderr
        result = carbonlabel(
            *REFERENCE_BENCH,
            "--submit",
            base,
            "--out",
            "out",
            "--mlflow",
            "--mlflow-experiment",
            "bench-ci",
            *QUICK,
            cwd=tmp_path,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        (printed,) = result.stdout.splitlines()  # stdout: the envelope's path alone
        envelope_path = tmp_path / printed
        label = json.loads(next((tmp_path / "out").glob("*.label.json")).read_text())
        label_url = f"{base}/v1/labels/{label['label_id']}"
        assert httpx.get(label_url).status_code == 200  # the link leads to the stored label
    assert "logged to MLflow: run" in result.stderr
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("bench-ci")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["carbonlabel.label_id"] == label["label_id"]
    assert run.data.tags["carbonlabel.registry_url"] == label_url
    assert run.data.tags["carbonlabel.model_page"] == f"{base}/models/acme/reference"
    assert run.data.tags["carbonlabel.flags"] == ",".join(label["measurement"]["flags"])
    assert run.data.metrics["energy_per_unit_wh"] == label["results"]["energy_per_unit_wh"]["mean"]
    assert run.data.metrics["co2e_per_unit_g"] == label["carbon"]["co2e_per_unit_g"]["mean"]
    assert run.data.params["carbonlabel.task"] == "text-classification"
    got = artifact(client, run.info.run_id, envelope_path.name, tmp_path / "dl")
    assert got == envelope_path.read_bytes()


def bench_in_process(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """``carbonlabel bench ARGS --mlflow`` of the reference model in this process, in the current
    folder with a new key.pem: exit code and stderr."""
    from carbonlabel.cli import main

    if not Path("key.pem").exists():
        monkeypatch.setattr(sys, "argv", ["carbonlabel", "keygen", "--out", "key.pem"])
        main()
    argv = [*REFERENCE_BENCH, "--registry", "http://127.0.0.1:9", "--mlflow", *QUICK, *args]
    monkeypatch.setattr(sys, "argv", ["carbonlabel", *argv])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main()
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return int(exited.value.code or 0), err


def test_without_the_package_it_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError
    label = make_label(vendor="acme", model="m", registry=REGISTRY)
    with pytest.raises(MlflowUnavailable, match=r"pip install 'carbonlabel\[mlflow\]'"):
        log_label(label, b"{}")
    with pytest.raises(MlflowUnavailable):
        log_metrics({"energy_so_far_wh": 1.0}, run_id="r")
    # `bench --mlflow` stops before loading anything or measuring: one line, exit 1
    monkeypatch.chdir(tmp_path)
    code, err = bench_in_process([], monkeypatch, capsys)
    assert code == 1
    assert err.startswith("error: --mlflow: MLflow logging needs the mlflow package")
    assert "pip install 'carbonlabel[mlflow]'" in err
    assert not list(tmp_path.glob("*.json"))


def test_bench_mlflow_checks_the_store_before_measuring(
    tracking_uri: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuchscheme://x")
    code, err = bench_in_process([], monkeypatch, capsys)
    assert code == 1
    assert err.startswith("error: --mlflow: MLflow (nosuchscheme://x): cannot open the tracking")
    assert not list(tmp_path.glob("*.json"))  # nothing measured or written
    # chat-serving too: checked before any load is sent
    code, err = bench_in_process(["--task", "chat-serving"], monkeypatch, capsys)
    assert code == 1
    assert "--mlflow: MLflow (nosuchscheme://x): cannot open the tracking" in err


def test_track_logs_the_training_run_label(tracking_uri: str, tmp_path: Path) -> None:
    """``carbonlabel.track(..., mlflow=True)``: the run's label, into the run the training
    script has open (its own params stay)."""
    import time

    from cryptography.hazmat.primitives import serialization

    import carbonlabel
    from tests.tracking_fakes import ClockCounter

    key_path = tmp_path / "k.pem"
    key_path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with mlflow.start_run() as active:
        mlflow.log_param("lr", 0.01)
        with carbonlabel.track(
            task="text-classification",
            model="acme/fine-tune",
            key=key_path,
            registry=REGISTRY,
            batch_size=8,
            out_dir=tmp_path / "out",
            meters=[ClockCounter(power_w=220.0)],
            idle_s=0.02,
            segment_s=0.01,
            mlflow=True,
        ) as run:
            for _ in range(30):
                time.sleep(0.002)
                run.step()
    assert run.label is not None
    assert run.envelope_path is not None
    got = MlflowClient(tracking_uri).get_run(active.info.run_id)
    assert got.data.params["lr"] == "0.01"
    assert got.data.tags["carbonlabel.label_id"] == run.label["label_id"]
    assert got.data.tags["carbonlabel.kind"] == "training-run"
    assert got.data.metrics["total_energy_wh"] == run.label["results"]["total_energy_wh"]
    client = MlflowClient(tracking_uri)
    assert (
        artifact(client, active.info.run_id, run.envelope_path.name, tmp_path / "dl")
        == run.envelope_path.read_bytes()
    )


def test_watch_logs_each_operational_label(tracking_uri: str, tmp_path: Path) -> None:
    from bench_runner.label import Accelerator
    from bench_runner.tracking import engine_metrics as em
    from bench_runner.tracking.watch import Watcher
    from tests.test_watch import Clock, Engine, options
    from tests.tracking_fakes import ClockCounter

    engine = Engine()
    clock = Clock()

    def sleep(seconds: float) -> None:
        clock.now_s += seconds
        engine.serve(5)

    try:
        watcher = Watcher(
            options(tmp_path, mlflow=True, mlflow_experiment="production"),
            [ClockCounter(clock=clock)],
            em.EngineScraper(engine.url, em.mapping_for("vllm", {})),
            private_key=Ed25519PrivateKey.generate(),
            accelerator=Accelerator("none", "none", 0),
            clock=clock,
            sleep=sleep,
        )
        outcomes = list(watcher.run(periods=2))
    finally:
        engine.close()
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("production")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    labels = {o.label["label_id"]: o.label for o in outcomes if o.label}
    assert {r.data.tags["carbonlabel.label_id"] for r in runs} == set(labels)
    for r in runs:
        label = labels[r.data.tags["carbonlabel.label_id"]]
        figures = label["results"]["operational"]
        assert r.data.metrics["operational_energy_per_1k_requests_wh"] == pytest.approx(
            figures["energy_per_1k_requests_wh"]
        )
        assert r.data.tags["carbonlabel.kind"] == "operational"
