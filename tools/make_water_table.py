"""Regenerate the bundled water table (``schemas/water.json``) from EcoLogits' electricity data.

    python -m venv /tmp/ecologits && /tmp/ecologits/bin/pip install ecologits==0.9.1 pycountry
    /tmp/ecologits/bin/python tools/make_water_table.py           # (re)write the table
    /tmp/ecologits/bin/python tools/make_water_table.py --check   # exit 1 if it would change

**Off-site water** (generating the electricity): the ``wue`` column of
``ecologits/data/electricity_mixes.csv`` in the installed ``ecologits`` package (EcoLogits,
https://github.com/genai-impact/ecologits, MPL-2.0), litres of water consumed per kWh generated,
keyed by ISO 3166-1 alpha-3. EcoLogits took these from the World Resources Institute's country
factors (Reig, Luo, Christensen and Sinistore, *Guidance for Calculating Water Use Embedded in
Purchased Electricity*, WRI 2020, appendix 2, gallons per kWh x 3.785; CC BY 4.0): consumption,
not withdrawal, with the evaporation of hydropower reservoirs counted in full. The world row
(``WOR``) is left out: it does not match WRI's own world average, and a zone the table does not
cover gets no figure rather than a guess.

**On-site water** (the data centre's cooling), when the publisher declares no WUE: 0.375 litres
per kWh of IT energy, the average of US data centres in 2023 in the Lawrence Berkeley National
Laboratory's *2024 United States Data Center Energy Usage Report* (Shehabi et al., LBNL-2001637):
66 billion litres of direct water use over 176 TWh.
"""

from __future__ import annotations

import csv
import importlib.metadata
import importlib.resources
import io
import json
import sys
from pathlib import Path
from typing import Any

import table_files  # tools/table_files.py (this script runs from tools/)

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "schemas" / "water.json"
ECOLOGITS_VERSION = "0.9.1"
TABLE_VERSION = "1"
DEFAULT_WUE_L_PER_KWH = 0.375
# Plausible range (L/kWh) of a country's off-site factor, for a sanity check.
PLAUSIBLE_L_PER_KWH = (0.1, 30.0)
LEFT_OUT = {"WOR": "world average: EcoLogits' 3.908 does not match WRI's 4.81; not used"}


def _alpha2(alpha3: str) -> str:
    import pycountry  # build-time only

    country = pycountry.countries.get(alpha_3=alpha3)
    if country is None:
        raise SystemExit(f"unknown ISO 3166-1 alpha-3 code {alpha3!r} in the EcoLogits table")
    return str(country.alpha_2)


def build() -> dict[str, Any]:
    installed = importlib.metadata.version("ecologits")
    if installed != ECOLOGITS_VERSION:
        raise SystemExit(
            f"ecologits {installed} is installed; this table is built with {ECOLOGITS_VERSION}"
        )
    text = (
        importlib.resources.files("ecologits").joinpath("data", "electricity_mixes.csv").read_text()
    )
    zones: dict[str, float] = {}
    for row in csv.DictReader(io.StringIO(text)):
        code = row["name"]
        if code in LEFT_OUT:
            continue
        value = float(row["wue"])
        if not PLAUSIBLE_L_PER_KWH[0] <= value <= PLAUSIBLE_L_PER_KWH[1]:
            raise SystemExit(f"{code}: {value} L/kWh is outside {PLAUSIBLE_L_PER_KWH}")
        zones[_alpha2(code)] = value
    return {
        "name": "carbonlabel water factors",
        "current": TABLE_VERSION,
        "versions": {
            TABLE_VERSION: {
                "unit": "litres of water consumed per kWh",
                "onsite_default": {
                    "wue_l_per_kwh": DEFAULT_WUE_L_PER_KWH,
                    "basis": "litres of site water per kWh of IT energy (The Green Grid's WUE)",
                    "source": (
                        "Shehabi et al., 2024 United States Data Center Energy Usage Report, "
                        "LBNL-2001637: 66 billion litres of direct water use over 176 TWh (2023)"
                    ),
                },
                "zones": dict(sorted(zones.items())),
                "zones_basis": (
                    "litres consumed per kWh generated, by ISO 3166-1 alpha-2 country; applied "
                    "to facility energy (IT energy x PUE)"
                ),
                "source": (
                    "World Resources Institute, Guidance for Calculating Water Use Embedded in "
                    "Purchased Electricity (Reig, Luo, Christensen, Sinistore, 2020), appendix 2 "
                    f"(CC BY 4.0), as the wue column of EcoLogits {ECOLOGITS_VERSION} "
                    "ecologits/data/electricity_mixes.csv (MPL-2.0)"
                ),
                "left_out": LEFT_OUT,
            }
        },
    }


def render(table: dict[str, Any]) -> str:
    return json.dumps(table, indent=2) + "\n"


def main() -> int:
    return table_files.run(__doc__.split("\n")[0], OUTPUT, ROOT, lambda: render(build()))


if __name__ == "__main__":
    sys.exit(main())
