"""Find the meters this machine offers: measured ones, or, only when none, a labelled estimate.

Order (``prefer``, default NVML then RAPL): every measured source that works contributes its
meters (NVML: one per visible GPU; RAPL: one per CPU package and one per DRAM zone). A source that
does not work adds a human-readable reason to ``MeterSet.reasons``. Only when *no* source gives a
meter, and ``allow_estimate`` is true, do estimate meters run; ``MeterSet.estimated`` is then
true and ``reasons`` says why nothing could be measured (never empty). Nothing falls back
silently: the CLI is expected to print ``reasons`` and ``notes``.

Errors that mean "there is a GPU this workload uses but it cannot be measured" are not turned
into reasons, because measuring only the CPU would then under-report: MigEnabled, any other
MeterError from the GPU layer, and (with ``gpu=True``) a GPU workload whose GPU cannot be
measured all raise. NvmlUnavailable (no NVIDIA driver) is a reason when ``gpu`` is not true.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench_runner.devices import gpu, nvml, rapl
from bench_runner.devices.base import (
    Clock,
    ForeignProcesses,
    Meter,
    MeterError,
    NvmlUnavailable,
    RaplUnavailable,
)
from bench_runner.devices.estimate import EstimatedCpuMeter, EstimatedGpuMeter

if TYPE_CHECKING:
    from bench_runner.label import Accelerator

SOURCES = ("nvml", "rapl")
FORCE_CHOICES = ("nvml", "rapl", "estimate")


@dataclass
class MeterSet:
    """The meters to run, and what the CLI must tell the user about them."""

    meters: list[Meter]
    #: true when the meters are estimates (nothing could be measured, or ``force="estimate"``)
    estimated: bool = False
    #: why each measured source that was tried gave no meter (non-empty when ``estimated``)
    reasons: list[str] = field(default_factory=list)
    #: other things to print: fallbacks to power sampling, CUDA_VISIBLE_DEVICES problems,
    #: foreign processes allowed, what the estimate model is
    notes: list[str] = field(default_factory=list)
    #: the GPUs found through NVML (empty when NVML was not used)
    gpus: list[nvml.GpuInfo] = field(default_factory=list)
    #: NVML index -> PIDs of other processes on that GPU (only with allow_foreign_processes)
    foreign_pids: dict[int, list[int]] = field(default_factory=dict)

    @property
    def flags(self) -> list[str]:
        """Label flags implied by the meters: ``estimated``, ``counter-not-advancing``,
        ``foreign-processes``."""
        out: list[str] = []
        if self.estimated or any(not m.measured for m in self.meters):
            out.append("estimated")
        if any(
            getattr(m, "fallback_reason", None) == nvml.FALLBACK_COUNTER_NOT_ADVANCING
            for m in self.meters
        ):
            out.append("counter-not-advancing")
        if self.foreign_pids:
            out.append("foreign-processes")
        return out

    @property
    def accelerator(self) -> Accelerator:
        """The label's ``hardware.accelerator`` from the GPUs found (vendor "none" without)."""
        from bench_runner.label import Accelerator

        if not self.gpus:
            return Accelerator(vendor="none", model_name="none", count=0)
        names = sorted({g.name for g in self.gpus})
        limits = {g.power_limit_w for g in self.gpus}
        drivers = {g.driver_version for g in self.gpus}
        return Accelerator(
            vendor="nvidia",
            model_name=", ".join(names)[:128],
            count=len(self.gpus),
            driver_version=drivers.pop() if len(drivers) == 1 else None,
            power_limit_w=limits.pop() if len(limits) == 1 else None,
        )

    def by_component(self) -> dict[str, list[Meter]]:
        out: dict[str, list[Meter]] = {}
        for meter in self.meters:
            out.setdefault(meter.component, []).append(meter)
        return out

    def close(self) -> None:
        for meter in self.meters:
            meter.close()

    def __iter__(self) -> Iterator[Meter]:
        return iter(self.meters)

    def __len__(self) -> int:
        return len(self.meters)


