"""What ``carbonlabel bench`` shows: live progress, and the summary of the finished label."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from bench_runner.measure import Progress

UNIT_NAMES = {
    "1k-inferences": ("Wh / 1k inferences", "inferences/s"),
    "1k-requests": ("Wh / 1k requests", "requests/s"),
    "step": ("Wh / step", "steps/s"),
}


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


def _interval(stats: dict[str, Any]) -> str:
    return f"{stats['mean']:.6g} [{stats['ci95_low']:.6g}, {stats['ci95_high']:.6g}] (95% CI)"


def summary_table(label: dict[str, Any]) -> Table:
    """Energy per functional unit by component, with the 95% interval and CV."""
    from schemas.results import per_trial_component_wh
    from schemas.stats import summarize

    results = label["results"]
    unit = UNIT_NAMES.get(results["functional_unit"], (results["functional_unit"], ""))[0]
    energy = results["energy_per_unit_wh"]
    table = Table(title=f"{label['model']['id']}@{label['model']['revision']}  ({unit})")
    for column in ("component", "method", "mean", "95% CI", "CV"):
        table.add_column(column)
    stats = {name: summarize(v) for name, v in per_trial_component_wh(label).items()}
    for component in results["components"]:
        s = stats[component["name"]]
        table.add_row(
            component["name"],
            component["method"],
            f"{s.mean:.6g}",
            f"[{s.ci95_low:.6g}, {s.ci95_high:.6g}]",
            f"{s.cv:.1%}",
        )
    table.add_row(
        "total (gross)",
        "",
        f"{energy['mean']:.6g}",
        f"[{energy['ci95_low']:.6g}, {energy['ci95_high']:.6g}]",
        f"{energy['cv']:.1%}",
    )
    carbon = label["carbon"]
    table.caption = (
        f"idle {results['idle_power_w']:.1f} W; "
        f"dynamic {results['dynamic_energy_per_unit_wh']:.6g}; "
        f"CO2e {carbon['co2e_per_unit_g']['mean']:.6g} g per unit "
        f"({carbon['zone']}, {carbon['intensity_g_per_kwh']:.0f} g/kWh, PUE {carbon['pue']})"
    )
    return table


def summary_lines(label: dict[str, Any]) -> list[str]:
    """Energy per functional unit, tokens, throughput, energy per output token and quality."""
    results = label["results"]
    unit, rate = UNIT_NAMES.get(results["functional_unit"], (results["functional_unit"], "/s"))
    lines = [f"energy: {_interval(results['energy_per_unit_wh'])} {unit}"]
    if "input_tokens_total" in results:
        tokens = f"tokens: {results['input_tokens_total']:,} input"
        if "output_tokens_total" in results:
            tokens += f", {results['output_tokens_total']:,} output"
        lines.append(tokens + " (all trials)")
    throughput = f"throughput: {results['throughput_units_per_s']:.4g} {rate}"
    if "output_tokens_per_s" in results:
        throughput += f", {results['output_tokens_per_s']:.4g} output tokens/s"
    lines.append(throughput)
    if "energy_per_output_token_j" in results:
        per_token = _interval(results["energy_per_output_token_j"])
        lines.append(f"energy per output token: {per_token} J")
    quality = label.get("quality")
    if quality:
        measured = quality.get("measured")
        if measured:
            correct = sum(measured["outcomes"])
            lines.append(
                f"quality: {measured['metric']} {measured['value']:.4g} "
                f"({correct}/{measured['items']} items, measured in this run)"
            )
        else:
            lines.append(f"quality: none measured: {quality.get('unavailable_reason', '')}")
        for entry in quality.get("declared", []):
            detail = ", ".join(
                str(entry[k]) for k in ("task", "filter", "n_samples") if entry.get(k) is not None
            )
            stderr = f" ± {entry['stderr']:.3g}" if entry.get("stderr") is not None else ""
            lines.append(
                f"declared (not measured here): {entry['metric']} {entry['value']:.4g}{stderr} "
                f"({detail}; {entry['source']})"
            )
    return lines
