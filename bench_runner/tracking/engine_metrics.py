"""A serving engine's own request and token counters, read from its Prometheus endpoint.

``carbonlabel watch`` divides the energy the meters measured by what the engine says it served.
Presets name the metrics of the engines we know; ``custom`` (or ``--metric NAME=METRIC``) names
any other's. A name is matched against the exposition's sample names (a counter's ``_total``
sample, a histogram's ``_sum``), summed over every label set (model, finish reason, ...).

| figure | vLLM | TGI |
|---|---|---|
| requests (completed) | ``vllm:request_success_total`` | ``tgi_request_success`` |
| output_tokens | ``vllm:generation_tokens_total`` | ``tgi_request_generated_tokens_sum`` |
| input_tokens | ``vllm:prompt_tokens_total`` | ``tgi_request_input_length_sum`` |
| running (gauge) | ``vllm:num_requests_running`` | ``tgi_batch_current_size`` |

``requests`` is required; the others are optional (without ``running`` the label has no idle
share, without ``output_tokens`` no energy per output token).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

FIGURES = ("requests", "output_tokens", "input_tokens", "running")
COUNTERS = ("requests", "output_tokens", "input_tokens")

PRESETS: dict[str, dict[str, str]] = {
    "vllm": {
        "requests": "vllm:request_success_total",
        "output_tokens": "vllm:generation_tokens_total",
        "input_tokens": "vllm:prompt_tokens_total",
        "running": "vllm:num_requests_running",
    },
    "tgi": {
        "requests": "tgi_request_success",
        "output_tokens": "tgi_request_generated_tokens_sum",
        "input_tokens": "tgi_request_input_length_sum",
        "running": "tgi_batch_current_size",
    },
    "custom": {},
}


class EngineMetricsError(RuntimeError):
    """The endpoint cannot be read, or lacks a metric it must have; the message says which."""


def mapping_for(engine: str, overrides: Mapping[str, str]) -> dict[str, str]:
    """The preset's metric names with ``overrides`` on top; ``requests`` must be named."""
    if engine not in PRESETS:
        raise ValueError(f"engine {engine!r}: choose one of {sorted(PRESETS)}")
    unknown = sorted(set(overrides) - set(FIGURES))
    if unknown:
        raise ValueError(f"--metric {unknown[0]}=...: the figures are {list(FIGURES)}")
    names = {**PRESETS[engine], **{k: v for k, v in overrides.items() if v}}
    if "requests" not in names:
        raise ValueError("name the requests counter: --metric requests=METRIC")
    return names


@dataclass(frozen=True)
class Reading:
    """One scrape: each named figure's value (summed over label sets), None where absent."""

    values: dict[str, float | None]


def parse(text: str, names: Mapping[str, str]) -> Reading:
    """The named figures of one exposition. A counter is matched with or without ``_total``:
    the parser gives every counter sample that suffix, and engines name them either way (TGI's
    ``tgi_request_success``, vLLM's ``vllm:request_success_total``)."""
    totals: dict[str, float] = {}
    wanted = {_bare(name): name for name in names.values()}
    exact = set(names.values())
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not math.isfinite(sample.value):
                continue
            if sample.name in exact:
                name = sample.name
            elif family.type == "counter" and _bare(sample.name) in wanted:
                name = wanted[_bare(sample.name)]
            else:
                continue
            totals[name] = totals.get(name, 0.0) + float(sample.value)
    return Reading({figure: totals.get(name) for figure, name in names.items()})


def _bare(name: str) -> str:
    return name.removesuffix("_total")


class EngineScraper:
    """Reads the engine's endpoint (``GET``, Prometheus text) on every :meth:`read`."""

    def __init__(self, url: str, names: Mapping[str, str], timeout_s: float = 5.0) -> None:
        self.url = url
        self.names = dict(names)
        self._client = httpx.Client(timeout=timeout_s)

    def read(self) -> Reading:
        try:
            response = self._client.get(self.url)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise EngineMetricsError(
                f"cannot read the engine's metrics at {self.url}: {exc}"
            ) from None
        try:
            reading = parse(response.text, self.names)
        except ValueError as exc:
            raise EngineMetricsError(f"{self.url} is not Prometheus text: {exc}") from None
        return reading

    def close(self) -> None:
        self._client.close()


def absent_requests_note(names: Mapping[str, str]) -> str:
    return (
        f"the endpoint has no {names['requests']!r} (the requests counter) yet: some engines "
        "create it with the first request; if it never comes, pick the engine with --engine or "
        "name the counter with --metric requests=METRIC"
    )


def increase(before: float | None, after: float | None) -> float | None:
    """What a counter gained between two readings; after a reset (the engine restarted) its new
    value, as Prometheus's ``increase`` counts it; a counter that appeared (engines create some
    with their first event) counts from 0."""
    if after is None:
        return None
    if before is None:
        return after
    return after - before if after >= before else after
