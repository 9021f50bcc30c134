"""CodeCarbon import and Hugging Face / SCI export (bench_runner.interop, bench_runner.interop_cli).

The fixtures under tests/data/codecarbon/ were written by CodeCarbon itself: five
``OfflineEmissionsTracker(country_iso_code="FRA", pue=1.2, save_to_file=True, ...)`` runs around a
2-second SHA-256 loop each, with codecarbon 2.5.1 (31 columns), 2.8.4 (32) and 3.3.2 (38). Rows
with GPU energy are derived from them here (the machine that wrote them has no GPU).
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from huggingface_hub import ModelCard
from typer.testing import CliRunner

from bench_runner import interop_cli
from bench_runner.cli import CliError
from bench_runner.codecarbon_csv import (
    CODECARBON_LAYOUTS,
    InteropError,
    parse_codecarbon_csv,
    read_codecarbon_csv,
)
from bench_runner.exports import export_hf, export_sci, merge_hf_into_readme
from bench_runner.interop import label_draft_from_codecarbon
from schemas import build_statement, check_results, sign_statement, validate_label
from schemas.results import component_energy_j

DATA = Path(__file__).parent / "data" / "codecarbon"
V2_31 = DATA / "emissions-v2.5.1.csv"
V2_32 = DATA / "emissions-v2.8.4.csv"
V3_38 = DATA / "emissions-v3.3.2.csv"
FIXTURES = [V2_31, V2_32, V3_38]
LABEL_ID = "0b7f6f8e-6c1f-4a57-9a43-3f1d2b8f6a10"
WORKLOAD = {
    "dataset_id": "acme/prompts-v1",
    "dataset_sha256": "cd" * 32,
    "samples": 1000,
    "batch_size": 8,
    "precision": "fp16",
}
J_PER_KWH = 3.6e6


def draft(rows: Any, **overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "vendor": "acme",
        "model": "tiny-bert",
        "revision": "v1",
        "task": "text-classification",
        "phase": "inference",
        "units_per_row": 1000,
        "registry": "https://registry.example/",
        "model_sha256": "ab" * 32,
        "workload": WORKLOAD,
        "label_id": LABEL_ID,
    }
    kwargs.update(overrides)
    return label_draft_from_codecarbon(rows, **kwargs)


def table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def to_csv(header: list[str], rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def card_data(content: str) -> Any:
    """What huggingface_hub parses from a model card's front matter."""
    return ModelCard(content).data


def trial_energy_j(trial: dict[str, Any], name: str) -> float:
    (component,) = [c for c in trial["components"] if c["name"] == name]
    return component_energy_j(component, trial["t_start_s"], trial["t_end_s"])


# --- reading ----------------------------------------------------------------------------------


def test_fixture_headers_are_the_known_layouts_in_codecarbon_order() -> None:
    assert len(CODECARBON_LAYOUTS["v3 (38 columns)"]) == 38
    assert len(CODECARBON_LAYOUTS["v2 (31 columns)"]) == 31
    assert tuple(table(V2_31)[0]) == CODECARBON_LAYOUTS["v2 (31 columns)"]
    assert tuple(table(V2_32)[0]) == CODECARBON_LAYOUTS["v2.7 (32 columns)"]
    assert tuple(table(V3_38)[0]) == CODECARBON_LAYOUTS["v3 (38 columns)"]
    assert [read_codecarbon_csv(p)[0].layout for p in FIXTURES] == [
        "v2 (31 columns)",
        "v2.7 (32 columns)",
        "v3 (38 columns)",
    ]


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_columns_are_found_by_name_not_position(path: Path) -> None:
    header, rows = table(path)
    shuffled = header[:]
    random.Random(7).shuffle(shuffled)
    assert shuffled != header
    again = parse_codecarbon_csv(to_csv(shuffled, rows), str(path))
    original = read_codecarbon_csv(path)
    assert [r.cpu_energy_kwh for r in again] == [r.cpu_energy_kwh for r in original]
    assert [(r.duration_s, r.pue, r.emissions_kg, r.ram_energy_kwh) for r in again] == [
        (r.duration_s, r.pue, r.emissions_kg, r.ram_energy_kwh) for r in original
    ]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda h, r: ([c for c in h if c != "pue"], r), "missing column(s) pue"),
        (lambda h, r: ([c for c in h if c != "ram_energy"], r), "missing column(s) ram_energy"),
        (lambda h, r: ([*h, "joules"], [{**x, "joules": "1"} for x in r]), "unknown column(s)"),
        (lambda h, r: (h, [{**x, "cpu_energy": "n/a"} for x in r]), "'n/a' is not a number"),
        (lambda h, r: (h, [{**x, "duration": ""} for x in r]), "duration is empty"),
        (lambda h, r: (h, [{**x, "gpu_energy": "-1"} for x in r]), "gpu_energy is negative"),
        (lambda h, r: (h, [{**x, "pue": "0.9"} for x in r]), "pue must be >= 1"),
        (lambda h, r: (h, []), "no data rows"),
    ],
)
def test_bad_files_raise_one_clear_error(mutate: Any, message: str) -> None:
    header, rows = table(V3_38)
    new_header, new_rows = mutate(header, rows)
    with pytest.raises(InteropError) as info:
        parse_codecarbon_csv(to_csv(new_header, new_rows), "e.csv")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_empty_and_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InteropError, match="empty"):
        read_codecarbon_csv(tmp_path / "empty.csv")
    with pytest.raises(InteropError, match="cannot read"):
        read_codecarbon_csv(tmp_path / "absent.csv")
    v2_header = ",".join(CODECARBON_LAYOUTS["v2 (31 columns)"])
    with pytest.raises(InteropError, match="3 fields, the header has 31"):
        parse_codecarbon_csv(v2_header + "\n1,2,3\n")


