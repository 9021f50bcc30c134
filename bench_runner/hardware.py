"""Host facts for the label: CPU model and cores, RAM, and the reference hardware class."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from schemas.contract import load_methodology


def cpu_model_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip() or "unknown"
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def ram_bytes(meminfo: Path = Path("/proc/meminfo")) -> int:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def hardware_class(accelerator_name: str | None) -> str:
    """The methodology's class whose names list holds this exact device name; CPU classes when
    there is no accelerator; "other" otherwise."""
    classes = load_methodology()["hardware_classes"]
    if accelerator_name:
        for name, spec in classes.items():
            if accelerator_name in spec["names"]:
                return str(name)
        return "other"
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return "cpu-x86-64"
    if machine in ("aarch64", "arm64"):
        return "cpu-aarch64"
    return "other"
