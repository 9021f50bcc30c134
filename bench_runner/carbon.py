"""Grid carbon intensity, PUE and CO2e for a label's ``carbon`` block (location-based).

- :func:`lookup` gives a zone's yearly average intensity from the bundled country table
  (``schemas/data/grid_intensity.csv``, read by ``schemas.grid``: Ember / Our World in Data via
  CodeCarbon, CC BY 4.0; see ``docs/carbon.md``). A sub-national or cloud zone (``US-CAL``,
  ``DE-eu-central-1``) gets its country's yearly average unless :func:`override` supplies a
  figure.
- :func:`co2e_g` turns energy (Wh) into grams CO2e with a PUE (:data:`DEFAULT_PUE` when the data
  centre's own figure is unknown).
- :func:`load_hourly_csv` and :func:`hourly_matched_co2e_g` give an hourly-matched figure from a
  user-supplied ``timestamp,intensity_g_per_kwh`` CSV and the trials' timeline.

Nothing is read at import time; the table is loaded on first use and cached.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench_runner import grid_hourly
from schemas import grid
from schemas.grid import DatasetInfo, dataset_info, zones

__all__ = [
    "DEFAULT_PUE",
    "HOURLY_HEADER",
    "MAX_INTENSITY_G_PER_KWH",
    "MAX_PUE",
    "MIN_PUE",
    "ZONE_PATTERN",
    "CarbonError",
    "DatasetInfo",
    "GridIntensity",
    "co2e_g",
    "co2e_per_run_g",
    "dataset_info",
    "hourly_for_label",
    "hourly_matched_co2e_g",
    "load_hourly_csv",
    "lookup",
    "override",
    "validate_pue",
    "zones",
]

#: Same pattern as ``carbon.zone`` in ``schemas/label.schema.json``.
ZONE_PATTERN = re.compile(grid.ZONE_PATTERN)
MAX_INTENSITY_G_PER_KWH = 5000.0

#: PUE assumed for a data centre whose own figure is unknown: the industry-wide average annual PUE
#: reported by the Uptime Institute Global Data Center Survey 2024 (1.56). Override with the
#: operator's published figure where there is one; on-premises machines with no facility overhead
#: may pass 1.0. Allowed range: [MIN_PUE, MAX_PUE] (the label schema's range).
DEFAULT_PUE = 1.56
MIN_PUE = 1.0
MAX_PUE = 5.0

#: Header of an hourly intensity CSV.
HOURLY_HEADER = ("timestamp", "intensity_g_per_kwh")

# Label schema limits for carbon.dataset.
_MAX_NAME = 128
_MAX_VERSION = 64

_HOUR = timedelta(hours=1)


class CarbonError(ValueError):
    """A zone, intensity, PUE or hourly series that cannot be used."""


@dataclass(frozen=True)
class GridIntensity:
    """A grid carbon intensity and the dataset it came from."""

    zone: str
    intensity_g_per_kwh: float
    dataset_name: str
    dataset_version: str
    year: int

    def to_label(self) -> dict[str, Any]:
        """The label's ``carbon`` fields ``zone``, ``intensity_g_per_kwh`` and ``dataset``."""
        return {
            "zone": self.zone,
            "intensity_g_per_kwh": self.intensity_g_per_kwh,
            "dataset": {
                "name": self.dataset_name,
                "version": self.dataset_version,
                "year": self.year,
            },
        }


# --------------------------------------------------------------------------- bundled table


def _normalise_zone(zone: str) -> str:
    """``fr`` → ``FR``, ``us-CAL`` → ``US-CAL`` (the region part keeps its case)."""
    if not isinstance(zone, str):
        raise CarbonError(f"zone must be a string, got {type(zone).__name__}")
    zone = zone.strip()
    normalised = zone[:2].upper() + zone[2:]
    if not ZONE_PATTERN.fullmatch(normalised):
        raise CarbonError(
            f"zone {zone!r} is not an ISO 3166-1 alpha-2 country code, optionally followed by "
            "'-region' (pattern ^[A-Z]{2}(-[A-Za-z0-9_-]{1,48})?$), e.g. 'FR', 'US-CAL', "
            "'DE-eu-central-1'"
        )
    return normalised


