"""`carbonlabel bench --model hf:...` end to end on tiny local models: the real loading,
tokenisation, generation and scoring; the signed label passes the contract and a running registry
stores it with its quality and token figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from carbonlabel.cli import main
from schemas import check_results, validate_statement
from schemas.contract import semantic_issues
from schemas.dsse import decode_statement, parse_envelope
from tests.helpers import ADMIN_TOKEN
from tests.hf_models import TinyModels, make_hub_cache
from tests.runner.test_bench_e2e import QUICK, carbonlabel
from tests.server import running_server

LMEVAL_GSM8K = Path(__file__).parents[1] / "data" / "lmeval" / "gsm8k-v0.4.13.json"
REGISTRY = ["--registry", "http://127.0.0.1:9"]


def run_cli(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """``carbonlabel ARGS`` in this process (torch and transformers stay imported)."""
    monkeypatch.setattr(sys, "argv", ["carbonlabel", *args])
    code: Any = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err, captured.err
    return int(code or 0), captured.out, captured.err


def statement_of(envelope: Path) -> dict[str, Any]:
    statement = decode_statement(parse_envelope(envelope.read_bytes()))
    assert validate_statement(statement) == []
    assert semantic_issues(statement) == []
    assert check_results(statement["predicate"]) == []
    return statement


def bench_args(task: str, model: str, model_id: str, *extra: str) -> list[str]:
    return [
        "bench",
        "--task",
        task,
        "--model",
        model,
        "--model-id",
        model_id,
        "--key",
        "key.pem",
        "--out",
        "out",
        *extra,
    ]


def test_bench_hf_generation_from_the_hub_cache_to_a_registry(
    tiny_models: TinyModels,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hf_home = tmp_path / "hf-home"
    commit = make_hub_cache(hf_home, "acme/tiny-gpt", tiny_models.gen)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert carbonlabel("db", "upgrade", "--database-url", url, cwd=tmp_path).returncode == 0
    token = carbonlabel(
        "vendor", "create", "acme", "--database-url", url, cwd=tmp_path
    ).stdout.strip()
    carbonlabel("keygen", "--out", "key.pem", cwd=tmp_path)
    quick = [arg for arg in QUICK if arg != "--quiet"]
    with running_server(url, ADMIN_TOKEN) as base:
        env = {
            "CARBONLABEL_TOKEN": token,
            "HF_HOME": str(hf_home),
            "HF_HUB_OFFLINE": "1",
        }
        registered = carbonlabel(
            "key", "register", "acme", "--key", "key.pem", "--registry", base, cwd=tmp_path, env=env
        )
        assert registered.returncode == 0, registered.stderr
        result = carbonlabel(
            *bench_args(
                "text-generation",
                "hf:acme/tiny-gpt",
                "acme/tiny-gpt",
                "--samples",
                "16",
                "--max-new-tokens",
                "8",
                "--quality-from",
                str(LMEVAL_GSM8K),
                "--submit",
                base,
                *quick,
            ),
            cwd=tmp_path,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        err = result.stderr
        assert "task text-generation (inference); model hf:acme/tiny-gpt (" in err
        assert "data gsm8k-test, 16 of 1,319 items" in err
        assert "quality: scored 16/16 items" in err
        assert "Wh per 1,000 requests (95% CI" in err
        assert "energy per output token:" in err
        assert "output tokens/s" in err
        assert "quality: gsm8k-exact-match " in err
        assert "declared (not measured here): exact_match" in err
        assert "stored: http://127.0.0.1" in err
        assert "/models/acme/tiny-gpt (label " in err  # the model page first
        statement = statement_of(tmp_path / result.stdout.strip().splitlines()[-1])
        label = statement["predicate"]
        stored = httpx.get(f"{base}/v1/labels/{label['label_id']}").json()
        page = httpx.get(f"{base}/models/acme/tiny-gpt").text  # shown

        # a second model, given as a local directory, from this process
        monkeypatch.setenv("CARBONLABEL_TOKEN", token)
        monkeypatch.chdir(tmp_path)
        code, out, _err = run_cli(
            bench_args(
                "text-classification",
                f"hf:{tiny_models.cls77}",
                "acme/tiny-bert",
                "--samples",
                "40",
                "--submit",
                base,
                *QUICK,
            ),
            capsys,
            monkeypatch,
        )
        assert code == 0, _err
        classifier = statement_of(tmp_path / out.strip().splitlines()[-1])["predicate"]
        stored_classifier = httpx.get(f"{base}/v1/labels/{classifier['label_id']}").json()

    assert label["benchmark"]["suite"] == {"name": "carbonlabel-suite", "version": "2"}
    assert label["results"]["functional_unit"] == "1k-requests"
    assert label["model"]["hub_id"] == "acme/tiny-gpt"
    assert label["model"]["hub_revision"] == commit
    assert label["model"]["revision"] == commit  # no --revision: the snapshot's commit
    assert label["model"]["dtype"] == "float32"
    workload = label["benchmark"]["workload"]
    assert workload["samples"] == 16
    assert workload["max_new_tokens"] == 8
    assert workload["stop"] == "eos-or-cap"
    assert workload["prompt_template"] == "plain"
    for trial in label["traces"]["trials"]:
        assert 0 < trial["output_tokens"] <= 8 * trial["units"]
        assert trial["input_tokens"] > 0
    measured = label["quality"]["measured"]
    assert len(measured["outcomes"]) == 16
    assert label["quality"]["declared"][0]["source"] == "lm-evaluation-harness"

    assert stored["suite"] == "2"
    assert stored["quality"]["status"] == "measured"
    assert stored["quality"]["items"] == 16
    assert stored["quality"]["value"] == pytest.approx(measured["value"])
    assert stored["quality"]["declared"][0]["declared"] is True
    assert stored["energy_per_output_token_j"] == pytest.approx(
        label["results"]["energy_per_output_token_j"]["mean"]
    )
    assert stored["label"]["results"]["output_tokens_total"] == sum(
        t["output_tokens"] for t in label["traces"]["trials"]
    )
    assert stored["label"]["results"]["input_tokens_total"] == sum(
        t["input_tokens"] for t in label["traces"]["trials"]
    )

    # the model page shows the measured figure beside the energy, and the declared one flagged
    assert "GSM8K exact match, 16 items, measured in the same run" in page
    assert f"{measured['value']:.1%}" in page
    assert "J per generated token" in page
    assert "tag-declared" in page

    assert classifier["results"]["functional_unit"] == "1k-inferences"
    assert classifier["benchmark"]["workload"]["max_input_tokens"] == 128
    assert classifier["model"]["revision"] == "main"
    assert "hub_id" not in classifier["model"]
    assert stored_classifier["quality"]["status"] == "measured"
    assert stored_classifier["quality"]["metric"] == "accuracy"
    assert stored_classifier["quality"]["items"] == 40
    assert "input_tokens_total" in stored_classifier["label"]["results"]


def test_bench_hf_classifier_without_banking77_labels(
    tiny_models: TinyModels,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_cli(["keygen", "--out", "key.pem"], capsys, monkeypatch)[0] == 0
    args = bench_args(
        "text-classification",
        f"hf:{tiny_models.cls4}",
        "acme/generic-bert",
        "--revision",
        "v3",
        "--samples",
        "8",
        *REGISTRY,
        *QUICK,
    )
    code, out, err = run_cli(args, capsys, monkeypatch)
    assert code == 0, err
    assert "quality: none measured: the model's 4 labels (LABEL_0" in err
    label = statement_of(tmp_path / out.strip().splitlines()[-1])["predicate"]
    assert label["model"]["revision"] == "v3"
    assert label["quality"] == {
        "unavailable_reason": (
            "the model's 4 labels (LABEL_0, LABEL_1, LABEL_2, ...) are not BANKING77's 77 intents"
        )
    }
    assert all("output_tokens" not in t for t in label["traces"]["trials"])
    assert all(t["input_tokens"] > 0 for t in label["traces"]["trials"])


def test_bench_hf_missing_model_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run_cli(["keygen", "--out", "key.pem"], capsys, monkeypatch)
    code, _out, err = run_cli(
        bench_args("text-generation", "hf:gpt2", "acme/gpt2", *REGISTRY, *QUICK),
        capsys,
        monkeypatch,
    )
    assert code == 1
    assert err.splitlines() == [
        f"error: model 'gpt2' is not in the local Hugging Face cache "
        f"({tmp_path / 'empty-hf-home' / 'hub'}); download it first: "
        "hf download gpt2 --revision main (or pass a local directory)"
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--samples", "8"], "error: --samples and --max-new-tokens are for hf: models"),
        (["--quality-from", "nope.json"], "error: --quality-from is for hf: models"),
    ],
)
def test_bench_option_errors(
    extra: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    run_cli(["keygen", "--out", "key.pem"], capsys, monkeypatch)
    args = bench_args("text-classification", "reference", "acme/reference", *extra, *REGISTRY)
    code, _out, err = run_cli([*args, *QUICK], capsys, monkeypatch)
    assert code == 1
    assert err.splitlines()[0].startswith(message)
    assert len(err.splitlines()) == 1


def test_bench_quality_from_a_missing_file(
    tiny_models: TinyModels,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    run_cli(["keygen", "--out", "key.pem"], capsys, monkeypatch)
    args = bench_args(
        "text-generation", f"hf:{tiny_models.gen}", "acme/g", "--quality-from", "nope.json"
    )
    code, _out, err = run_cli([*args, *REGISTRY, *QUICK], capsys, monkeypatch)
    assert code == 1
    assert err.splitlines() == ["error: lm-eval results file not found: nope.json"]


@pytest.mark.parametrize(
    ("model", "task", "phase", "unit"),
    [
        ("gen", "text-generation", "training", "step"),
        ("vit", "image-classification", "inference", "1k-inferences"),
        ("vit", "image-classification", "training", "step"),
    ],
)
def test_bench_hf_other_tasks_and_phases_make_valid_labels(
    model: str,
    task: str,
    phase: str,
    unit: str,
    tiny_models: TinyModels,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    run_cli(["keygen", "--out", "key.pem"], capsys, monkeypatch)
    args = bench_args(
        task, f"hf:{getattr(tiny_models, model)}", "acme/tiny", "--phase", phase, "--samples", "16"
    )
    code, out, err = run_cli([*args, *REGISTRY, *QUICK], capsys, monkeypatch)
    assert code == 0, err
    label = statement_of(tmp_path / out.strip().splitlines()[-1])["predicate"]
    assert label["benchmark"]["suite"]["version"] == "2"
    assert label["results"]["functional_unit"] == unit
    assert "unavailable_reason" in label["quality"]
    assert label["model"]["parameter_count"] > 0
    if task == "image-classification":
        assert label["benchmark"]["workload"]["image_size_px"] == 32
        assert all("input_tokens" not in t for t in label["traces"]["trials"])
    else:
        assert label["benchmark"]["workload"]["max_input_tokens"] == 256
        assert all(t["input_tokens"] > 0 for t in label["traces"]["trials"])


def test_bench_plugin_factory_still_makes_a_suite_1_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_tiny_models.py").write_text(
        "import torch\n\n"
        "def classifier(task, phase, device):\n"
        "    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(\n"
        "        torch.nn.Embedding(8192, 4), torch.nn.Flatten(), torch.nn.Linear(4 * 128, 4)\n"
        "    )\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    run_cli(["keygen", "--out", "key.pem"], capsys, monkeypatch)
    args = bench_args(
        "text-classification", "my_tiny_models:classifier", "acme/plugin", *REGISTRY, *QUICK
    )
    code, out, err = run_cli(args, capsys, monkeypatch)
    sys.modules.pop("my_tiny_models", None)
    assert code == 0, err
    label = statement_of(tmp_path / out.strip().splitlines()[-1])["predicate"]
    assert label["benchmark"]["suite"]["version"] == "1"
    assert label["model"] == {"id": "acme/plugin", "revision": "v1"}
    assert label["benchmark"]["workload"]["dataset_id"] == "text-classification-v1"
    assert "quality" not in label
    assert all(
        set(t) == {"index", "units", "t_start_s", "t_end_s", "components"}
        for t in label["traces"]["trials"]
    )
    assert json.loads(json.dumps(label["results"]))["functional_unit"] == "1k-inferences"
    assert "tokens:" not in err