def discover_meters(
    prefer: Sequence[str] = SOURCES,
    allow_estimate: bool = True,
    *,
    force: str | None = None,
    gpu: bool | None = None,
    allow_foreign_processes: bool = False,
    powercap_root: Path | str = rapl.DEFAULT_POWERCAP_ROOT,
    gpu_tdp_w: float | Sequence[float] | None = None,
    cpu_tdp_w: float | None = None,
    env: Mapping[str, str] | None = None,
    clock: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    probe_wait_s: float = nvml.DEFAULT_PROBE_WAIT_S,
    sampling_interval_s: float = nvml.MAX_SAMPLING_INTERVAL_S,
    rapl_poll_interval_s: float | None = rapl.DEFAULT_POLL_INTERVAL_S,
) -> MeterSet:
    """Measured meters from the sources in ``prefer``; estimate meters only if there are none.

    - ``force``: ``"nvml"`` or ``"rapl"`` uses that source alone and raises MeterError if it
      cannot measure; ``"estimate"`` skips measuring (the reasons say it was forced).
    - ``gpu``: whether the workload runs on a GPU. None: measure GPUs if there are any. False:
      NVML is not tried (unless forced). True: the GPU must be measured; if it cannot be, a
      MeterError says why, since a label of the CPU alone would under-report (an estimate is
      still made when nothing at all is measurable and ``gpu_tdp_w`` is given).
    - ``allow_foreign_processes``: other processes on a measured GPU raise ForeignProcesses
      unless this is true; then the set carries the ``foreign-processes`` flag.
    - ``gpu_tdp_w`` (one value, or one per GPU) and ``cpu_tdp_w`` feed the estimate models.
    - ``env`` (default ``os.environ``) is where ``CUDA_VISIBLE_DEVICES`` is read; ``clock`` times
      every meter; ``sleep`` is the NVML counter probe's wait (``probe_wait_s``, one for all GPUs).

    Raises ValueError for an unknown source, MeterError when nothing is measurable and estimates
    are not allowed (the message lists the reasons), and lets MigEnabled and other GPU errors
    through.
    """
    if force is not None and force not in FORCE_CHOICES:
        raise ValueError(f"unknown meter {force!r}; choose from {list(FORCE_CHOICES)}")
    unknown = [s for s in prefer if s not in SOURCES]
    if unknown:
        raise ValueError(f"unknown meter source(s) {unknown}; choose from {list(SOURCES)}")
    result = MeterSet(meters=[])
    if force == "estimate":
        result.reasons.append("measuring was skipped: the estimate was forced (force='estimate')")
        _add_estimates(result, clock, gpu_tdp_w, cpu_tdp_w)
        return result

    if force is not None:
        sources, allow_estimate = [force], False
    else:
        sources = list(dict.fromkeys(prefer))
        if gpu is False and "nvml" in sources:
            sources.remove("nvml")
            result.notes.append("GPU energy is not measured: the workload does not use a GPU")
    try:
        for source in sources:
            if source == "nvml":
                _add_nvml(
                    result,
                    env,
                    clock,
                    sleep,
                    probe_wait_s,
                    sampling_interval_s,
                    allow_foreign_processes,
                )
            else:
                _add_rapl(result, clock, powercap_root, rapl_poll_interval_s)
    except BaseException:
        result.close()
        raise

    gpu_measured = any(m.component == "gpu" for m in result.meters)
    if gpu is True and not gpu_measured and result.meters:
        result.close()
        why = [r for r in result.reasons if r.startswith("GPU")] or ["NVML was not tried"]
        raise MeterError(
            f"the workload runs on a GPU but GPU energy cannot be measured ({'; '.join(why)}); "
            "a label of the CPU alone would under-report. In a container, NVML needs the "
            "driver's 'utility' capability (NVIDIA_DRIVER_CAPABILITIES=compute,utility)."
        )
    if result.meters:
        return result
    skipped = [s for s in SOURCES if s not in sources]
    if skipped and force is None and gpu is not False:
        result.reasons.append(f"not tried (not in prefer={tuple(prefer)!r}): {', '.join(skipped)}")
    if not result.reasons:
        result.reasons.append("no measured source was tried")
    if not allow_estimate:
        raise MeterError("nothing can be measured on this machine: " + "; ".join(result.reasons))
    if gpu is True and gpu_tdp_w is None:
        raise MeterError(
            "nothing can be measured on this machine ("
            + "; ".join(result.reasons)
            + "), and the workload runs on a GPU whose power cannot be estimated without its TDP"
        )
    _add_estimates(result, clock, gpu_tdp_w, cpu_tdp_w)
    return result