# --- the draft --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_draft_figures_by_hand(path: Path) -> None:
    _, raw = table(path)
    label = draft(read_codecarbon_csv(path))
    assert validate_label(label) == []
    assert check_results(label) == []
    pue = float(raw[0]["pue"])
    assert pue == 1.2
    assert label["carbon"]["pue"] == pue

    per_unit_wh = []
    for trial, row in zip(label["traces"]["trials"], raw, strict=True):
        # kWh -> J, PUE divided out: the label holds IT energy.
        cpu_j = float(row["cpu_energy"]) * J_PER_KWH / pue
        ram_j = float(row["ram_energy"]) * J_PER_KWH / pue
        assert trial_energy_j(trial, "cpu") == pytest.approx(cpu_j, rel=1e-12)
        assert trial_energy_j(trial, "dram") == pytest.approx(ram_j, rel=1e-12)
        assert trial["t_end_s"] - trial["t_start_s"] == pytest.approx(float(row["duration"]))
        assert trial["units"] == 1000
        it_j = float(row["energy_consumed"]) * J_PER_KWH / pue
        per_unit_wh.append(it_j / 1000 * 1000 / 3600)
    assert label["results"]["energy_per_unit_wh"]["mean"] == pytest.approx(
        math.fsum(per_unit_wh) / len(per_unit_wh), rel=1e-9
    )
    # the intensity CodeCarbon used: emissions (kg) x 1000 / energy_consumed (kWh)
    intensity = (
        math.fsum(float(r["emissions"]) for r in raw)
        * 1000
        / math.fsum(float(r["energy_consumed"]) for r in raw)
    )
    assert label["carbon"]["intensity_g_per_kwh"] == pytest.approx(intensity, rel=1e-12)
    # IT energy x PUE x intensity gives back CodeCarbon's own emissions, in grams
    total_units = 1000 * len(raw)
    total_g = label["carbon"]["co2e_per_unit_g"]["mean"] * total_units / 1000
    assert total_g == pytest.approx(math.fsum(float(r["emissions"]) for r in raw) * 1000, rel=1e-9)

    assert label["carbon"]["zone"] == "FR"
    assert label["carbon"]["dataset"]["name"] == "CodeCarbon"
    assert label["carbon"]["dataset"]["version"] == raw[0]["codecarbon_version"]
    assert label["provenance"]["source"] == "codecarbon-import"
    assert label["provenance"]["environment"]["frameworks"] == {
        "codecarbon": raw[0]["codecarbon_version"]
    }
    assert {"imported", "estimated"} <= set(label["measurement"]["flags"])
    assert label["measurement"]["components"] == [
        {"name": "cpu", "method": "estimate"},
        {"name": "dram", "method": "estimate"},
    ]
    assert label["results"]["idle_power_w"] == 0.0  # not measured by CodeCarbon
    assert label["traces"]["idle"]["t_end_s"] == label["traces"]["idle"]["t_start_s"]
    assert label["hardware"]["hardware_class"] == "cpu-x86-64"
    assert label["hardware"]["ram_bytes"] == round(float(raw[0]["ram_total_size"]) * 2**30)


