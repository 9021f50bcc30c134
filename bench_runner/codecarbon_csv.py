"""CodeCarbon's ``emissions.csv`` read: any layout from 2.3 to 3.3 (31 to 38 columns), every
column found by its header name, each row a :class:`CodeCarbonRow` (``bench_runner.interop`` turns
them into a label draft; docs/interop.md explains the mapping).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

J_PER_KWH = 3.6e6

__all__ = [
    "CODECARBON_LAYOUTS",
    "J_PER_KWH",
    "CodeCarbonRow",
    "InteropError",
    "parse_codecarbon_csv",
    "read_codecarbon_csv",
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
    #: CodeCarbon 3.0.8 on (34 and 38 columns): on-site water in litres, computed as ``wue`` x the
    #: PUE-scaled energy; ``wue`` in litres per kWh (0: not set). None in older layouts.
    water_consumed_l: float | None = None
    wue_l_per_kwh: float | None = None

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
        water_consumed_l=optional("water_consumed") if "water_consumed" in values else None,
        wue_l_per_kwh=optional("wue") if "wue" in values else None,
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
