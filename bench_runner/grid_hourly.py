"""Hourly grid data from the CSV exports people have, as one series per zone of (hour, carbon
intensity, carbon-free share):

- **Electricity Maps** hourly exports (the data portal's ``<ZONE>_<year>_hourly.csv``): both
  header generations, the 2021-2023 release (``Zone Id``, ``Carbon Intensity gCO₂eq/kWh (LCA)``,
  ``Low Carbon Percentage``) and the 2024 one (``Zone id``, ``Carbon intensity gCO₂eq/kWh (Life
  cycle)``, ``Carbon-free energy percentage (CFE%)``). Timestamps are hour starts in UTC. The
  intensity is the life-cycle one (the label's yearly table is life-cycle too); the carbon-free
  share is the low-carbon / CFE percentage.
- **ENTSO-E** actual generation per production type as ``entsoe-py`` writes it
  (``EntsoePandasClient.query_generation(...).to_csv()``): one or two header rows (production
  type, then ``Actual Aggregated`` / ``Actual Consumption`` when some type reports consumption),
  a timezone-aware index at the bidding zone's 15, 30 or 60 minutes, average MW per interval.
  ENTSO-E gives no carbon intensity: the series carries the hourly carbon-free share of
  generation (nuclear, hydro, wind, solar, geothermal, marine, other renewable) and no intensity.

:func:`read_hourly_grid` detects the format from the header. docs/carbon.md describes both.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_HOUR = timedelta(hours=1)

# Electricity Maps: canonical field -> accepted header names (lower case, ₂ written as 2)
_EM_COLUMNS = {
    "datetime": ("datetime (utc)",),
    "zone": ("zone id",),
    "intensity": ("carbon intensity gco2eq/kwh (lca)", "carbon intensity gco2eq/kwh (life cycle)"),
    "cfe": ("low carbon percentage", "carbon-free energy percentage (cfe%)"),
    "estimated": ("data estimated",),
}
# ENTSO-E production types (entsoe-py's PSRTYPE_MAPPINGS names) counted as carbon-free
CARBON_FREE_TYPES = frozenset(
    {
        "Nuclear",
        "Hydro Pumped Storage",
        "Hydro Run-of-river and poundage",
        "Hydro Water Reservoir",
        "Wind Offshore",
        "Wind Onshore",
        "Solar",
        "Geothermal",
        "Marine",
        "Other renewable",
    }
)


class GridDataError(ValueError):
    """A grid data file that cannot be read (the message names the file and the line)."""


@dataclass(frozen=True)
class GridHour:
    """One hour of a zone's grid: ``hour`` its start (UTC); ``intensity_g_per_kwh`` None where
    the source has none (ENTSO-E); ``cfe_share`` in [0, 1]; ``estimated``: the source says the
    figures of that hour are estimated."""

    hour: datetime
    intensity_g_per_kwh: float | None
    cfe_share: float | None
    estimated: bool = False


@dataclass(frozen=True)
class GridSeries:
    zone: str
    source: str
    hours: tuple[GridHour, ...]

    def intensities(self) -> list[tuple[datetime, float]]:
        """(hour, g/kWh) of every hour with an intensity: ``bench_runner.carbon``'s series."""
        return [
            (h.hour, h.intensity_g_per_kwh) for h in self.hours if h.intensity_g_per_kwh is not None
        ]


def _key(name: str) -> str:
    return name.strip().lower().replace("₂", "2")


