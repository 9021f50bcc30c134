"""One meter per GPU: NVML's energy counter where it works, sampled power where it does not."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from bench_runner.devices import nvml
from bench_runner.devices.base import Clock, Meter, MeterError
from bench_runner.devices.counter import NvmlCounterMeter
from bench_runner.devices.nvml import (
    DEFAULT_PROBE_WAIT_S,
    FALLBACK_COUNTER_NOT_ADVANCING,
    MAX_SAMPLING_INTERVAL_S,
    GpuInfo,
    Sleep,
)
from bench_runner.devices.sampler import NvmlSamplingMeter

logger = logging.getLogger(__name__)


def make_gpu_meters(
    gpus: Sequence[GpuInfo] | None = None,
    *,
    probe_wait_s: float = DEFAULT_PROBE_WAIT_S,
    interval_s: float = MAX_SAMPLING_INTERVAL_S,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    start_sampling: bool = True,
) -> list[Meter]:
    """One meter per GPU (default: :func:`list_gpus`): the counter meter where supported and
    advancing, else a sampling meter whose ``fallback_reason`` says why.

    ``sleep`` is used for the probe (one shared wait of ``probe_wait_s`` for all GPUs);
    ``clock``, ``interval_s`` and ``start_sampling`` go to the sampling meters. Raises
    MeterError for a GPU that offers neither an energy counter nor power readings.
    """
    if gpus is None:
        gpus = nvml.list_gpus()
    probes = nvml.probe_counters(gpus, wait_s=probe_wait_s, sleep=sleep) if gpus else {}
    meters: list[Meter] = []
    try:
        for gpu in gpus:
            meters.append(
                _gpu_meter(gpu, probes[gpu.index], probe_wait_s, interval_s, clock, start_sampling)
            )
    except BaseException:
        for meter in meters:
            meter.close()
        raise
    return meters


def _gpu_meter(
    gpu: GpuInfo,
    reason: str | None,
    probe_wait_s: float,
    interval_s: float,
    clock: Clock,
    start_sampling: bool,
) -> Meter:
    if reason is None:
        return NvmlCounterMeter(gpu, clock=clock)
    handle = nvml.device_handle(gpu.index)
    try:
        nvml.read_power_w(handle)
    except nvml.NVMLError as err:
        raise MeterError(
            f"GPU {gpu.index} ({gpu.name}) can be measured neither by its energy counter "
            f"({reason}) nor by power readings ({type(err).__name__}: {err})"
        ) from err
    if reason == FALLBACK_COUNTER_NOT_ADVANCING:
        detail = (
            f"GPU {gpu.index} ({gpu.name}): NVML reports an energy counter but it did not "
            f"advance over a {probe_wait_s} s probe; sampling power at "
            f"{1 / interval_s:g} Hz instead"
        )
    else:
        detail = (
            f"GPU {gpu.index} ({gpu.name}): no NVML energy counter "
            f"({nvml.counter_problem(handle) or 'unreadable'}); sampling power at "
            f"{1 / interval_s:g} Hz instead"
        )
    logger.warning("%s", detail)
    return NvmlSamplingMeter(
        gpu,
        interval_s=interval_s,
        clock=clock,
        start=start_sampling,
        fallback_reason=reason,
        fallback_detail=detail,
    )