def test_v2_and_v3_files_of_the_same_runs_give_the_same_figures() -> None:
    header, rows = table(V3_38)
    as_v2 = parse_codecarbon_csv(to_csv(list(CODECARBON_LAYOUTS["v2 (31 columns)"]), rows))
    as_v3 = read_codecarbon_csv(V3_38)
    assert as_v2[0].layout == "v2 (31 columns)"
    assert len(header) == 38
    label_v2, label_v3 = draft(as_v2), draft(as_v3)
    for key in ("results", "traces", "carbon", "hardware", "measurement"):
        assert label_v2[key] == label_v3[key], key


def _with_gpu(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    out = []
    for i, row in enumerate(rows):
        gpu_kwh = 1.2 * 300.0 * float(row["duration"]) / J_PER_KWH * (1 + i / 100)
        total = float(row["cpu_energy"]) + gpu_kwh + float(row["ram_energy"])
        intensity = float(row["emissions"]) / float(row["energy_consumed"])
        out.append(
            {
                **row,
                "gpu_energy": repr(gpu_kwh),
                "gpu_count": "1",
                "gpu_model": "1 x NVIDIA H100 80GB HBM3",
                "energy_consumed": repr(total),
                "emissions": repr(total * intensity),
            }
        )
    return out


def test_gpu_rows_become_nvml_counter_readings() -> None:
    header, rows = table(V3_38)
    gpu_rows = _with_gpu(rows)
    label = draft(parse_codecarbon_csv(to_csv(header, gpu_rows)))
    assert validate_label(label) == []
    assert check_results(label) == []
    assert label["hardware"]["hardware_class"] == "nvidia-h100-sxm-80gb"
    assert label["hardware"]["accelerator"] == {
        "vendor": "nvidia",
        "model_name": "NVIDIA H100 80GB HBM3",
        "count": 1,
    }
    assert label["measurement"]["components"][0] == {"name": "gpu", "method": "nvml-energy-counter"}
    previous_end = 0.0
    for trial, row in zip(label["traces"]["trials"], gpu_rows, strict=True):
        (gpu,) = [c for c in trial["components"] if c["name"] == "gpu"]
        assert gpu["counter_start_j"] == pytest.approx(previous_end)
        delta = gpu["counter_end_j"] - gpu["counter_start_j"]
        assert delta == pytest.approx(float(row["gpu_energy"]) * J_PER_KWH / 1.2, rel=1e-12)
        previous_end = gpu["counter_end_j"]


def test_training_draft_extrapolates_a_run_and_cpu_method_override() -> None:
    label = draft(
        read_codecarbon_csv(V2_32),
        phase="training",
        units_per_row=50,
        declared_total_steps=10_000,
        cpu_method="rapl",
    )
    assert validate_label(label) == []
    assert check_results(label) == []
    assert label["results"]["functional_unit"] == "step"
    assert label["results"]["steps_measured"] == 250
    assert label["benchmark"]["workload"]["training_steps"] == 250
    assert label["carbon"]["co2e_per_run_g"] == pytest.approx(
        label["carbon"]["co2e_per_unit_g"]["mean"] * 10_000
    )
    cpu = label["traces"]["trials"][0]["components"][0]
    assert cpu["method"] == "rapl"
    assert "counter_start_j" in cpu


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"units_per_row": 0}, "integer >= 1"),
        ({"zone": "France"}, "not ISO 3166-1"),
        ({"hardware_class": "nvidia-b200"}, "unknown hardware class"),
        ({"cpu_method": "nvml-energy-counter"}, "rapl or estimate"),
        ({"vendor": "Acme Corp"}, "not a valid label: /"),
        ({"phase": "serving"}, "inference or training"),
    ],
)
def test_draft_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InteropError) as info:
        draft(read_codecarbon_csv(V3_38), **kwargs)
    assert message in str(info.value)