def lookup(zone: str) -> GridIntensity:
    """The yearly average intensity for ``zone`` from the bundled country table.

    ``zone`` is an ISO 3166-1 alpha-2 code, optionally with a region suffix (``US-CAL``,
    ``DE-eu-central-1``); a region gets its country's yearly average (the returned ``zone`` keeps
    the region, as the label records where the benchmark ran). The dataset year is that country's
    own data year. Unknown country → :class:`CarbonError`.
    """
    normalised = _normalise_zone(zone)
    country = normalised[:2]
    row = grid.table().get(country)
    if row is None:
        info = dataset_info()
        known = grid.zones()
        raise CarbonError(
            f"no grid intensity for zone {normalised!r} (country {country!r}) in the bundled "
            f"table ({info.name}, {info.version}): pass one of its {len(known)} countries with "
            f"--zone ({', '.join(known[:8])}, ...; a region such as US-CAL takes its country's "
            "figure), or your own figure with --intensity G_PER_KWH --intensity-source SOURCE, "
            "or hourly figures with --hourly FILE (timestamp,intensity_g_per_kwh); see "
            "docs/carbon.md"
        )
    info = dataset_info()
    return GridIntensity(
        zone=normalised,
        intensity_g_per_kwh=row.intensity_g_per_kwh,
        dataset_name=info.name,
        dataset_version=info.version,
        year=row.year,
    )


