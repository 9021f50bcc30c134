"""What the model page says of one label beyond its row: the chat-serving engine and every
concurrency level, the nodes of a multi-node run, the meter bias bound beside the grade, and the
measurement flags in plain words.

Everything here is read from the stored label (validated and recomputed at ingest) and from the
grade view; a field missing or of the wrong type is left out, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.suites import SUITE_2, task_spec

FLAG_WORDS: dict[str, str] = {
    "estimated": "the energy was estimated from the hardware's specifications, not measured: "
    "no grade",
    "high-cv": "the trials varied more than the methodology allows for a tight figure (their "
    "coefficient of variation is over the threshold): the confidence interval is wide",
    "foreign-processes": "other processes used a measured GPU during the run (the vendor "
    "allowed it): their energy may be counted in the figure",
    "counter-not-advancing": "a GPU's energy counter did not move, so its power was sampled "
    "instead",
    "imported": "converted from another tool's report, not measured by carbonlabel's runner",
    "sampler-gap": "the power sampler missed readings for longer than half a second at least "
    "once; the energy across the gap was interpolated",
    "frozen-reading": "a power reading stopped changing while the GPU was busy (a stuck meter "
    "reading): read the energy figure with care",
    "counter-reset": "an energy counter was reset during a window (driver reload or GPU reset); "
    "the energy was summed over the readings before and after the reset",
    "unvalidated-bias": "this hardware class's meter has not been checked against an external "
    "power meter, so the grade allows the conservative default bias bound",
    "transient-errors": "the meter hit transient read errors and read again; no window lost "
    "its reading",
}


@dataclass(frozen=True)
class Flag:
    name: str
    words: str


def flag_views(flags: Sequence[Any]) -> list[Flag]:
    """The label's ``measurement.flags`` with what each means for a reader."""
    return [
        Flag(str(f), FLAG_WORDS.get(str(f), "a flag this registry has no description of"))
        for f in flags
    ]


@dataclass(frozen=True)
class Stats:
    """Mean and 95% interval of a per-trial figure."""

    mean: float
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p90: float
    p99: float


@dataclass(frozen=True)
class ServingLevel:
    """One concurrency level of a chat-serving label, as ``results.serving.levels[i]``."""

    concurrency: int
    requests: int
    errors: int
    energy_wh: Stats
    """Wh per 1,000 requests."""
    per_token_j: Stats
    output_tokens_per_s: float
    requests_per_s: float
    ttft_s: Percentiles
    itl_s: Percentiles
    headline: bool


@dataclass(frozen=True)
class ServingView:
    """The engine a chat-serving label measured, how, and each concurrency level's figures."""

    engine_name: str
    engine_version: str | None
    engine_declared: bool
    """``source: declared``: the vendor named the engine; the server did not report it."""
    served_model: str
    client_on_metered_host: bool | None
    max_error_rate: float | None
    headline_concurrency: int
    standard_concurrency: int | None
    """The methodology's standard load (8); the headline is it when it was measured."""
    levels: list[ServingLevel]

    @property
    def engine(self) -> str:
        """``vllm 0.11.0``; the name alone without a version."""
        return (
            f"{self.engine_name} {self.engine_version}" if self.engine_version else self.engine_name
        )

    @property
    def max_error_rate_text(self) -> str:
        """``5%``; "" when the label states none."""
        return _percent(self.max_error_rate) if self.max_error_rate is not None else ""

    @property
    def headline_is_standard(self) -> bool:
        return self.headline_concurrency == self.standard_concurrency


def _percent(share: float) -> str:
    """0.15 -> ``15%``; 0.025 -> ``2.5%``."""
    return f"{share * 100:.3g}%"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _stats(value: Any) -> Stats | None:
    if not isinstance(value, Mapping):
        return None
    mean = _number(value.get("mean"))
    if mean is None:
        return None
    return Stats(mean, _number(value.get("ci95_low")), _number(value.get("ci95_high")))


def _percentiles(value: Any) -> Percentiles | None:
    if not isinstance(value, Mapping):
        return None
    found = [_number(value.get(k)) for k in ("p50", "p90", "p99")]
    if any(v is None for v in found):
        return None
    return Percentiles(*(v for v in found if v is not None))


def _level(value: Any, headline: int) -> ServingLevel | None:
    if not isinstance(value, Mapping):
        return None
    concurrency, requests, errors = (
        _int(value.get(k)) for k in ("concurrency", "requests", "errors")
    )
    energy, per_token = (
        _stats(value.get("energy_per_unit_wh")),
        _stats(value.get("energy_per_output_token_j")),
    )
    tokens_per_s, requests_per_s = (
        _number(value.get(k)) for k in ("output_tokens_per_s", "requests_per_s")
    )
    ttft, itl = _percentiles(value.get("ttft_s")), _percentiles(value.get("itl_s"))
    if (
        concurrency is None
        or requests is None
        or errors is None
        or energy is None
        or per_token is None
        or tokens_per_s is None
        or requests_per_s is None
        or ttft is None
        or itl is None
    ):
        return None
    return ServingLevel(
        concurrency=concurrency,
        requests=requests,
        errors=errors,
        energy_wh=energy,
        per_token_j=per_token,
        output_tokens_per_s=tokens_per_s,
        requests_per_s=requests_per_s,
        ttft_s=ttft,
        itl_s=itl,
        headline=concurrency == headline,
    )