def test_draft_needs_two_rows_one_pue_and_one_row_per_run() -> None:
    header, rows = table(V3_38)
    with pytest.raises(InteropError, match="at least 2 trials"):
        draft(parse_codecarbon_csv(to_csv(header, rows[:1])))
    mixed = [{**rows[0], "pue": "1.5"}, *rows[1:]]
    with pytest.raises(InteropError, match="different PUE"):
        draft(parse_codecarbon_csv(to_csv(header, mixed)))
    flushed = [rows[0], {**rows[1], "run_id": rows[0]["run_id"]}, *rows[2:]]
    with pytest.raises(InteropError, match="cumulative"):
        draft(parse_codecarbon_csv(to_csv(header, flushed)))
    unknown_country = [{**r, "country_iso_code": "XXX"} for r in rows]
    with pytest.raises(InteropError, match="pass --zone"):
        draft(parse_codecarbon_csv(to_csv(header, unknown_country)))
    assert draft(parse_codecarbon_csv(to_csv(header, unknown_country)), zone="FR")["carbon"][
        "zone"
    ] == ("FR")


# --- exports ----------------------------------------------------------------------------------


def test_hf_block_parses_with_huggingface_hub() -> None:
    label = draft(read_codecarbon_csv(V3_38))
    co2 = card_data(export_hf(label)).co2_eq_emissions
    assert co2["emissions"] == label["carbon"]["co2e_per_unit_g"]["mean"]  # grams / 1k inferences
    assert co2["source"] == f"carbonlabel {LABEL_ID}"
    assert co2["geographical_location"] == "FR"
    assert co2["hardware_used"] == "AMD EPYC (CPU only, 2 cores)"
    assert "training_type" not in co2
    with pytest.raises(InteropError, match="training labels only"):
        export_hf(label, training_type="fine-tuning")


def test_hf_block_for_training_is_per_run_with_training_type() -> None:
    header, rows = table(V3_38)
    label = draft(
        parse_codecarbon_csv(to_csv(header, _with_gpu(rows))),
        phase="training",
        units_per_row=20,
        declared_total_steps=5000,
    )
    co2 = card_data(export_hf(label, training_type="fine-tuning")).co2_eq_emissions
    assert co2["emissions"] == label["carbon"]["co2e_per_run_g"]
    assert co2["training_type"] == "fine-tuning"
    assert co2["hardware_used"] == "1 x NVIDIA H100 80GB HBM3"


README = """---
# the card's own comment stays
license: apache-2.0
co2_eq_emissions:
  emissions: 999
  source: an older estimate
language:
- en
tags:
  - text-classification
---

# tiny-bert

Body text with --- inside.
"""


def test_readme_merge_keeps_other_keys_comments_and_body() -> None:
    label = draft(read_codecarbon_csv(V3_38))
    merged = merge_hf_into_readme(README, label)
    card = card_data(merged)
    assert card.license == "apache-2.0"
    assert card.language == ["en"]
    assert card.tags == ["text-classification"]
    assert card.co2_eq_emissions["emissions"] == label["carbon"]["co2e_per_unit_g"]["mean"]
    assert "an older estimate" not in merged
    assert "# the card's own comment stays" in merged
    assert merged.endswith("---\n\n# tiny-bert\n\nBody text with --- inside.\n")
    assert merge_hf_into_readme(merged, label) == merged  # idempotent

    bare = merge_hf_into_readme("# no front matter\n", label)
    assert bare.endswith("---\n# no front matter\n")
    assert card_data(bare).co2_eq_emissions["source"] == f"carbonlabel {LABEL_ID}"


def test_sci_by_hand() -> None:
    label = draft(read_codecarbon_csv(V2_31))
    sci = export_sci(label)
    mean_wh = label["results"]["energy_per_unit_wh"]["mean"]
    e_kwh = mean_wh / 1000 * 1.2  # SCI's E includes the data centre's PUE
    intensity = label["carbon"]["intensity_g_per_kwh"]
    m_g = label["carbon"]["embodied"]["co2e_per_unit_g"]  # the label's embodied figure
    assert m_g > 0
    assert sci["terms"] == {
        "E_kwh": pytest.approx(e_kwh, rel=1e-12),
        "I_g_per_kwh": intensity,
        "M_g": m_g,
        "R": "1000 inferences",
    }
    assert sci["sci_g_per_unit"] == pytest.approx(e_kwh * intensity + m_g, rel=1e-12)
    assert sci["sci_g_per_unit"] == pytest.approx(label["carbon"]["co2e_per_unit_g"]["mean"] + m_g)
    assert sci["label_id"] == LABEL_ID
    assert any("M is the label's carbon.embodied" in note for note in sci["notes"])
    del label["carbon"]["embodied"]  # a label from before the block
    without = export_sci(label)
    assert without["terms"]["M_g"] == 0.0
    assert without["sci_g_per_unit"] == pytest.approx(e_kwh * intensity, rel=1e-12)
    assert any("reports no embodied emissions" in note for note in without["notes"])
    with_m = export_sci(label, embodied_g=0.5)
    assert with_m["sci_g_per_unit"] == pytest.approx(e_kwh * intensity + 0.5, rel=1e-12)
    assert with_m["terms"]["M_g"] == 0.5
    training = export_sci(draft(read_codecarbon_csv(V2_31), phase="training", units_per_row=10))
    assert training["terms"]["R"] == "1 training step"
    with pytest.raises(InteropError):
        export_sci(label, embodied_g=-1.0)


