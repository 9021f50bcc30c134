"""CodeCarbon files in: :func:`label_draft_from_codecarbon` turns the rows of an ``emissions.csv``
(read by ``bench_runner.codecarbon_csv``) into an unsigned label draft: one trial window per row,
the PUE that CodeCarbon multiplied into every energy column divided back out. The exports out are
in ``bench_runner.exports``.

``docs/interop.md`` explains the mapping and what an import cannot know.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from bench_runner.codecarbon_csv import CodeCarbonRow, InteropError
from schemas.contract import load_methodology, validate_label
from schemas.results import check_results, fill_results

BYTES_PER_GIB = 2**30

__all__ = ["label_draft_from_codecarbon", "zone_for"]


_ISO_PAIRS = """
ABWAW AFGAF AGOAO AIAAI ALAAX ALBAL ANDAD AREAE ARGAR ARMAM ASMAS ATAAQ ATFTF ATGAG AUSAU
AUTAT AZEAZ BDIBI BELBE BENBJ BESBQ BFABF BGDBD BGRBG BHRBH BHSBS BIHBA BLMBL BLRBY BLZBZ
BMUBM BOLBO BRABR BRBBB BRNBN BTNBT BVTBV BWABW CAFCF CANCA CCKCC CHECH CHLCL CHNCN CIVCI
CMRCM CODCD COGCG COKCK COLCO COMKM CPVCV CRICR CUBCU CUWCW CXRCX CYMKY CYPCY CZECZ DEUDE
DJIDJ DMADM DNKDK DOMDO DZADZ ECUEC EGYEG ERIER ESHEH ESPES ESTEE ETHET FINFI FJIFJ FLKFK
FRAFR FROFO FSMFM GABGA GBRGB GEOGE GGYGG GHAGH GIBGI GINGN GLPGP GMBGM GNBGW GNQGQ GRCGR
GRDGD GRLGL GTMGT GUFGF GUMGU GUYGY HKGHK HMDHM HNDHN HRVHR HTIHT HUNHU IDNID IMNIM INDIN
IOTIO IRLIE IRNIR IRQIQ ISLIS ISRIL ITAIT JAMJM JEYJE JORJO JPNJP KAZKZ KENKE KGZKG KHMKH
KIRKI KNAKN KORKR KWTKW LAOLA LBNLB LBRLR LBYLY LCALC LIELI LKALK LSOLS LTULT LUXLU LVALV
MACMO MAFMF MARMA MCOMC MDAMD MDGMG MDVMV MEXMX MHLMH MKDMK MLIML MLTMT MMRMM MNEME MNGMN
MNPMP MOZMZ MRTMR MSRMS MTQMQ MUSMU MWIMW MYSMY MYTYT NAMNA NCLNC NERNE NFKNF NGANG NICNI
NIUNU NLDNL NORNO NPLNP NRUNR NZLNZ OMNOM PAKPK PANPA PCNPN PERPE PHLPH PLWPW PNGPG POLPL
PRIPR PRKKP PRTPT PRYPY PSEPS PYFPF QATQA REURE ROURO RUSRU RWARW SAUSA SDNSD SENSN SGPSG
SGSGS SHNSH SJMSJ SLBSB SLESL SLVSV SMRSM SOMSO SPMPM SRBRS SSDSS STPST SURSR SVKSK SVNSI
SWESE SWZSZ SXMSX SYCSC SYRSY TCATC TCDTD TGOTG THATH TJKTJ TKLTK TKMTM TLSTL TONTO TTOTT
TUNTN TURTR TUVTV TWNTW TZATZ UGAUG UKRUA UMIUM URYUY USAUS UZBUZ VATVA VCTVC VENVE VGBVG
VIRVI VNMVN VUTVU WLFWF WSMWS YEMYE ZAFZA ZMBZM ZWEZW
"""
_ISO3_TO_ISO2: dict[str, str] = {pair[:3]: pair[3:] for pair in _ISO_PAIRS.split()}

_ZONE_RE = re.compile(r"^[A-Z]{2}(-[A-Za-z0-9_-]{1,48})?$")
_GPU_MODEL_RE = re.compile(r"^(\d+) x (.+)$")
_METHODS = ("nvml-energy-counter", "nvml-power-sampling", "rapl", "estimate")
_COUNTER_METHODS = ("nvml-energy-counter", "rapl")


def zone_for(country_iso_code: str) -> str:
    """ISO 3166-1 alpha-2 for CodeCarbon's alpha-3 ``country_iso_code``; InteropError if unknown."""
    code = country_iso_code.strip().upper()
    if code in _ISO3_TO_ISO2:
        return _ISO3_TO_ISO2[code]
    raise InteropError(
        f"country_iso_code {country_iso_code!r} is not an ISO 3166-1 alpha-3 code; pass --zone"
    )