def standard_concurrency() -> int | None:
    """The methodology's standard chat-serving load (``serving.headline_concurrency``: 8)."""
    try:
        return int(task_spec(SUITE_2, "chat-serving")["serving"]["headline_concurrency"])
    except (KeyError, TypeError, ValueError):
        return None


def serving_view(label: Mapping[str, Any]) -> ServingView | None:
    """The serving facts of a chat-serving label; None for any other label."""
    workload = label.get("benchmark", {}).get("workload", {})
    serving = workload.get("serving") if isinstance(workload, Mapping) else None
    results = label.get("results", {}).get("serving")
    if not isinstance(serving, Mapping) or not isinstance(results, Mapping):
        return None
    engine = serving.get("engine")
    engine = engine if isinstance(engine, Mapping) else {}
    headline = _int(results.get("headline_concurrency")) or _int(
        serving.get("headline_concurrency")
    )
    if headline is None:
        return None
    levels = [_level(v, headline) for v in results.get("levels") or []]
    client = serving.get("client_on_metered_host")
    version = engine.get("version")
    return ServingView(
        engine_name=str(engine.get("name") or "unnamed engine"),
        engine_version=version if isinstance(version, str) and version else None,
        engine_declared=engine.get("source") == "declared",
        served_model=str(serving.get("served_model") or ""),
        client_on_metered_host=client if isinstance(client, bool) else None,
        max_error_rate=_number(serving.get("max_error_rate")),
        headline_concurrency=headline,
        standard_concurrency=standard_concurrency(),
        levels=[level for level in levels if level is not None],
    )


@dataclass(frozen=True)
class Node:
    """One node of a multi-node run (``hardware.nodes[i]``)."""

    name: str
    rank: int | None
    accelerator: str
    accelerator_count: int
    driver_version: str
    cpu: str
    cores: int | None
    ram_bytes: int | None


def node_views(hardware: Mapping[str, Any]) -> list[Node]:
    """The nodes of a multi-node label, by rank; none for a single-host label."""
    nodes = hardware.get("nodes")
    if not isinstance(nodes, list):
        return []
    found = []
    for node in nodes:
        if not isinstance(node, Mapping):
            continue
        accelerator = node.get("accelerator")
        accelerator = accelerator if isinstance(accelerator, Mapping) else {}
        cpu = node.get("cpu")
        cpu = cpu if isinstance(cpu, Mapping) else {}
        model_name = str(accelerator.get("model_name") or "")
        found.append(
            Node(
                name=str(node.get("name") or ""),
                rank=_int(node.get("node_rank")),
                accelerator="" if model_name == "none" else model_name,
                accelerator_count=_int(accelerator.get("count")) or 0,
                driver_version=str(accelerator.get("driver_version") or ""),
                cpu=str(cpu.get("model_name") or ""),
                cores=_int(cpu.get("cores")),
                ram_bytes=_int(node.get("ram_bytes")),
            )
        )
    found.sort(key=lambda n: (n.rank is None, n.rank or 0, n.name))
    return found


@dataclass(frozen=True)
class Bias:
    """The meter's systematic error bound beside the grade (from the grade view)."""

    relative: float
    validated: bool
    source: str
    basis_value_wh: float
    graded_value_wh: float
    widened: bool
    """False for labels graded under grading 1, which did not widen the CI bound."""

    @property
    def percent(self) -> str:
        """``15%``, ``6%``, ``2.5%``."""
        return _percent(self.relative)

    @property
    def validity(self) -> str:
        return "validated" if self.validated else "unvalidated"


def bias_view(grade: Mapping[str, Any]) -> Bias | None:
    """The bias bound and the figure the grade is given on, from ``queries.grade_view``."""
    bias = grade.get("meter_bias")
    basis, graded = _number(grade.get("basis_value_wh")), _number(grade.get("graded_value_wh"))
    if not isinstance(bias, Mapping) or basis is None or graded is None:
        return None
    relative = _number(bias.get("relative"))
    if relative is None:
        return None
    return Bias(
        relative=relative,
        validated=bias.get("validated") is True,
        source=str(bias.get("source") or ""),
        basis_value_wh=basis,
        graded_value_wh=graded,
        widened=grade.get("graded_under") != "1",
    )
