"""The bundled yearly grid-intensity table (``schemas/data/grid_intensity.csv`` and its
``.meta.json``, built by ``tools/make_grid_table.py``): read by the bench to convert energy to
CO2e, and by the registry for projections. docs/carbon.md describes the dataset."""

from __future__ import annotations

import csv
import functools
import json
from dataclasses import dataclass
from importlib import resources

ZONE_PATTERN = r"^[A-Z]{2}(-[A-Za-z0-9_-]{1,48})?$"
"""A zone as labels write it (the label schema's ``carbon.zone``): ISO 3166-1 alpha-2, optionally
``-region``."""

_TABLE = ("data", "grid_intensity.csv")
_META = ("data", "grid_intensity.meta.json")


@dataclass(frozen=True)
class DatasetInfo:
    """The bundled table's metadata (``grid_intensity.meta.json``)."""

    name: str
    version: str
    year: int
    licence: str
    attribution: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Row:
    country: str
    intensity_g_per_kwh: float
    year: int


def _read(*parts: str) -> str:
    return resources.files("schemas").joinpath(*parts).read_text(encoding="utf-8")


@functools.cache
def dataset_info() -> DatasetInfo:
    """Name, version, latest year, licence, attribution and sources of the bundled table."""
    meta = json.loads(_read(*_META))
    return DatasetInfo(
        name=str(meta["name"]),
        version=str(meta["version"]),
        year=int(meta["year"]),
        licence=str(meta["licence"]),
        attribution=str(meta["attribution"]),
        sources=tuple(str(s) for s in meta["sources"]),
    )


@functools.cache
def table() -> dict[str, Row]:
    """Country (ISO 3166-1 alpha-2) -> its row."""
    rows: dict[str, Row] = {}
    for record in csv.DictReader(_read(*_TABLE).splitlines()):
        rows[record["zone"]] = Row(
            country=record["country"],
            intensity_g_per_kwh=float(record["intensity_g_per_kwh"]),
            year=int(record["year"]),
        )
    return rows


def zones() -> list[str]:
    """The country zones in the bundled table, sorted."""
    return sorted(table())


def country_row(zone: str) -> Row | None:
    """The row of a zone's country (``US-CAL`` takes ``US``'s), None when the table has none."""
    return table().get(zone[:2].upper())
