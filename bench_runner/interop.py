"""Interoperability: CodeCarbon files in, Hugging Face and SCI figures out.

* :func:`read_codecarbon_csv` reads a CodeCarbon ``emissions.csv`` (any layout from 2.3 to 3.3,
  31 to 38 columns), finding every column by its header name.
* :func:`label_draft_from_codecarbon` turns its rows into an unsigned label draft: one trial window
  per row, the PUE that CodeCarbon multiplied into every energy column divided back out.
* :func:`export_hf` and :func:`merge_hf_into_readme` write a model-card ``co2_eq_emissions`` block;
  :func:`export_sci` computes a Software Carbon Intensity (ISO/IEC 21031:2024) figure.

``docs/interop.md`` explains the mapping and what an import cannot know.
"""

from __future__ import annotations

import csv
import io
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from schemas.contract import load_methodology, validate_label
from schemas.results import check_results, fill_results

J_PER_KWH = 3.6e6
BYTES_PER_GIB = 2**30

__all__ = [
    "CODECARBON_LAYOUTS",
    "CodeCarbonRow",
    "InteropError",
    "export_hf",
    "export_sci",
    "hf_co2_eq_emissions",
    "label_draft_from_codecarbon",
    "merge_hf_into_readme",
    "parse_codecarbon_csv",
    "read_codecarbon_csv",
    "zone_for",
]


class InteropError(ValueError):
    """An input that cannot be imported or exported (the reason is the message, one line)."""


# --------------------------------------------------------------------------------------------
# CodeCarbon layouts: EmissionsData's fields, which FileOutput writes as the CSV header in this
# order (codecarbon/output_methods/emissions_data.py; codecarbon/output.py before 2.6).
# --------------------------------------------------------------------------------------------

_V2_31 = (
    "timestamp",
    "project_name",
    "run_id",
    "duration",
    "emissions",
    "emissions_rate",
    "cpu_power",
    "gpu_power",
    "ram_power",
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "energy_consumed",
    "country_name",
    "country_iso_code",
    "region",
    "cloud_provider",
    "cloud_region",
    "os",
    "python_version",
    "codecarbon_version",
    "cpu_count",
    "cpu_model",
    "gpu_count",
    "gpu_model",
    "longitude",
    "latitude",
    "ram_total_size",
    "tracking_mode",
    "on_cloud",
    "pue",
)
_V27_32 = (*_V2_31[:3], "experiment_id", *_V2_31[3:])
_V3_34 = (*_V27_32[:14], "water_consumed", *_V27_32[14:], "wue")
_V3_38 = (
    *_V3_34[:31],
    "cpu_utilization_percent",
    "gpu_utilization_percent",
    "ram_utilization_percent",
    "ram_used_gb",
    *_V3_34[31:],
)

CODECARBON_LAYOUTS: dict[str, tuple[str, ...]] = {
    "v3 (38 columns)": _V3_38,
    "v3 (34 columns)": _V3_34,
    "v2.7 (32 columns)": _V27_32,
    "v2 (31 columns)": _V2_31,
}
"""Known header layouts, newest first: 38 columns in CodeCarbon 3.2.3-3.3.x, 34 in 3.0.9-3.2.0,
32 in 2.7.0-3.0.x (adds ``experiment_id``), 31 in 2.3-2.6."""

_KNOWN_COLUMNS = frozenset(_V3_38)
_NUMERIC_REQUIRED = (
    "duration",
    "emissions",
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "energy_consumed",
    "pue",
)


@dataclass(frozen=True)
class CodeCarbonRow:
    """One row of a CodeCarbon ``emissions.csv``, in CodeCarbon's own units.

    CodeCarbon multiplied every ``*_energy_kwh`` field by ``pue`` (see docs/interop.md); the
    ``it_*_j`` properties divide it back out and convert to joules.
    """

    line: int
    layout: str
    timestamp: str
    run_id: str
    duration_s: float
    emissions_kg: float
    cpu_energy_kwh: float
    gpu_energy_kwh: float
    ram_energy_kwh: float
    energy_consumed_kwh: float
    pue: float
    country_iso_code: str
    country_name: str
    region: str
    codecarbon_version: str
    os: str
    python_version: str
    cpu_model: str
    cpu_count: float | None
    gpu_model: str
    gpu_count: float | None
    ram_total_size_gib: float | None
    tracking_mode: str

    @property
    def it_cpu_j(self) -> float:
        return self.cpu_energy_kwh * J_PER_KWH / self.pue

    @property
    def it_gpu_j(self) -> float:
        return self.gpu_energy_kwh * J_PER_KWH / self.pue

    @property
    def it_ram_j(self) -> float:
        return self.ram_energy_kwh * J_PER_KWH / self.pue

    @property
    def it_energy_j(self) -> float:
        """IT energy of the row (CPU + GPU + RAM, PUE divided out), in joules."""
        return self.it_cpu_j + self.it_gpu_j + self.it_ram_j


