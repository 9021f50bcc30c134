"""Regenerate the bundled grid-intensity table from CodeCarbon's country data.

    .venv/bin/pip install codecarbon pycountry            # build-time only, not runtime deps
    .venv/bin/python tools/make_grid_table.py             # (re)write the two files
    .venv/bin/python tools/make_grid_table.py --check     # exit 1 if either file would change
    .venv/bin/python tools/make_grid_table.py --source PATH/global_energy_mix.json

Input: ``codecarbon/data/private_infra/global_energy_mix.json`` from the installed ``codecarbon``
package (keyed by ISO 3166-1 alpha-3; ``carbon_intensity`` in g CO2e/kWh and the ``year`` of that
figure per country). CodeCarbon takes these figures from Our World in Data's "carbon intensity of
electricity" series, whose primary source is Ember (both CC BY 4.0); where a country has no figure
for the latest year CodeCarbon keeps its most recent earlier year, so ``year`` varies by row.

Output, under ``schemas/data/``:

- ``grid_intensity.csv``: ``zone,country,intensity_g_per_kwh,year``, one row per country, ``zone``
  the ISO 3166-1 alpha-2 code (uppercase), sorted by zone. Rows with a non-positive intensity are
  left out (a zero is a gap in the source, not a zero-carbon grid) and listed in the meta file.
- ``grid_intensity.meta.json``: dataset name, version, year, sources, licence and attribution,
  read by ``schemas.grid`` (the bench and the registry) and written (name, version, year)
  into each label.

The script also checks a few well-known countries against plausible ranges and fails if one is off.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "schemas" / "data"
CSV_PATH = DATA / "grid_intensity.csv"
META_PATH = DATA / "grid_intensity.meta.json"
SOURCE_IN_PACKAGE = ("data", "private_infra", "global_energy_mix.json")

DATASET_NAME = "Ember / Our World in Data carbon intensity of electricity (via CodeCarbon)"

# Codes pycountry does not know (user-assigned or not yet in ISO 3166-1).
EXTRA_ALPHA3 = {"XKX": "XK", "OWID_KOS": "XK"}

# Sanity ranges (g CO2e/kWh) for countries whose grids are well known.
PLAUSIBLE = {
    "FR": (50.0, 90.0),
    "SE": (0.0, 60.0),
    "PL": (600.0, 1000.0),
    "IN": (600.0, 900.0),
    "DE": (300.0, 450.0),
    "US": (350.0, 450.0),
    "GB": (150.0, 350.0),
    "CN": (450.0, 700.0),
    "NO": (0.0, 60.0),
}
MIN_COUNTRIES = 150


def _codecarbon_source() -> tuple[Path, str]:
    """The installed codecarbon's data file and codecarbon's version (without importing it)."""
    spec = importlib.util.find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "codecarbon is not installed: .venv/bin/pip install codecarbon (build-time only)"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*SOURCE_IN_PACKAGE)
    return path, importlib.metadata.version("codecarbon")


def _alpha2(alpha3: str) -> str:
    if alpha3 in EXTRA_ALPHA3:
        return EXTRA_ALPHA3[alpha3]
    import pycountry  # build-time only

    country = pycountry.countries.get(alpha_3=alpha3)
    if country is None:
        raise SystemExit(f"no ISO 3166-1 alpha-2 code for {alpha3!r}; add it to EXTRA_ALPHA3")
    return str(country.alpha_2)


def build(source: Path, codecarbon_version: str) -> tuple[str, dict[str, Any], dict[str, float]]:
    """(CSV text, meta document, {zone: intensity}) from CodeCarbon's JSON."""
    raw = source.read_bytes()
    data: dict[str, dict[str, Any]] = json.loads(raw)
    rows: list[tuple[str, str, float, int]] = []
    excluded: list[dict[str, Any]] = []
    for alpha3, entry in sorted(data.items()):
        intensity = entry.get("carbon_intensity")
        year = entry.get("year")
        name = str(entry.get("country_name", alpha3))
        zone = _alpha2(str(entry.get("iso_code") or alpha3))
        if not isinstance(intensity, int | float) or not isinstance(year, int):
            excluded.append({"zone": zone, "country": name, "reason": "no intensity or year"})
            continue
        if intensity <= 0:
            excluded.append(
                {
                    "zone": zone,
                    "country": name,
                    "reason": f"intensity {intensity} g/kWh in the source (a data gap)",
                }
            )
            continue
        if intensity > 5000:
            raise SystemExit(f"{alpha3}: implausible intensity {intensity} g/kWh")
        rows.append((zone, name, round(float(intensity), 3), year))
    rows.sort()
    zones = [r[0] for r in rows]
    duplicates = [z for z, n in Counter(zones).items() if n > 1]
    if duplicates:
        raise SystemExit(f"two source rows map to the same zone: {duplicates}")
    if len(rows) < MIN_COUNTRIES:
        raise SystemExit(f"only {len(rows)} countries; expected at least {MIN_COUNTRIES}")

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["zone", "country", "intensity_g_per_kwh", "year"])
    for zone, name, intensity, year in rows:
        writer.writerow([zone, name, repr(intensity), year])
    text = buf.getvalue()

    years = Counter(r[3] for r in rows)
    latest = max(years)
    meta: dict[str, Any] = {
        "name": DATASET_NAME,
        "version": f"codecarbon-{codecarbon_version}",
        "year": latest,
        "years": {str(y): n for y, n in sorted(years.items())},
        "year_note": (
            "year is the latest data year in the table; each row carries the year of its own "
            "figure (CodeCarbon keeps a country's most recent earlier year when the latest is "
            "missing), and that row year is what goes into a label"
        ),
        "unit": "g CO2e/kWh",
        "basis": "location-based, yearly average of electricity generation, lifecycle emissions",
        "countries": len(rows),
        "excluded": excluded,
        "licence": "CC BY 4.0",
        "licence_url": "https://creativecommons.org/licenses/by/4.0/",
        "attribution": (
            "Carbon intensity of electricity generation: Ember (Yearly Electricity Data) and "
            "Energy Institute (Statistical Review of World Energy), with major processing by "
            "Our World in Data (CC BY 4.0); as bundled in CodeCarbon "
            f"{codecarbon_version} (codecarbon/data/private_infra/global_energy_mix.json, "
            "CodeCarbon is MIT-licensed). Converted to ISO 3166-1 alpha-2 zones by carbonlabel."
        ),
        "sources": [
            "https://ember-energy.org/data/yearly-electricity-data/",
            "https://ourworldindata.org/grapher/carbon-intensity-electricity",
            "https://github.com/owid/energy-data",
            "https://github.com/mlco2/codecarbon/blob/master/codecarbon/data/private_infra/global_energy_mix.json",
        ],
        "source_file": "codecarbon/data/private_infra/global_energy_mix.json",
        "source_sha256": hashlib.sha256(raw).hexdigest(),
        "table_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "generated_by": "tools/make_grid_table.py",
    }
    return text, meta, {zone: intensity for zone, _, intensity, _ in rows}


