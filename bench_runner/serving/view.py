"""What ``carbonlabel bench --task chat-serving`` shows: progress per level and trial, and the
table of the levels of the finished label."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from bench_runner.bench_view import LiveDisplay, watts_text
from bench_runner.serving.protocol import ServingProgress


class ServingDisplay(LiveDisplay):
    """Rich live progress: level i/N at concurrency c, phase, trial i/N, requests and errors in
    the phase, live watts and (integrated) joules of the window."""

    def __call__(self, p: ServingProgress) -> None:
        self.integrate((p.phase, p.concurrency, p.trial), p.elapsed_s, p.power_w)
        if p.phase == "done":
            self.show("protocol done")
            return
        if p.phase == "trial-done":
            if not self.quiet:
                self.progress.console.print(
                    f"concurrency {p.concurrency}: trial {p.trial}/{p.trials} done: "
                    f"{p.requests} requests, {p.errors} errors in {p.elapsed_s:.1f} s "
                    f"(this client: {p.client_core_share or 0:.0%} of a core)",
                    markup=False,
                )
            return
        level = f"level {p.level}/{p.levels} (concurrency {p.concurrency})"
        where = {
            "idle": "idle baseline",
            "warmup": f"{level}: warm-up",
            "cooldown": f"{level}: before trial {p.trial}/{p.trials}",
            "trial": f"{level}: trial {p.trial}/{p.trials}",
            "drain": f"{level}: draining requests in flight",
        }[p.phase]
        counts = "" if p.phase == "idle" else f" {p.requests} requests, {p.errors} errors"
        self.show(f"{where:<44}{counts:<28} {watts_text(p.power_w)}  {self.energy_j:9.1f} J")


def _ci(stats: dict[str, Any]) -> str:
    """``mean ± half-width`` of the 95% interval (symmetric: Student's t)."""
    half = (stats["ci95_high"] - stats["ci95_low"]) / 2
    return f"{stats['mean']:.3g} ± {half:.2g}"


def serving_tables(label: dict[str, Any]) -> list[Table]:
    """Per concurrency level, the headline level marked: energy (J per output token and Wh per
    1k requests, mean ± 95% CI), throughput, requests and errors; then latency (TTFT and ITL
    p50/p90/p99, ms). Two tables, so each fits 80 columns."""
    from rich import box

    serving = label["results"]["serving"]
    workload = label["benchmark"]["workload"]["serving"]
    engine = workload["engine"]
    name = engine["name"] + (f" {engine['version']}" if engine.get("version") else "")
    headline = serving["headline_concurrency"]
    energy = Table(
        title=f"{label['model']['id']}@{label['model']['revision']} served by {name}",
        box=box.SIMPLE_HEAD,
    )
    latency = Table(title="latency (ms)", box=box.SIMPLE_HEAD)
    for column in ("conc.", "J / token", "Wh / 1k req", "tok/s", "req/s", "requests", "errors"):
        energy.add_column(column, justify="left" if column == "conc." else "right")
    for column in ("conc.", "TTFT p50", "p90", "p99", "ITL p50", "p90", "p99"):
        latency.add_column(column, justify="left" if column == "conc." else "right")
    for level in serving["levels"]:
        mark = "*" if level["concurrency"] == headline else ""
        style = "bold" if mark else None
        energy.add_row(
            f"{level['concurrency']}{mark}",
            _ci(level["energy_per_output_token_j"]),
            _ci(level["energy_per_unit_wh"]),
            f"{level['output_tokens_per_s']:.4g}",
            f"{level['requests_per_s']:.3g}",
            f"{level['requests']:,}",
            f"{level['errors']:,}",
            style=style,
        )
        ms = [
            f"{level[k][p] * 1000:.3g}" for k in ("ttft_s", "itl_s") for p in ("p50", "p90", "p99")
        ]
        latency.add_row(f"{level['concurrency']}{mark}", *ms, style=style)
    where = "on the metered host" if workload["client_on_metered_host"] else "elsewhere"
    energy.caption = (
        f"* headline (the label's top-level figures); ± 95% CI over trials; max error rate "
        f"{workload['max_error_rate']:.0%}; the client ran {where}"
    )
    return [energy, latency]


def headline_lines(label: dict[str, Any]) -> list[str]:
    """The label's top-level figures (the headline level's) in words, and why no quality."""
    results = label["results"]
    level = results["serving"]["headline_concurrency"]
    lines = [
        f"headline (concurrency {level}): {_ci(results['energy_per_unit_wh'])} Wh / 1k "
        f"requests, {_ci(results['energy_per_output_token_j'])} J / output token, "
        f"{results['throughput_units_per_s']:.4g} requests/s, "
        f"{results['output_tokens_per_s']:.4g} output tokens/s",
        f"tokens at the headline level: {results['input_tokens_total']:,} input, "
        f"{results['output_tokens_total']:,} output",
    ]
    reason = label.get("quality", {}).get("unavailable_reason")
    if reason:
        lines.append(f"quality: none measured: {reason}")
    return lines