def _detect_layout(header: Sequence[str], source: str) -> str:
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise InteropError(f"{source}: duplicate column(s) {', '.join(duplicates)}")
    unknown = [name for name in header if name not in _KNOWN_COLUMNS]
    if unknown:
        raise InteropError(
            f"{source}: unknown column(s) {', '.join(unknown)}: not a CodeCarbon emissions.csv "
            "layout this importer knows (CodeCarbon 2.3-3.3, 31 to 38 columns)"
        )
    names = set(header)
    if names & {"cpu_utilization_percent", "gpu_utilization_percent", "ram_used_gb"} or (
        "ram_utilization_percent" in names
    ):
        layout = "v3 (38 columns)"
    elif names & {"water_consumed", "wue"}:
        layout = "v3 (34 columns)"
    elif "experiment_id" in names:
        layout = "v2.7 (32 columns)"
    else:
        layout = "v2 (31 columns)"
    missing = [name for name in CODECARBON_LAYOUTS[layout] if name not in names]
    if missing:
        raise InteropError(
            f"{source}: missing column(s) {', '.join(missing)} for a CodeCarbon {layout} file"
        )
    return layout


def _number(value: str, column: str, line: int, source: str, *, required: bool) -> float | None:
    text = value.strip()
    if not text:
        if required:
            raise InteropError(f"{source}:{line}: column {column} is empty")
        return None
    try:
        number = float(text)
    except ValueError:
        raise InteropError(
            f"{source}:{line}: column {column}: {text[:40]!r} is not a number"
        ) from None
    if not math.isfinite(number):
        raise InteropError(f"{source}:{line}: column {column}: {text[:40]!r} is not finite")
    return number


def _row(values: Mapping[str, str], layout: str, line: int, source: str) -> CodeCarbonRow:
    num: dict[str, float] = {}
    for column in _NUMERIC_REQUIRED:
        number = _number(values[column], column, line, source, required=True)
        assert number is not None
        num[column] = number
    for column in ("duration", "emissions", "cpu_energy", "gpu_energy", "ram_energy"):
        if num[column] < 0:
            raise InteropError(f"{source}:{line}: column {column} is negative ({num[column]})")
    if num["duration"] <= 0:
        raise InteropError(f"{source}:{line}: duration must be > 0 s, got {num['duration']}")
    if num["pue"] < 1:
        raise InteropError(f"{source}:{line}: pue must be >= 1, got {num['pue']}")

    def optional(column: str) -> float | None:
        return _number(values[column], column, line, source, required=False)

    return CodeCarbonRow(
        line=line,
        layout=layout,
        timestamp=values["timestamp"].strip(),
        run_id=values["run_id"].strip(),
        duration_s=num["duration"],
        emissions_kg=num["emissions"],
        cpu_energy_kwh=num["cpu_energy"],
        gpu_energy_kwh=num["gpu_energy"],
        ram_energy_kwh=num["ram_energy"],
        energy_consumed_kwh=num["energy_consumed"],
        pue=num["pue"],
        country_iso_code=values["country_iso_code"].strip().upper(),
        country_name=values["country_name"].strip(),
        region=values["region"].strip(),
        codecarbon_version=values["codecarbon_version"].strip(),
        os=values["os"].strip(),
        python_version=values["python_version"].strip(),
        cpu_model=values["cpu_model"].strip(),
        cpu_count=optional("cpu_count"),
        gpu_model=values["gpu_model"].strip(),
        gpu_count=optional("gpu_count"),
        ram_total_size_gib=optional("ram_total_size"),
        tracking_mode=values["tracking_mode"].strip(),
    )


def parse_codecarbon_csv(text: str, source: str = "<csv>") -> list[CodeCarbonRow]:
    """Parse the text of a CodeCarbon ``emissions.csv``; columns are found by header name."""
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise InteropError(f"{source}: the file is empty")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        records = list(reader)
    except csv.Error as exc:
        raise InteropError(f"{source}: not a CSV file: {exc}") from None
    header = [name.strip() for name in records[0]]
    layout = _detect_layout(header, source)
    rows: list[CodeCarbonRow] = []
    for offset, record in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            raise InteropError(
                f"{source}:{offset}: {len(record)} fields, the header has {len(header)}"
            )
        rows.append(_row(dict(zip(header, record, strict=True)), layout, offset, source))
    if not rows:
        raise InteropError(f"{source}: the file has a header but no data rows")
    return rows


def read_codecarbon_csv(path: str | Path) -> list[CodeCarbonRow]:
    """Read a CodeCarbon ``emissions.csv`` (v2: 31 or 32 columns, v3: 34 or 38 columns)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InteropError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InteropError(f"{path}: not UTF-8 text") from None
    return parse_codecarbon_csv(text, str(path))


# --------------------------------------------------------------------------------------------
# CodeCarbon rows -> label draft
# --------------------------------------------------------------------------------------------

# ISO 3166-1 alpha-3 -> alpha-2 for every country (CodeCarbon reports alpha-3).
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
    embodied emissions per functional unit given by the caller (0 when unknown), R the label's
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
    embodied = float(embodied_g) if embodied_g is not None else 0.0
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
    if embodied_g is None:
        notes.append(
            "M (embodied emissions) is not known to the label and is 0 here: SCI requires an "
            "estimate of M for a complete score (pass --embodied-g grams per functional unit)."
        )
    else:
        notes.append(f"M was given by the caller: {embodied!r} g per {functional_unit}.")
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