def _same(rows: Sequence[CodeCarbonRow], attribute: str, what: str) -> Any:
    values = {getattr(row, attribute) for row in rows}
    if len(values) > 1:
        shown = ", ".join(sorted(repr(v) for v in values)[:4])
        raise InteropError(f"the rows come from different {what} ({attribute}: {shown})")
    return values.pop()


def _accelerator(
    rows: Sequence[CodeCarbonRow], has_gpu: bool
) -> tuple[dict[str, Any], str | None, str]:
    """The label's accelerator, the methodology's hardware name for it, and its vendor."""
    if not has_gpu:
        return {"vendor": "none", "model_name": "none", "count": 0}, None, "none"
    gpu_model = _same(rows, "gpu_model", "GPUs")
    gpu_count = _same(rows, "gpu_count", "GPUs")
    match = _GPU_MODEL_RE.match(gpu_model)
    single = match is not None and _GPU_MODEL_RE.search(match.group(2)) is None
    name = match.group(2).strip() if match and single else gpu_model
    count = int(gpu_count) if gpu_count else (int(match.group(1)) if match and single else 0)
    if not name or count < 1:
        raise InteropError(
            f"GPU energy is reported but gpu_model {gpu_model!r} / gpu_count {gpu_count!r} "
            "do not say which GPUs"
        )
    lowered = name.lower()
    if any(word in lowered for word in ("nvidia", "tesla", "quadro", "geforce")):
        vendor = "nvidia"
    elif any(word in lowered for word in ("amd", "radeon", "instinct")):
        vendor = "amd"
    else:
        raise InteropError(
            f"cannot tell the GPU vendor from gpu_model {gpu_model!r}: the importer knows "
            "NVIDIA (NVML) and AMD (AMD SMI) GPUs"
        )
    accelerator = {"vendor": vendor, "model_name": name[:128], "count": count}
    return accelerator, (name if single else None), vendor


def _hardware_class(
    requested: str | None, gpu_name: str | None, has_gpu: bool, os_name: str
) -> str:
    classes = load_methodology()["hardware_classes"]
    if requested is not None:
        if requested not in classes:
            raise InteropError(
                f"unknown hardware class {requested!r}; one of: {', '.join(classes)}"
            )
        return requested
    if has_gpu:
        for key, spec in classes.items():
            if gpu_name is not None and gpu_name in spec["names"]:
                return key
        raise InteropError(
            f"no reference hardware class lists the GPU {gpu_name!r}; pass --hardware-class "
            '("other" if none fits)'
        )
    lowered = os_name.lower()
    if "x86_64" in lowered or "amd64" in lowered:
        return "cpu-x86-64"
    if "aarch64" in lowered or "arm64" in lowered:
        return "cpu-aarch64"
    raise InteropError(
        f"cannot tell the CPU architecture from os {os_name!r}; pass --hardware-class"
    )


def _runner_version() -> str:
    try:
        return metadata.version("carbonlabel")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _year(timestamp: str, line: int) -> int:
    try:
        return datetime.fromisoformat(timestamp).year
    except ValueError:
        raise InteropError(f"line {line}: timestamp {timestamp!r} is not ISO 8601") from None


def _component_trace(
    name: str, method: str, t0: float, t1: float, counter_j: float, energy_j: float
) -> dict[str, Any]:
    """A counter reading for counter methods; otherwise two constant-power samples."""
    if method in _COUNTER_METHODS:
        return {
            "name": name,
            "method": method,
            "counter_start_j": counter_j,
            "counter_end_j": counter_j + energy_j,
        }
    power_w = energy_j / (t1 - t0) if t1 > t0 else 0.0
    return {"name": name, "method": method, "samples": [[t0, power_w], [t1, power_w]]}


