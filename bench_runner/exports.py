"""Label figures out, in other tools' formats: a Hugging Face model card's ``co2_eq_emissions``
block (:func:`export_hf`, :func:`merge_hf_into_readme`) and a Software Carbon Intensity
(ISO/IEC 21031:2024) figure (:func:`export_sci`). ``docs/interop.md`` explains each mapping.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import yaml

from bench_runner.codecarbon_csv import InteropError

__all__ = [
    "HF_TRAINING_TYPES",
    "export_hf",
    "export_sci",
    "hf_co2_eq_emissions",
    "merge_hf_into_readme",
]


HF_TRAINING_TYPES = ("pre-training", "fine-tuning")


def _hf_basis(label: Mapping[str, Any]) -> tuple[float, str]:
    carbon = label["carbon"]
    if label["benchmark"]["phase"] == "inference":
        return float(carbon["co2e_per_unit_g"]["mean"]), "per 1000 inferences"
    if "co2e_per_run_g" in carbon:
        steps = label["results"].get("declared_total_steps")
        return float(carbon["co2e_per_run_g"]), f"per training run of {steps} steps (extrapolated)"
    return float(carbon["co2e_per_unit_g"]["mean"]), "per training step"


def _hardware_used(label: Mapping[str, Any]) -> str:
    hardware = label["hardware"]
    accelerator = hardware["accelerator"]
    if accelerator.get("count", 0) > 0:
        return f"{accelerator['count']} x {accelerator['model_name']}"
    return f"{hardware['cpu']['model_name']} (CPU only, {hardware['cpu']['cores']} cores)"


def hf_co2_eq_emissions(
    label: Mapping[str, Any], *, training_type: str | None = None
) -> dict[str, Any]:
    """The model-card ``co2_eq_emissions`` mapping (``emissions`` in grams CO2e).

    Inference labels give grams per 1,000 inferences; training labels grams per declared run when
    the label extrapolates one, else grams per step. ``training_type`` (pre-training or
    fine-tuning) is written for training labels only; the label does not record it.
    """
    if training_type is not None:
        if training_type not in HF_TRAINING_TYPES:
            raise InteropError(f"training type must be one of {', '.join(HF_TRAINING_TYPES)}")
        if label["benchmark"]["phase"] != "training":
            raise InteropError("a training type applies to training labels only")
    emissions, _ = _hf_basis(label)
    block: dict[str, Any] = {
        "emissions": emissions,
        "source": f"carbonlabel {label['label_id']}",
    }
    if training_type is not None:
        block["training_type"] = training_type
    block["geographical_location"] = label["carbon"]["zone"]
    block["hardware_used"] = _hardware_used(label)
    return block


def _hf_yaml_lines(label: Mapping[str, Any], training_type: str | None) -> list[str]:
    block = hf_co2_eq_emissions(label, training_type=training_type)
    _, basis = _hf_basis(label)
    dumped = yaml.safe_dump(
        {"co2_eq_emissions": block}, sort_keys=False, allow_unicode=True, width=1000
    )
    comment = f"# carbonlabel: co2_eq_emissions.emissions is grams CO2e {basis}"
    return [comment, *dumped.rstrip("\n").split("\n")]


def export_hf(label: Mapping[str, Any], *, training_type: str | None = None) -> str:
    """A model-card YAML front matter holding only ``co2_eq_emissions`` (``---`` delimited)."""
    return "---\n" + "\n".join(_hf_yaml_lines(label, training_type)) + "\n---\n"


# The same front-matter pattern huggingface_hub's RepoCard uses.
_FRONT_MATTER = re.compile(r"^(\s*---[\r\n]+)([\S\s]*?)([\r\n]+---(\r\n|\n|$))")
_TOP_KEY = re.compile(r"^co2_eq_emissions\s*:")


def merge_hf_into_readme(
    readme: str, label: Mapping[str, Any], *, training_type: str | None = None
) -> str:
    """``readme`` with its front matter's ``co2_eq_emissions`` set from ``label``.

    Every other line of the front matter and the whole body stay as they were; an existing
    ``co2_eq_emissions`` block (and the carbonlabel comment above it) is replaced. A README with
    no front matter gets one.
    """
    new_lines = _hf_yaml_lines(label, training_type)
    match = _FRONT_MATTER.search(readme)
    if match is None:
        return export_hf(label, training_type=training_type) + readme
    newline = "\r\n" if "\r\n" in match.group(0) else "\n"
    old_yaml = match.group(2)
    try:
        old_data = yaml.safe_load(old_yaml)
    except yaml.YAMLError as exc:
        raise InteropError(f"the README's front matter is not YAML: {exc}") from None
    if old_data is None:
        old_data = {}
    if not isinstance(old_data, dict):
        raise InteropError("the README's front matter is not a YAML mapping")

    kept: list[str] = []
    lines = old_yaml.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if _TOP_KEY.match(line):
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i][:1] in (" ", "\t")):
                i += 1
            continue
        if line.startswith("# carbonlabel: co2_eq_emissions"):
            i += 1
            continue
        kept.append(line)
        i += 1
    while kept and not kept[-1].strip():
        kept.pop()
    new_yaml = newline.join([*kept, *new_lines])

    expected = {k: v for k, v in old_data.items() if k != "co2_eq_emissions"}
    expected["co2_eq_emissions"] = hf_co2_eq_emissions(label, training_type=training_type)
    try:
        merged = yaml.safe_load(new_yaml)
    except yaml.YAMLError:
        merged = None
    if merged != expected:
        # The text merge would change another key (unusual YAML): write the mapping out again.
        new_yaml = yaml.safe_dump(expected, sort_keys=False, allow_unicode=True).rstrip("\n")
        new_yaml = newline.join([new_lines[0], *new_yaml.split("\n")])
    start, end = match.span(2)
    return readme[:start] + new_yaml + readme[end:]


def export_sci(label: Mapping[str, Any], *, embodied_g: float | None = None) -> dict[str, Any]:
    """Software Carbon Intensity, SCI = (E x I) + M per R (ISO/IEC 21031:2024).

    E is the label's mean gross energy per functional unit in kWh times the label's PUE (SCI
    asks E to include the data centre's efficiency), I its location-based grid intensity, M the
    embodied emissions per functional unit: the label's ``carbon.embodied`` figure, or the
    caller's ``embodied_g`` when given (which replaces it), else 0 with a note; R the label's
    functional unit.
    """
    if embodied_g is not None and (not math.isfinite(embodied_g) or embodied_g < 0):
        raise InteropError("embodied emissions must be a finite number of grams >= 0")
    phase = label["benchmark"]["phase"]
    results, carbon = label["results"], label["carbon"]
    stats = results["energy_per_unit_wh"]
    pue = float(carbon["pue"])
    intensity = float(carbon["intensity_g_per_kwh"])
    it_kwh = float(stats["mean"]) / 1000.0
    energy_kwh = it_kwh * pue
    block = carbon.get("embodied") or {}
    from_label = block.get("status") == "estimated"
    if embodied_g is not None:
        embodied = float(embodied_g)
    else:
        embodied = float(block["co2e_per_unit_g"]) if from_label else 0.0
    functional_unit = "1000 inferences" if phase == "inference" else "1 training step"
    sci = energy_kwh * intensity + embodied
    dataset = carbon["dataset"]
    components = ", ".join(f"{c['name']} ({c['method']})" for c in results["components"])
    notes = [
        f"E is the label's mean gross energy per {functional_unit} ({it_kwh!r} kWh, "
        f"components: {components}; idle power included) times PUE {pue!r}: SCI asks E to "
        "include the data centre's efficiency (cooling and other overhead), usually given as PUE.",
        f"I is location-based: zone {carbon['zone']}, {dataset['name']} {dataset['version']} "
        f"({dataset['year']}).",
        "O = E x I equals the label's carbon.co2e_per_unit_g.mean.",
    ]
    if embodied_g is not None:
        notes.append(f"M was given by the caller: {embodied!r} g per {functional_unit}.")
    elif from_label:
        table = block["table"]
        parts = ", ".join(
            f"{c['name']} {c['count']} x {c['kg_co2e_each']!r} kg" for c in block["components"]
        )
        notes.append(
            f"M is the label's carbon.embodied: {embodied!r} g per {functional_unit} ({parts}, "
            f"held {block['time_per_unit_s']!r} s per {functional_unit} of a "
            f"{block['life_h']!r} h life; {table['name']} version {table['version']})."
        )
    else:
        why = (
            "the factor table has no figures for this hardware class"
            if block.get("status") == "unknown-hardware"
            else "the label reports no embodied emissions"
        )
        notes.append(
            f"M (embodied emissions) is 0 here because {why}: SCI requires an estimate of M "
            "for a complete score (pass --embodied-g grams per functional unit)."
        )
    if "co2e_per_run_g" in carbon:
        notes.append(
            f"The label also extrapolates {carbon['co2e_per_run_g']!r} g per training run of "
            f"{results.get('declared_total_steps')} steps (operational only)."
        )
    if label.get("provenance", {}).get("source") == "codecarbon-import":
        notes.append("The energy figures were measured by CodeCarbon and imported.")
    co2 = carbon["co2e_per_unit_g"]
    return {
        "specification": "Software Carbon Intensity (SCI), ISO/IEC 21031:2024",
        "label_id": label["label_id"],
        "model": f"{label['model']['id']}@{label['model']['revision']}",
        "sci_g_per_unit": sci,
        "functional_unit": results["functional_unit"],
        "terms": {
            "E_kwh": energy_kwh,
            "I_g_per_kwh": intensity,
            "M_g": embodied,
            "R": functional_unit,
        },
        "sci_ci95_g_per_unit": {
            "low": float(co2["ci95_low"]) + embodied,
            "high": float(co2["ci95_high"]) + embodied,
        },
        "notes": notes,
    }