def _check_intensity(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CarbonError(f"{what} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or not 0.0 <= value <= MAX_INTENSITY_G_PER_KWH:
        raise CarbonError(
            f"{what} must be between 0 and {MAX_INTENSITY_G_PER_KWH:g} g CO2e/kWh, got {value!r}"
        )
    return value


def override(zone: str, intensity_g_per_kwh: float, *, source: str) -> GridIntensity:
    """A user-supplied intensity for ``zone`` (dataset ``user-supplied``, version ``source``).

    ``source`` says where the figure comes from (1-64 characters, e.g. ``"utility bill 2024"``
    or ``"Electricity Maps FR 2024 yearly"``); the year is the current (UTC) year.
    """
    normalised = _normalise_zone(zone)
    value = _check_intensity(intensity_g_per_kwh, "intensity_g_per_kwh")
    if not isinstance(source, str) or not source.strip():
        raise CarbonError("source must say where the intensity comes from (non-empty text)")
    source = source.strip()
    if len(source) > _MAX_VERSION:
        raise CarbonError(
            f"source is {len(source)} characters; the label allows at most {_MAX_VERSION}"
        )
    return GridIntensity(
        zone=normalised,
        intensity_g_per_kwh=value,
        dataset_name="user-supplied",
        dataset_version=source,
        year=datetime.now(UTC).year,
    )


# --------------------------------------------------------------------------- CO2e


def validate_pue(pue: float) -> float:
    """``pue`` as a float, or :class:`CarbonError` unless it lies in [1.0, 5.0]."""
    if isinstance(pue, bool) or not isinstance(pue, int | float):
        raise CarbonError(f"PUE must be a number, got {pue!r}")
    value = float(pue)
    if not math.isfinite(value) or not MIN_PUE <= value <= MAX_PUE:
        raise CarbonError(f"PUE must be between {MIN_PUE:g} and {MAX_PUE:g}, got {pue!r}")
    return value


def _intensity_value(intensity: GridIntensity | float) -> float:
    if isinstance(intensity, GridIntensity):
        return intensity.intensity_g_per_kwh
    return _check_intensity(intensity, "intensity")


def co2e_g(energy_wh: float, intensity: GridIntensity | float, pue: float) -> float:
    """Grams CO2e for ``energy_wh`` of IT energy: ``energy_wh / 1000 * pue * intensity``.

    Use it with energy per functional unit (Wh per 1,000 inferences, Wh per training step) for
    ``co2e_per_unit_g``, or with a run's total energy. Energy may be negative only for a CI bound.
    """
    if isinstance(energy_wh, bool) or not isinstance(energy_wh, int | float):
        raise CarbonError(f"energy_wh must be a number, got {energy_wh!r}")
    if not math.isfinite(energy_wh):
        raise CarbonError(f"energy_wh must be finite, got {energy_wh!r}")
    # Same association as the verifier (schemas/results.py): Wh * (g/kWh * PUE / 1000).
    return float(energy_wh) * (_intensity_value(intensity) * validate_pue(pue) / 1000.0)


def co2e_per_run_g(
    energy_per_step_wh: float,
    total_steps: int,
    intensity: GridIntensity | float,
    pue: float,
) -> float:
    """Training: grams CO2e for a declared run of ``total_steps`` at ``energy_per_step_wh``."""
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise CarbonError(f"total_steps must be a positive integer, got {total_steps!r}")
    return co2e_g(energy_per_step_wh * total_steps, intensity, pue)


# --------------------------------------------------------------------------- hourly


def _parse_timestamp(text: str, where: str) -> datetime:
    text = text.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CarbonError(
            f"{where}: {text!r} is not an RFC 3339 / ISO 8601 timestamp (e.g. 2025-03-01T10:00:00Z)"
        ) from exc
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise CarbonError(
            f"{where}: timestamp {text!r} has no timezone; write it with one, "
            "e.g. 2025-03-01T10:00:00Z or 2025-03-01T11:00:00+01:00"
        )
    return moment.astimezone(UTC)


def load_hourly_csv(path: str | os.PathLike[str]) -> list[tuple[datetime, float]]:
    """Read an hourly intensity CSV: header ``timestamp,intensity_g_per_kwh``, one row an hour,
    or an Electricity Maps hourly export (``bench_runner.grid_hourly``).

    Timestamps must carry a timezone (they are returned in UTC); each row applies from its
    timestamp for one hour. Rows are returned sorted; two rows whose hours overlap (the same hour
    written twice, possibly in different offsets) are rejected, as are intensities outside
    [0, 5000] g CO2e/kWh. Hours may be missing: only the hours a trial touches must be present.
    """
    name = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            records = list(csv.reader(handle))
    except OSError as exc:
        raise CarbonError(f"cannot read hourly intensity CSV {name}: {exc}") from exc
    records = [r for r in records if any(cell.strip() for cell in r)]
    if records and grid_hourly.is_electricitymaps(records[0]):
        try:  # an Electricity Maps hourly export: its life-cycle intensity
            return grid_hourly.read_electricitymaps(path).intensities()
        except grid_hourly.GridDataError as exc:
            raise CarbonError(str(exc)) from None
    if not records or tuple(c.strip() for c in records[0]) != HOURLY_HEADER:
        got = ",".join(records[0]) if records else "an empty file"
        raise CarbonError(
            f"{name}: the first line must be 'timestamp,intensity_g_per_kwh', got {got!r}"
        )
    rows: list[tuple[datetime, float]] = []
    for number, record in enumerate(records[1:], start=2):
        where = f"{name} line {number}"
        if len(record) != 2:
            raise CarbonError(f"{where}: expected 2 columns, got {len(record)}")
        moment = _parse_timestamp(record[0], where)
        try:
            value = float(record[1])
        except ValueError as exc:
            raise CarbonError(f"{where}: intensity {record[1]!r} is not a number") from exc
        rows.append((moment, _check_intensity(value, f"{where}: intensity")))
    if not rows:
        raise CarbonError(f"{name}: no rows after the header")
    rows.sort(key=lambda row: row[0])
    for (before, _), (after, _) in itertools.pairwise(rows):
        if after - before < _HOUR:
            what = "appears twice" if after == before else f"overlaps the hour from {_iso(before)}"
            raise CarbonError(f"{name}: hour {_iso(after)} {what}")
    return rows


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _aware(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime):
        raise CarbonError(f"{what} must be a datetime, got {moment!r}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise CarbonError(f"{what} {moment.isoformat()} has no timezone")
    return moment.astimezone(UTC)


def _checked_hourly(hourly: Sequence[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    if not hourly:
        raise CarbonError("the hourly intensity series is empty")
    rows = sorted(
        (
            (_aware(t, "hourly timestamp"), _check_intensity(v, "hourly intensity"))
            for t, v in hourly
        ),
        key=lambda row: row[0],
    )
    for (before, _), (after, _) in itertools.pairwise(rows):
        if after - before < _HOUR:
            raise CarbonError(f"hourly rows from {_iso(before)} and {_iso(after)} overlap")
    return rows


def _covering(starts: list[datetime], moment: datetime) -> int:
    """Index of the row whose hour contains ``moment``, or CarbonError naming the gap."""
    index = bisect.bisect_right(starts, moment) - 1
    if index < 0 or moment >= starts[index] + _HOUR:
        first, last = starts[0], starts[-1] + _HOUR
        raise CarbonError(
            f"no hourly intensity covers {_iso(moment)}: the hourly CSV covers {_iso(first)} to "
            f"{_iso(last)}" + (" with gaps" if len(starts) * _HOUR != last - first else "")
        )
    return index


def hourly_matched_co2e_g(
    intervals: Iterable[tuple[datetime, datetime, float]],
    hourly: Sequence[tuple[datetime, float]],
    pue: float,
) -> float:
    """Grams CO2e of energy intervals matched hour by hour against an hourly intensity series.

    ``intervals`` are ``(start, end, energy_wh)`` with timezone-aware datetimes (e.g. each trial's
    window and gross energy). An interval's energy is assumed uniform in time and split across the
    hours it overlaps; each part is multiplied by that hour's intensity (a row applies from its
    timestamp for one hour) and by ``pue``. A zero-length interval uses the hour containing it.
    Any instant of an interval without an hourly row → :class:`CarbonError` naming it.
    """
    factor = validate_pue(pue) / 1000.0
    rows = _checked_hourly(hourly)
    starts = [t for t, _ in rows]
    total = 0.0
    for number, interval in enumerate(intervals):
        start, end, energy_wh = interval
        start = _aware(start, f"interval {number} start")
        end = _aware(end, f"interval {number} end")
        if isinstance(energy_wh, bool) or not isinstance(energy_wh, int | float):
            raise CarbonError(f"interval {number}: energy_wh must be a number, got {energy_wh!r}")
        if not math.isfinite(energy_wh) or energy_wh < 0:
            raise CarbonError(f"interval {number}: energy_wh must be >= 0, got {energy_wh!r}")
        if end < start:
            raise CarbonError(
                f"interval {number} ends ({_iso(end)}) before it starts ({_iso(start)})"
            )
        if end == start:
            total += energy_wh * rows[_covering(starts, start)][1]
            continue
        span = (end - start).total_seconds()
        cursor = start
        while cursor < end:
            index = _covering(starts, cursor)
            hour_start, intensity = rows[index]
            part_end = min(end, hour_start + _HOUR)
            share = (part_end - cursor).total_seconds() / span
            total += energy_wh * share * intensity
            cursor = part_end
    return total * factor


def hourly_for_label(
    hourly: Sequence[tuple[datetime, float]], start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """The hourly rows overlapping ``[start, end)`` (or containing ``start`` when the two are
    equal), as the label's ``carbon.hourly.intensities`` (timestamps in UTC, ``Z``)."""
    start = _aware(start, "start")
    end = _aware(end, "end")
    return [
        {"timestamp": _iso(moment), "intensity_g_per_kwh": value}
        for moment, value in _checked_hourly(hourly)
        if moment + _HOUR > start and (moment < end or moment <= start)
    ]