# --- the commands -----------------------------------------------------------------------------


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    app.command("import-codecarbon")(interop_cli.import_codecarbon)
    app.command("export")(interop_cli.export)
    return app


IMPORT_ARGS = [
    "--vendor",
    "acme",
    "--model",
    "acme/tiny-bert",
    "--revision",
    "v1",
    "--task",
    "text-classification",
    "--phase",
    "inference",
    "--units-per-row",
    "1000",
    "--model-sha256",
    "ab" * 32,
    "--dataset-id",
    "acme/prompts-v1",
    "--dataset-sha256",
    "cd" * 32,
    "--samples",
    "1000",
    "--batch-size",
    "8",
    "--precision",
    "fp16",
    "--registry",
    "https://registry.example",
]


def cli_error(result: Any) -> str:
    assert result.exit_code != 0
    assert isinstance(result.exception, CliError), result.output
    message = str(result.exception)
    assert "\n" not in message
    return message


def test_cli_import_then_export_from_an_envelope(cli: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    draft_path = tmp_path / "draft.json"
    result = runner.invoke(
        cli, ["import-codecarbon", str(V3_38), *IMPORT_ARGS, "--out", str(draft_path)]
    )
    assert result.exit_code == 0, result.output
    label = json.loads(draft_path.read_text())
    assert validate_label(label) == []
    assert check_results(label) == []
    assert label["registry"] == "https://registry.example"

    envelope = sign_statement(build_statement(label), Ed25519PrivateKey.generate())
    envelope_path = tmp_path / "draft.dsse.json"
    envelope_path.write_text(json.dumps(envelope))
    hf = runner.invoke(cli, ["export", str(envelope_path), "--format", "hf"])
    assert hf.exit_code == 0, hf.output
    co2 = card_data(hf.stdout).co2_eq_emissions
    assert co2["emissions"] == label["carbon"]["co2e_per_unit_g"]["mean"]

    sci_path = tmp_path / "sci.json"
    sci = runner.invoke(cli, ["export", str(draft_path), "-f", "sci", "--out", str(sci_path)])
    assert sci.exit_code == 0, sci.output
    assert json.loads(sci_path.read_text())["terms"]["R"] == "1000 inferences"

    readme = tmp_path / "README.md"
    readme.write_text(README)
    merged = runner.invoke(cli, ["export", str(draft_path), "-f", "hf", "--readme", str(readme)])
    assert merged.exit_code == 0, merged.output
    assert card_data(readme.read_text()).license == "apache-2.0"


def test_cli_failures_are_one_line_errors(cli: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    absent = runner.invoke(cli, ["import-codecarbon", str(tmp_path / "no.csv"), *IMPORT_ARGS])
    assert "cannot read" in cli_error(absent)
    one_row = tmp_path / "one.csv"
    one_row.write_text("".join(V3_38.read_text().splitlines(keepends=True)[:2]))
    assert "at least 2 trials" in cli_error(
        runner.invoke(cli, ["import-codecarbon", str(one_row), *IMPORT_ARGS])
    )
    both = [*IMPORT_ARGS, "--dataset-file", str(V3_38)]
    assert "exactly one" in cli_error(runner.invoke(cli, ["import-codecarbon", str(V3_38), *both]))

    bad = tmp_path / "bad.json"
    bad.write_text('{"label_id": "x"}')
    assert "not a valid label" in cli_error(runner.invoke(cli, ["export", str(bad), "-f", "hf"]))
    bad.write_text('{"payloadType": "text/plain", "payload": "", "signatures": []}')
    assert "DSSE" in cli_error(runner.invoke(cli, ["export", str(bad), "-f", "sci"]))
    assert "hf or sci" in cli_error(runner.invoke(cli, ["export", str(V3_38), "-f", "csv"]))
    assert "not JSON" in cli_error(runner.invoke(cli, ["export", str(V3_38), "-f", "sci"]))
