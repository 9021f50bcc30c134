"""The energy in a label's trace windows: counter deltas and trapezoid integrals, and the
settling tail of each trial window (``measurement.settle_s``).

``schemas.results`` derives every figure from these; meters' tests check their traces with
``component_energy_j``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def component_energy_j(component: Mapping[str, Any], t_start_s: float, t_end_s: float) -> float:
    """Energy of one component over a window: a counter delta or a trapezoid integral."""
    if "counter_start_j" in component:
        if component.get("resets"):
            # the counter was reset inside the window: the start and end no longer tell the
            # energy; the meter summed it over its polls
            return float(component["energy_j"])
        delta = float(component["counter_end_j"]) - float(component["counter_start_j"])
        if delta < 0:
            span = component.get("counter_range_j")
            if not span:
                raise ValueError("energy counter went backwards and no counter_range_j is given")
            delta += float(span)
        return delta
    samples = component["samples"]
    energy = 0.0
    for (t0, p0), (t1, p1) in itertools.pairwise(samples):
        dt = float(t1) - float(t0)
        if dt < 0:
            raise ValueError("power samples are not in time order")
        energy += dt * (float(p0) + float(p1)) / 2.0
    return energy


def window_energy_by_component(window: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    t0, t1 = float(window["t_start_s"]), float(window["t_end_s"])
    for component in window["components"]:
        name = component["name"]
        out[name] = out.get(name, 0.0) + component_energy_j(component, t0, t1)
    return out


@dataclass(frozen=True)
class Settling:
    """The settling tail of every trial window (``measurement.settle_s``: the end edge is read
    that long after the window's last step, so a lagging meter's reading of the work lands in the
    window) and each component's idle power, to take the tail's idle energy back out."""

    settle_s: float
    idle_w: dict[str, float]


def settling_of(label: Mapping[str, Any]) -> Settling:
    settle_s = float(label.get("measurement", {}).get("settle_s") or 0.0)
    if settle_s <= 0:
        return Settling(0.0, {})
    idle = label["traces"].get("idle")
    if idle is None:  # operational labels: a deployed engine is never idle on demand
        return Settling(settle_s, {})
    idle_s = float(idle["t_end_s"]) - float(idle["t_start_s"])
    idle_j = window_energy_by_component(idle)
    return Settling(settle_s, {n: j / idle_s for n, j in idle_j.items()} if idle_s > 0 else {})


def working_s(trial: Mapping[str, Any], settling: Settling) -> float:
    """A trial's working time (s): its window less the settling tail."""
    window_s = float(trial["t_end_s"]) - float(trial["t_start_s"]) - settling.settle_s
    if window_s <= 0:
        raise ValueError(f"trial {trial['index']} has a working time of {window_s} s")
    return window_s


def trial_energy(trial: Mapping[str, Any], settling: Settling) -> tuple[dict[str, float], float]:
    """A trial's energy per component (J) and its working time (s): the window less its settling
    tail, and each component's energy less its idle power over that tail."""
    window_s = working_s(trial, settling)
    by_component = window_energy_by_component(trial)
    if settling.settle_s:
        by_component = {
            name: energy_j - settling.idle_w.get(name, 0.0) * settling.settle_s
            for name, energy_j in by_component.items()
        }
    return by_component, window_s