def _add_nvml(
    result: MeterSet,
    env: Mapping[str, str] | None,
    clock: Clock,
    sleep: Callable[[float], None],
    probe_wait_s: float,
    sampling_interval_s: float,
    allow_foreign_processes: bool,
) -> None:
    try:
        gpus = nvml.list_gpus(env)
        result.notes.extend(nvml.cuda_visible_devices_warnings(env))
    except NvmlUnavailable as err:
        result.reasons.append(f"GPU (NVML): {err}")
        return
    if not gpus:
        result.reasons.append(
            "GPU (NVML): NVML works but no GPU is visible to this process "
            "(CUDA_VISIBLE_DEVICES, or no NVIDIA GPU)"
        )
        return
    foreign = {g.index: pids for g in gpus if (pids := nvml.foreign_processes(g))}
    if foreign:
        where = "; ".join(
            f"GPU {index}: PID {', '.join(map(str, pids))}" for index, pids in foreign.items()
        )
        if not allow_foreign_processes:
            raise ForeignProcesses(
                f"other processes are using the GPU ({where}); their energy would be counted "
                "as this workload's. Stop them, pick another GPU with CUDA_VISIBLE_DEVICES, or "
                "allow them (the label is then flagged foreign-processes)."
            )
        result.foreign_pids.update(foreign)
        result.notes.append(f"other processes share the measured GPU ({where}): flagged")
    meters = gpu.make_gpu_meters(
        gpus,
        probe_wait_s=probe_wait_s,
        interval_s=sampling_interval_s,
        clock=clock,
        sleep=sleep,
    )
    result.gpus.extend(gpus)
    result.meters.extend(meters)
    for meter in meters:
        detail = getattr(meter, "fallback_detail", None)
        if detail:
            result.notes.append(detail)


def _add_rapl(
    result: MeterSet, clock: Clock, root: Path | str, poll_interval_s: float | None
) -> None:
    try:
        meters = rapl.make_rapl_meters(root, clock=clock, poll_interval_s=poll_interval_s)
    except RaplUnavailable as err:  # RaplPermissionError included
        result.reasons.append(f"CPU/DRAM (RAPL): {err}")
        return
    result.meters.extend(meters)
    if not any(m.component == "dram" for m in meters):
        result.notes.append("RAPL has no DRAM zone here: DRAM energy is not measured")


def _add_estimates(
    result: MeterSet,
    clock: Clock,
    gpu_tdp_w: float | Sequence[float] | None,
    cpu_tdp_w: float | None,
) -> None:
    result.estimated = True
    cpu = EstimatedCpuMeter(tdp_w=cpu_tdp_w, clock=clock)
    meters: list[Meter] = [cpu]
    notes = [f"ESTIMATE, not a measurement: {cpu.model}"]
    tdps: list[float]
    if gpu_tdp_w is None:
        tdps = []
    elif isinstance(gpu_tdp_w, int | float):
        tdps = [float(gpu_tdp_w)]
    else:
        tdps = [float(t) for t in gpu_tdp_w]
    for i, tdp in enumerate(tdps):
        gpu = EstimatedGpuMeter(tdp_w=tdp, device=f"gpu-estimate-{i}", clock=clock)
        meters.append(gpu)
        notes.append(f"ESTIMATE, not a measurement: GPU {i}: {gpu.model}")
    if not tdps:
        notes.append(
            "no GPU estimate: GPU power cannot be measured and no GPU TDP was given; "
            "the estimate covers the CPU only"
        )
    result.meters.extend(meters)
    result.notes.extend(notes)