def label_draft_from_codecarbon(
    rows: Sequence[CodeCarbonRow],
    *,
    vendor: str,
    model: str,
    revision: str,
    task: str,
    phase: str,
    units_per_row: int | Sequence[int],
    registry: str,
    model_sha256: str,
    workload: Mapping[str, Any],
    hardware_class: str | None = None,
    zone: str | None = None,
    cpu_method: str = "estimate",
    gpu_method: str | None = None,
    declared_total_steps: int | None = None,
    cv_threshold: float = 0.10,
    label_id: str | None = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """An unsigned label draft whose figures come from CodeCarbon rows (one trial per row).

    ``units_per_row`` is the number of inferences (inference) or optimizer steps (training) each
    row's run completed: CodeCarbon does not record it. ``workload`` holds the label's
    ``benchmark.workload`` fields (dataset_id, dataset_sha256, samples, batch_size, precision and
    the optional ones); ``model`` is a name or ``vendor/name``. The draft validates against the
    label schema and its results follow from its traces; InteropError otherwise.
    """
    if len(rows) < 2:
        raise InteropError(
            f"a label needs at least 2 trials and the file has {len(rows)} row(s): "
            "track the workload in two or more runs"
        )
    if phase not in load_methodology()["functional_units"]:
        raise InteropError(f"phase must be inference or training, got {phase!r}")
    units = [units_per_row] * len(rows) if isinstance(units_per_row, int) else list(units_per_row)
    if len(units) != len(rows) or any(not isinstance(u, int) or u < 1 for u in units):
        raise InteropError("units per row must be one integer >= 1 for each row")
    run_ids = [row.run_id for row in rows if row.run_id]
    repeated = sorted({r for r in run_ids if run_ids.count(r) > 1})
    if repeated:
        raise InteropError(
            f"run_id {repeated[0]} appears on several rows: CodeCarbon writes cumulative totals "
            "when a run is flushed, so keep one row (the last) per run"
        )
    for method, what in ((cpu_method, "cpu method"), (gpu_method, "gpu method")):
        if method is not None and method not in _METHODS:
            raise InteropError(f"{what} must be one of {', '.join(_METHODS)}, got {method!r}")
    if cpu_method not in ("rapl", "estimate"):
        raise InteropError(f"cpu method must be rapl or estimate, got {cpu_method!r}")

    pue = _same(rows, "pue", "PUE settings")
    version = _same(rows, "codecarbon_version", "CodeCarbon versions")
    if not version:
        raise InteropError("the codecarbon_version column is empty")
    country = _same(rows, "country_iso_code", "countries")
    cpu_model = _same(rows, "cpu_model", "CPUs")
    cpu_count = _same(rows, "cpu_count", "CPUs")
    ram_gib = _same(rows, "ram_total_size_gib", "machines (ram_total_size)")
    os_name = _same(rows, "os", "operating systems")
    python_version = _same(rows, "python_version", "Python versions")
    for row in rows:
        parts = row.cpu_energy_kwh + row.gpu_energy_kwh + row.ram_energy_kwh
        if not math.isclose(parts, row.energy_consumed_kwh, rel_tol=1e-3, abs_tol=1e-12):
            raise InteropError(
                f"line {row.line}: energy_consumed ({row.energy_consumed_kwh} kWh) is not "
                f"cpu_energy + gpu_energy + ram_energy ({parts} kWh)"
            )
    if not cpu_model or not cpu_count or cpu_count < 1:
        raise InteropError("cpu_model and cpu_count must be set (the label records the CPU)")
    if ram_gib is None:
        raise InteropError("ram_total_size is empty (the label records the machine's RAM)")

    has_gpu = any(row.gpu_energy_kwh > 0 for row in rows) or any(
        (row.gpu_count or 0) > 0 for row in rows
    )
    accelerator, gpu_name, gpu_vendor = _accelerator(rows, has_gpu)
    hw_class = _hardware_class(hardware_class, gpu_name, has_gpu, os_name)
    if gpu_method is None:
        gpu_method = "nvml-energy-counter" if gpu_vendor == "nvidia" else "estimate"

    if zone is None:
        if not country:
            raise InteropError("the country_iso_code column is empty; pass --zone")
        zone = zone_for(country)
    if not _ZONE_RE.match(zone):
        raise InteropError(f"zone {zone!r} is not ISO 3166-1 alpha-2 (optionally -REGION)")
    total_consumed_kwh = math.fsum(row.energy_consumed_kwh for row in rows)
    if total_consumed_kwh <= 0:
        raise InteropError("energy_consumed is 0 on every row: nothing to label")
    intensity = math.fsum(row.emissions_kg for row in rows) * 1000.0 / total_consumed_kwh

    components: list[tuple[str, str, str]] = []  # (label name, method, row attribute)
    if has_gpu:
        components.append(("gpu", gpu_method, "it_gpu_j"))
    components.append(("cpu", cpu_method, "it_cpu_j"))
    components.append(("dram", "estimate", "it_ram_j"))

    idle = {
        "t_start_s": 0.0,
        "t_end_s": 0.0,
        "components": [
            _component_trace(name, method, 0.0, 0.0, 0.0, 0.0) for name, method, _ in components
        ],
    }
    counters = dict.fromkeys((name for name, _, _ in components), 0.0)
    trials: list[dict[str, Any]] = []
    clock = 0.0
    for index, (row, n_units) in enumerate(zip(rows, units, strict=True)):
        t0, t1 = clock, clock + row.duration_s
        traces = []
        for name, method, attribute in components:
            energy_j = float(getattr(row, attribute))
            traces.append(_component_trace(name, method, t0, t1, counters[name], energy_j))
            counters[name] += energy_j
        trials.append(
            {"index": index, "units": n_units, "t_start_s": t0, "t_end_s": t1, "components": traces}
        )
        clock = t1

    flags = ["imported"]
    if any(method == "estimate" for _, method, _ in components):
        flags.append("estimated")
    methodology = load_methodology()
    vendor_prefix = f"{vendor}/"
    model_id = model if model.startswith(vendor_prefix) else f"{vendor}/{model}"
    if model_id.count("/") != 1:
        raise InteropError(f"model must be NAME or {vendor}/NAME, got {model!r}")
    bench_workload = dict(workload)
    created = (created_at or datetime.now(UTC)).astimezone(UTC)
    label: dict[str, Any] = {
        "label_id": label_id or str(uuid.uuid4()),
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "registry": registry.rstrip("/"),
        "vendor": vendor,
        "model": {"id": model_id, "revision": revision},
        "benchmark": {
            "suite": dict(methodology["suite"]),
            "task": task,
            "phase": phase,
            "workload": bench_workload,
        },
        "hardware": {
            "accelerator": accelerator,
            "hardware_class": hw_class,
            "cpu": {"model_name": cpu_model[:256], "cores": int(cpu_count)},
            "ram_bytes": round(ram_gib * BYTES_PER_GIB),
        },
        "measurement": {
            "methodology_version": methodology["methodology_version"],
            "components": [{"name": name, "method": method} for name, method, _ in components],
            "warmup": {"iterations": 0, "min_duration_s": 0.0},
            "trials": len(rows),
            "min_window_s": min(row.duration_s for row in rows),
            "idle_baseline_s": 0.0,
            "duration_s": clock,
            "cv_threshold": cv_threshold,
            "flags": flags,
        },
        "results": {
            "functional_unit": methodology["functional_units"][phase]["name"],
            "energy_per_unit_wh": {},
            "components": [],
            "idle_power_w": 0.0,
            "dynamic_energy_per_unit_wh": 0.0,
            "throughput_units_per_s": 0.0,
        },
        "traces": {"idle": idle, "trials": trials},
        "carbon": {
            "zone": zone,
            "intensity_g_per_kwh": intensity,
            "dataset": {
                "name": "CodeCarbon",
                "version": version[:64],
                "year": _year(rows[-1].timestamp, rows[-1].line),
            },
            "pue": pue,
            "basis": "location",
            "co2e_per_unit_g": {},
        },
        "provenance": {
            "runner": {"name": "carbonlabel-import-codecarbon", "version": _runner_version()},
            "environment": {
                "python": python_version[:32] or "unknown",
                "frameworks": {"codecarbon": version[:64]},
                "os": os_name[:128],
            },
            "model_artifact_sha256": model_sha256,
            "source": "codecarbon-import",
        },
    }
    wue = _same(rows, "wue_l_per_kwh", "WUE values")
    if wue:
        # CodeCarbon multiplies its wue by the PUE-scaled energy; the label's WUE is per kWh of
        # IT energy, so the same litres follow from wue x pue (docs/interop.md)
        label["carbon"]["water"] = {"onsite": {"wue_l_per_kwh": wue * pue, "source": "declared"}}
    if phase == "training":
        bench_workload["training_steps"] = sum(units)
        label["results"]["steps_measured"] = sum(units)
        if declared_total_steps:
            label["results"]["declared_total_steps"] = declared_total_steps
    try:
        fill_results(label)
    except (ValueError, ZeroDivisionError) as exc:
        raise InteropError(f"cannot compute results from the rows: {exc}") from None
    if label["results"]["energy_per_unit_wh"]["cv"] > cv_threshold:
        flags.append("high-cv")
    issues = validate_label(label)
    if issues:
        shown = "; ".join(f"{i.pointer}: {i.message}" for i in issues[:3])
        more = f" (and {len(issues) - 3} more)" if len(issues) > 3 else ""
        raise InteropError(f"the draft is not a valid label: {shown}{more}")
    mismatches = check_results(label)
    if mismatches:
        raise InteropError(f"the draft's results do not follow from its traces: {mismatches[0]}")
    return label


# --------------------------------------------------------------------------------------------
# Exports
# --------------------------------------------------------------------------------------------
