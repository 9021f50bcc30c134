"""carbonlabel: the command line that ties the runner's and the registry's commands together,
and ``carbonlabel.track`` (a whole training run, measured and signed: docs/monitoring.md)."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # imported on first use: importing carbonlabel does no work
    if name == "track":
        from bench_runner.tracking.track import track

        return track
    raise AttributeError(f"module 'carbonlabel' has no attribute {name!r}")
