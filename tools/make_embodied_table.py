"""Regenerate the bundled embodied-emissions table (``schemas/embodied.json``) from BoaviztAPI.

    python -m venv /tmp/boavizta && /tmp/boavizta/bin/pip install boaviztapi==2.5.0 httpx
    /tmp/boavizta/bin/python tools/make_embodied_table.py           # (re)write the table
    /tmp/boavizta/bin/python tools/make_embodied_table.py --check   # exit 1 if it would change

BoaviztAPI (Boavizta, https://github.com/Boavizta/boaviztapi, AGPL-3.0; a build-time tool here,
not a dependency: only the figures it computes are bundled, with attribution) is run in process,
through its own FastAPI app, for the inputs below:

- **Accelerator**: ``POST /v1/component/gpu`` with the GPU's Boavizta name; the embedded
  (manufacturing) GWP in kgCO2e of one card.
- **Host share per accelerator**: ``GET /v1/server/?archetype=...`` for the cloud server that
  carries eight of those GPUs: (the server's embedded GWP - its GPUs' embedded GWP) / 8: the
  chassis, CPUs, memory, storage, power supplies and assembly that one GPU's work also occupies.
  The two PCIe classes have no eight-GPU server archetype in Boavizta: they take the host share of
  ``g6e.48xlarge`` (eight L40S, PCIe), marked as a proxy.
- **CPU classes**: the whole server's embedded GWP divided by its logical CPUs (labels record
  ``hardware.cpu.cores`` as the machine's logical CPU count), kgCO2e per logical CPU.

The service life is six years (52,560 h): the useful life of servers in Microsoft's and Alphabet's
financial statements since 2022 and 2023, the lifetime of Boavizta's AWS server archetypes
(``hours_life_time`` 52,560), and the replacement period in the BLOOM footprint study (Luccioni,
Viguier and Ligozat, JMLR 24(253), 2023). docs/carbon.md gives the formula, the sources, and the
spread between sources (NVIDIA's own product carbon footprint of an HGX H100 board is 164 kgCO2e
per GPU; Boavizta's bottom-up model gives 575).
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Any

import table_files  # tools/table_files.py (this script runs from tools/)

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "schemas" / "embodied.json"
BOAVIZTA_VERSION = "2.5.0"
TABLE_VERSION = "1"
LIFE_H = 52_560
GPUS_PER_SERVER = 8
PCIE_PROXY = "g6e.48xlarge"

# hardware class: (Boavizta GPU name, server archetype carrying eight of them or None)
ACCELERATORS: dict[str, tuple[str, str | None]] = {
    "nvidia-h100-sxm-80gb": ("NVIDIA H100 SXM 80GB", "p5.48xlarge"),
    "nvidia-h100-pcie-80gb": ("NVIDIA H100 PCIe 80GB", None),
    "nvidia-h200-sxm-141gb": ("NVIDIA H200 SXM 141GB", "p5en.48xlarge"),
    "nvidia-a100-sxm-80gb": ("NVIDIA A100 SXM4 80GB", "p4de.24xlarge"),
    "nvidia-a100-sxm-40gb": ("NVIDIA A100 SXM4 40GB", "p4d.24xlarge"),
    "nvidia-a100-pcie-40gb": ("NVIDIA A100 PCIe 40GB", None),
    "nvidia-l40s-48gb": ("NVIDIA L40S 48GB", "g6e.48xlarge"),
    "nvidia-l4-24gb": ("NVIDIA L4", "g6.48xlarge"),
    # AWS's A10G is its variant of the A10; Boavizta's g5 archetype uses "NVIDIA A10"
    "nvidia-a10g-24gb": ("NVIDIA A10", "g5.48xlarge"),
    "nvidia-t4-16gb": ("NVIDIA T4", "g4dn.metal"),
}
# hardware class: (server archetype, logical CPUs)
CPUS: dict[str, tuple[str, int]] = {
    "cpu-x86-64": ("m6i.metal", 128),  # 2 x Intel Xeon Platinum 8375C, 32 cores, 2 threads each
    "cpu-aarch64": ("m7g.metal", 64),  # 1 x AWS Graviton3, 64 cores
}
# Plausible ranges (kgCO2e) for a sanity check of what BoaviztAPI returns.
PLAUSIBLE_ACCELERATOR_KG = (50.0, 2_000.0)
PLAUSIBLE_HOST_KG = (50.0, 2_000.0)
PLAUSIBLE_PER_CPU_KG = (2.0, 50.0)

SOURCES = {
    "boavizta": (
        f"BoaviztAPI {BOAVIZTA_VERSION} (Boavizta, https://github.com/Boavizta/boaviztapi), "
        "embedded GWP of its GPU component model and AWS server archetypes; computed by "
        "tools/make_embodied_table.py"
    ),
    "life": (
        "six years: servers' useful life in Microsoft's (FY2023) and Alphabet's (FY2022) annual "
        "reports; Boavizta AWS archetypes hours_life_time 52560; BLOOM footprint study (Luccioni, "
        "Viguier, Ligozat, JMLR 24(253), 2023): 6-year replacement"
    ),
    "vendor_comparison": (
        "NVIDIA HGX H100 product carbon footprint summary (ISO 14067): 1,312 kgCO2e per 8-GPU "
        "board, 164 per GPU; not used (one vendor, one class), shown in docs/carbon.md"
    ),
}


def _client() -> Any:
    from boaviztapi.main import app  # build-time only
    from fastapi.testclient import TestClient

    return TestClient(app)


def _embedded_kg(answer: dict[str, Any]) -> float:
    return float(answer["impacts"]["gwp"]["embedded"]["value"])


def _server(client: Any, archetype: str) -> dict[str, Any]:
    response = client.get(
        "/v1/server/",
        params={"archetype": archetype, "verbose": "true", "criteria": "gwp", "duration": LIFE_H},
    )
    response.raise_for_status()
    return dict(response.json())


def _host_share_kg(client: Any, archetype: str) -> float:
    server = _server(client, archetype)
    gpus = server["verbose"]["GPU-1"]
    count = float(gpus["units"]["value"])
    if count != GPUS_PER_SERVER:
        raise SystemExit(f"{archetype}: {count} GPUs, expected {GPUS_PER_SERVER}")
    return (_embedded_kg(server) - _embedded_kg(gpus)) / count


def _check(value: float, bounds: tuple[float, float], what: str) -> float:
    if not bounds[0] <= value <= bounds[1]:
        raise SystemExit(f"{what}: {value} kgCO2e is outside the plausible {bounds}")
    return round(value, 2)


def build() -> dict[str, Any]:
    installed = importlib.metadata.version("boaviztapi")
    if installed != BOAVIZTA_VERSION:
        raise SystemExit(
            f"boaviztapi {installed} is installed; this table is built with {BOAVIZTA_VERSION}"
        )
    client = _client()
    classes: dict[str, Any] = {}
    proxy_host_kg = _host_share_kg(client, PCIE_PROXY)
    for hardware_class, (gpu, archetype) in ACCELERATORS.items():
        response = client.post("/v1/component/gpu", params={"criteria": "gwp"}, json={"name": gpu})
        response.raise_for_status()
        accelerator_kg = _embedded_kg(response.json())
        host_kg = _host_share_kg(client, archetype) if archetype else proxy_host_kg
        host_basis = (
            f"({archetype} embedded GWP - its 8 GPUs') / 8"
            if archetype
            else f"proxy: {PCIE_PROXY}'s host share (no 8-GPU PCIe archetype for this GPU)"
        )
        classes[hardware_class] = {
            "accelerator_kg": _check(accelerator_kg, PLAUSIBLE_ACCELERATOR_KG, hardware_class),
            "host_kg_per_accelerator": _check(host_kg, PLAUSIBLE_HOST_KG, hardware_class),
            "basis": f"GPU: Boavizta '{gpu}'; host: {host_basis}",
        }
    for hardware_class, (archetype, cpus) in CPUS.items():
        per_cpu = _embedded_kg(_server(client, archetype)) / cpus
        classes[hardware_class] = {
            "host_kg_per_cpu": _check(per_cpu, PLAUSIBLE_PER_CPU_KG, hardware_class),
            "basis": f"{archetype} embedded GWP / {cpus} logical CPUs",
        }
    return {
        "name": "carbonlabel embodied factors",
        "current": TABLE_VERSION,
        "versions": {
            TABLE_VERSION: {
                "unit": "kgCO2e of manufacturing (cradle to gate, end of life excluded)",
                "life_h": LIFE_H,
                "classes": classes,
                "sources": SOURCES,
                "licence": (
                    "figures computed with BoaviztAPI (AGPL-3.0), cited with attribution; "
                    "this table: Apache-2.0 like the project"
                ),
            }
        },
    }


def render(table: dict[str, Any]) -> str:
    return json.dumps(table, indent=2, sort_keys=False) + "\n"


def main() -> int:
    return table_files.run(__doc__.split("\n")[0], OUTPUT, ROOT, lambda: render(build()))


if __name__ == "__main__":
    sys.exit(main())
