"""What ``carbonlabel bench`` shows: live progress, and the summary of the finished label."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table

from bench_runner.measure import Progress

UNIT_NAMES = {
    "1k-inferences": ("Wh per 1,000 inferences", "inferences/s"),
    "1k-requests": ("Wh per 1,000 requests", "requests/s"),
    "step": ("Wh per training step", "steps/s"),
}
"""The energy unit of each functional unit, as the registry's pages name it, and its rate."""


def fig(value: float) -> str:
    """A figure to 3 significant digits, without an exponent (``0.000123``, ``12.3``,
    ``12,300``)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    value = float(f"{value:.3g}")  # rounded first: 9.996 is 10.0, not 10.00
    decimals = 2 - math.floor(math.log10(abs(value)))
    if decimals > 0:
        return f"{value:.{decimals}f}"
    return f"{round(value, decimals):,.0f}"


class LiveDisplay:
    """A one-line Rich live progress, with the joules of the current phase integrated from the
    watts each report carries (shared by ``bench`` and ``bench --task chat-serving``)."""

    def __init__(self, quiet: bool, console: Console, description: str = "preflight") -> None:
        from rich.progress import Progress as RichProgress
        from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

        self.quiet = quiet
        self.progress = RichProgress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=quiet,
        )
        self.task_id = self.progress.add_task(description, total=None)
        self.energy_j = 0.0
        self._last: tuple[tuple[Any, ...], float] | None = None

    def __enter__(self) -> Any:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def integrate(self, key: tuple[Any, ...], elapsed_s: float, power_w: float | None) -> None:
        """Add the joules since the last report of the same phase (``key``); a new phase starts
        from zero."""
        if self._last is None or self._last[0] != key:
            self.energy_j = 0.0
        elif power_w is not None:
            self.energy_j += power_w * max(0.0, elapsed_s - self._last[1])
        self._last = (key, elapsed_s)

    def show(self, description: str) -> None:
        self.progress.update(self.task_id, description=description)


def watts_text(power_w: float | None) -> str:
    return f"{power_w:7.1f} W" if power_w is not None else "      ? W"


class Display(LiveDisplay):
    """``bench``'s progress: phase, trial i/N, live watts and (integrated) joules; then the
    scoring of the outputs (i/N items)."""

    def __call__(self, p: Progress) -> None:
        self.integrate((p.phase, p.trial), p.elapsed_s, p.power_w)
        if p.phase == "done":
            self.show("protocol done")
            return
        watts = watts_text(p.power_w)
        where = {
            "idle": "idle baseline",
            "warmup": f"warm-up ({p.units} iterations)",
            "cooldown": f"cooldown before trial {p.trial}/{p.trials}",
            "trial": f"trial {p.trial}/{p.trials} ({p.units} units)",
        }[p.phase]
        self.show(f"{where:<34} {watts}  {self.energy_j:9.1f} J")

    def scoring(self, done: int, total: int) -> None:
        self.show(f"quality: scoring {done}/{total} items")

    def quality_done(self, block: dict[str, Any] | None) -> None:
        if block and "measured" in block:
            items = block["measured"]["items"]
            self.show(f"quality: scored {items}/{items} items")
        else:
            self.show("quality: none measured (see below)")


def _interval(stats: dict[str, Any], unit: str) -> str:
    return (
        f"{fig(stats['mean'])} {unit} (95% CI {fig(stats['ci95_low'])} to "
        f"{fig(stats['ci95_high'])})"
    )


def summary_table(label: dict[str, Any]) -> Table:
    """Energy per functional unit by component, with the 95% interval and CV."""
    from schemas.results import per_trial_component_wh
    from schemas.stats import summarize

    results = label["results"]
    unit = UNIT_NAMES.get(results["functional_unit"], (results["functional_unit"], ""))[0]
    energy = results["energy_per_unit_wh"]
    table = Table(title=f"{label['model']['id']}@{label['model']['revision']}")
    for column in ("component", "method", f"mean ({unit})", "95% CI", "CV"):
        table.add_column(column)
    stats = {name: summarize(v) for name, v in per_trial_component_wh(label).items()}
    for component in results["components"]:
        s = stats[component["name"]]
        table.add_row(
            component["name"],
            component["method"],
            fig(s.mean),
            f"{fig(s.ci95_low)} to {fig(s.ci95_high)}",
            f"{s.cv:.1%}",
        )
    table.add_row(
        "total (gross)",
        "",
        fig(energy["mean"]),
        f"{fig(energy['ci95_low'])} to {fig(energy['ci95_high'])}",
        f"{energy['cv']:.1%}",
    )
    carbon = label["carbon"]
    table.caption = (
        f"idle power {fig(results['idle_power_w'])} W; "
        f"dynamic energy {fig(results['dynamic_energy_per_unit_wh'])} {unit}; "
        f"CO2e {fig(carbon['co2e_per_unit_g']['mean'])} {unit.replace('Wh', 'g', 1)} "
        f"({carbon['zone']}, {fig(carbon['intensity_g_per_kwh'])} g/kWh, PUE {carbon['pue']})"
    )
    return table


def summary_lines(label: dict[str, Any]) -> list[str]:
    """Energy per functional unit, tokens, throughput, energy per output token and quality."""
    results = label["results"]
    unit, rate = UNIT_NAMES.get(results["functional_unit"], (results["functional_unit"], "/s"))
    lines = [f"energy: {_interval(results['energy_per_unit_wh'], unit)}"]
    if "input_tokens_total" in results:
        tokens = f"tokens: {results['input_tokens_total']:,} input"
        if "output_tokens_total" in results:
            tokens += f", {results['output_tokens_total']:,} output"
        lines.append(tokens + " (all trials)")
    throughput = f"throughput: {fig(results['throughput_units_per_s'])} {rate}"
    if "output_tokens_per_s" in results:
        throughput += f", {fig(results['output_tokens_per_s'])} output tokens/s"
    lines.append(throughput)
    if "energy_per_output_token_j" in results:
        per_token = _interval(results["energy_per_output_token_j"], "J")
        lines.append(f"energy per output token: {per_token}")
    quality = label.get("quality")
    if quality:
        measured = quality.get("measured")
        if measured:
            correct = sum(measured["outcomes"])
            lines.append(
                f"quality: {measured['metric']} {fig(measured['value'])} "
                f"({correct}/{measured['items']} items, measured in this run)"
            )
        else:
            lines.append(f"quality: none measured: {quality.get('unavailable_reason', '')}")
        for entry in quality.get("declared", []):
            detail = ", ".join(
                str(entry[k]) for k in ("task", "filter", "n_samples") if entry.get(k) is not None
            )
            stderr = f" ± {fig(entry['stderr'])}" if entry.get("stderr") is not None else ""
            lines.append(
                f"declared (not measured here): {entry['metric']} {fig(entry['value'])}{stderr} "
                f"({detail}; {entry['source']})"
            )
    return lines