def check_plausible(table: dict[str, float]) -> list[str]:
    problems = []
    for zone, (low, high) in PLAUSIBLE.items():
        value = table.get(zone)
        if value is None or not low <= value <= high:
            problems.append(f"{zone}: {value} g/kWh not in [{low}, {high}]")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file would change")
    parser.add_argument("--source", type=Path, help="global_energy_mix.json to read")
    parser.add_argument(
        "--codecarbon-version", help="version to record with --source (default: installed)"
    )
    args = parser.parse_args(argv)

    if args.source is not None:
        source = args.source
        version = args.codecarbon_version or importlib.metadata.version("codecarbon")
    else:
        source, version = _codecarbon_source()
    text, meta, table = build(source, version)

    for zone in PLAUSIBLE:
        print(f"{zone}: {table.get(zone)} g/kWh")
    print(f"{len(table)} countries, years {meta['years']}, version {meta['version']}")
    problems = check_plausible(table)
    if problems:
        print("implausible values:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1

    meta_text = json.dumps(meta, indent=2, ensure_ascii=False) + "\n"
    outputs = {CSV_PATH: text, META_PATH: meta_text}
    if args.check:
        stale = [p for p, t in outputs.items() if not p.exists() or p.read_text("utf-8") != t]
        for path in stale:
            print(f"would change: {path.relative_to(ROOT)}", file=sys.stderr)
        return 1 if stale else 0
    DATA.mkdir(parents=True, exist_ok=True)
    for path, content in outputs.items():
        path.write_text(content, encoding="utf-8", newline="\n")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