def _rows(path: str | os.PathLike[str]) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return [r for r in csv.reader(handle) if any(cell.strip() for cell in r)]
    except OSError as exc:
        raise GridDataError(f"cannot read {os.fspath(path)}: {exc.strerror}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise GridDataError(f"{os.fspath(path)}: not a CSV file: {exc}") from None


def _number(text: str, where: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise GridDataError(f"{where}: {what} {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise GridDataError(f"{where}: {what} {text[:40]!r} is not finite")
    return value


def _checked(name: str, hours: list[GridHour]) -> tuple[GridHour, ...]:
    if not hours:
        raise GridDataError(f"{name}: no rows after the header")
    hours.sort(key=lambda h: h.hour)
    for before, after in itertools.pairwise(hours):
        if after.hour - before.hour < _HOUR:
            raise GridDataError(f"{name}: hour {after.hour.isoformat()} appears twice")
    return tuple(hours)


def is_electricitymaps(header: list[str]) -> bool:
    names = {_key(c) for c in header}
    return all(any(n in names for n in accepted) for accepted in _EM_COLUMNS.values())


def read_electricitymaps(path: str | os.PathLike[str]) -> GridSeries:
    name = os.fspath(path)
    records = _rows(path)
    if not records or not is_electricitymaps(records[0]):
        raise GridDataError(f"{name}: not an Electricity Maps hourly export (its header differs)")
    index = {_key(c): i for i, c in enumerate(records[0])}
    column = {
        field: next(index[n] for n in accepted if n in index)
        for field, accepted in _EM_COLUMNS.items()
    }
    zones: set[str] = set()
    hours: list[GridHour] = []
    for number, record in enumerate(records[1:], start=2):
        where = f"{name} line {number}"
        if len(record) != len(records[0]):
            raise GridDataError(f"{where}: {len(record)} columns, the header has {len(records[0])}")
        try:
            moment = datetime.strptime(record[column["datetime"]].strip(), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise GridDataError(
                f"{where}: datetime {record[column['datetime']]!r} is not 'YYYY-MM-DD HH:MM:SS'"
            ) from None
        intensity = _number(record[column["intensity"]], where, "intensity")
        cfe = _number(record[column["cfe"]], where, "carbon-free percentage")
        if not 0 <= intensity <= 5000 or not 0 <= cfe <= 100:
            raise GridDataError(f"{where}: intensity or percentage out of range")
        zones.add(record[column["zone"]].strip())
        hours.append(
            GridHour(
                hour=moment.replace(tzinfo=UTC),
                intensity_g_per_kwh=intensity,
                cfe_share=cfe / 100.0,
                estimated=record[column["estimated"]].strip().lower() == "true",
            )
        )
    checked = _checked(name, hours)
    if len(zones) != 1:
        raise GridDataError(f"{name}: one zone per file, found {sorted(zones)[:5]}")
    return GridSeries(zones.pop(), "Electricity Maps", checked)


def is_entsoe_generation(records: list[list[str]]) -> bool:
    return bool(records) and records[0][0].strip() == "" and len(records[0]) > 1


def read_entsoe_generation(path: str | os.PathLike[str], zone: str) -> GridSeries:
    """The hourly carbon-free share of generation from an entsoe-py ``query_generation`` CSV."""
    name = os.fspath(path)
    records = _rows(path)
    if not is_entsoe_generation(records):
        raise GridDataError(
            f"{name}: not an entsoe-py generation CSV (its first cell is not empty)"
        )
    types = [c.strip() for c in records[0][1:]]
    kinds = ["Actual Aggregated"] * len(types)
    body = records[1:]
    if body and body[0][0].strip() == "":  # the second header row: aggregated or consumption
        kinds = [c.strip() for c in body[0][1:]]
        body = body[1:]
    unknown = sorted({k for k in kinds if k not in ("Actual Aggregated", "Actual Consumption")})
    if unknown:
        raise GridDataError(f"{name}: unexpected second header row {unknown[:3]}")
    per_hour: dict[datetime, list[float]] = defaultdict(lambda: [0.0, 0.0])  # free, total (MWh)
    counts: dict[datetime, int] = defaultdict(int)
    for number, record in enumerate(body, start=len(records) - len(body) + 1):
        where = f"{name} line {number}"
        try:
            moment = datetime.fromisoformat(record[0].strip())
        except ValueError:
            raise GridDataError(f"{where}: timestamp {record[0]!r} is not ISO 8601") from None
        if moment.tzinfo is None:
            raise GridDataError(f"{where}: timestamp {record[0]!r} has no offset")
        utc = moment.astimezone(UTC)
        hour = utc.replace(minute=0, second=0, microsecond=0)
        counts[hour] += 1
        for cell, kind, production in zip(record[1:], kinds, types, strict=False):
            if kind != "Actual Aggregated" or not cell.strip():
                continue  # consumption (pumping) is not generation; empty: not reported
            mw = _number(cell, where, production)
            per_hour[hour][1] += mw
            if production in CARBON_FREE_TYPES:
                per_hour[hour][0] += mw
    hours = [
        GridHour(hour, None, free / total if total > 0 else None)
        for hour, (free, total) in per_hour.items()
    ]
    return GridSeries(zone, "ENTSO-E (entsoe-py)", _checked(name, hours))


def read_hourly_grid(path: str | os.PathLike[str], zone: str | None = None) -> GridSeries:
    """Either format, told apart by the header (ENTSO-E files do not name their zone: pass it)."""
    records = _rows(path)
    if records and is_electricitymaps(records[0]):
        return read_electricitymaps(path)
    if is_entsoe_generation(records):
        if not zone:
            raise GridDataError(f"{os.fspath(path)}: an ENTSO-E file does not name its zone")
        return read_entsoe_generation(path, zone)
    raise GridDataError(
        f"{os.fspath(path)}: neither an Electricity Maps hourly export nor an entsoe-py "
        "generation CSV"
    )
