"""NVIDIA GPUs through NVML: the driver's library, the GPU inventory and the counter probe.

This is the only module of the project that imports ``pynvml`` (package ``nvidia-ml-py``, a
pure-Python ctypes binding: importing it needs no GPU and no driver). NVML itself is initialised
lazily, on the first call that needs it, never at import time. The meters built on it live beside
it and call NVML only through this module:

- :mod:`bench_runner.devices.counter`: :class:`NvmlCounterMeter` (``nvml-energy-counter``) reads
  ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver was loaded; Volta and newer) at
  the edges of each window.
- :mod:`bench_runner.devices.sampler`: :class:`NvmlSamplingMeter` (``nvml-power-sampling``) polls
  ``nvmlDeviceGetPowerUsage`` (mW) in a daemon thread, 10 Hz by default, and returns the
  window's samples for trapezoid integration.
- :mod:`bench_runner.devices.gpu`: :func:`make_gpu_meters` picks the counter for a GPU when NVML
  supports it there *and* a short probe (:func:`probe_counter`, here) sees it advance; otherwise
  it falls back to sampling and records why (``fallback_reason``: ``"counter-not-supported"`` or
  ``"counter-not-advancing"``; the latter is a label flag).

Those names are also reachable as attributes of this module (``nvml.NvmlCounterMeter``), loaded
on first access.

Visible GPUs follow ``CUDA_VISIBLE_DEVICES`` the way CUDA reads it (indices, ``GPU-`` UUIDs or
unique UUID prefixes; an invalid entry hides itself and every entry after it). GPUs in MIG mode
are refused (:class:`~bench_runner.devices.base.MigEnabled`): NVML reports energy for the whole
GPU, which cannot be attributed to one MIG instance.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pynvml  # type: ignore[import-untyped]

from bench_runner.devices.base import (
    ForeignProcesses,
    MeterError,
    MigEnabled,
    NvmlUnavailable,
)

logger = logging.getLogger(__name__)

#: the slowest sampling interval accepted without ``allow_slow_interval`` (10 Hz)
MAX_SAMPLING_INTERVAL_S = 0.1
#: default wait of the counter probe; NVML's counter updates about every 100 ms or faster
DEFAULT_PROBE_WAIT_S = 0.5

#: ``fallback_reason`` of a sampling meter: NVML has no energy counter for this GPU (pre-Volta,
#: some virtualised GPUs). Sampling is then the normal method, not a defect.
FALLBACK_COUNTER_NOT_SUPPORTED = "counter-not-supported"
#: ``fallback_reason`` of a sampling meter: NVML claims a counter but it did not move during the
#: probe. The label carries this as the flag ``counter-not-advancing``.
FALLBACK_COUNTER_NOT_ADVANCING = "counter-not-advancing"

Sleep = Callable[[float], None]

#: NVML's error class (the real one; tests fake NVML's functions, never its errors)
NVMLError = pynvml.NVMLError

#: NVML errors worth retrying (a bounded number of times, ``health.RETRY_BACKOFF_S``): an
#: unknown driver error and a timeout may pass on the next call. Everything else (GPU lost, not
#: supported, no permission, driver not loaded, ...) is raised at once.
TRANSIENT_ERROR_CODES = frozenset({pynvml.NVML_ERROR_UNKNOWN, pynvml.NVML_ERROR_TIMEOUT})

_init_lock = threading.Lock()
_initialised = False


# --- initialisation and small helpers ---------------------------------------------------------


def _init_failure_message(err: Exception) -> str:
    if isinstance(err, pynvml.NVMLError_LibraryNotFound):
        why = "no NVIDIA driver found (libnvidia-ml.so.1, NVML's shared library, cannot be loaded)"
    elif isinstance(err, pynvml.NVMLError_DriverNotLoaded):
        why = "the NVIDIA kernel driver is not loaded"
    elif isinstance(err, pynvml.NVMLError_LibRmVersionMismatch):
        why = (
            "the NVML library and the loaded NVIDIA kernel driver have different versions "
            "(driver upgraded without a reboot?)"
        )
    elif isinstance(err, pynvml.NVMLError_NoPermission):
        why = "permission denied opening the NVIDIA device files (/dev/nvidia*)"
    else:
        why = "nvmlInit failed"
    return (
        f"NVML is not available: {why} ({type(err).__name__}: {err}). "
        "GPU energy cannot be measured on this machine."
    )


def ensure_init() -> None:
    """Initialise NVML once per process; raise NvmlUnavailable if it cannot be."""
    global _initialised
    if _initialised:
        return
    with _init_lock:
        if _initialised:
            return
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as err:
            raise NvmlUnavailable(_init_failure_message(err)) from err
        _initialised = True


def shutdown() -> None:
    """Release NVML if this module initialised it (optional; the process exit does it too)."""
    global _initialised
    with _init_lock:
        if not _initialised:
            return
        _initialised = False
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError as err:  # pragma: no cover - nothing useful to do
            logger.debug("nvmlShutdown failed: %s", err)


def _text(value: str | bytes) -> str:
    """NVML strings: bytes from older bindings, str from newer ones."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _unsupported(err: Exception) -> bool:
    return isinstance(err, pynvml.NVMLError_NotSupported | pynvml.NVMLError_FunctionNotFound)


def is_unsupported(err: BaseException) -> bool:
    """Whether an NVML error says the GPU or driver lacks the function."""
    return isinstance(err, Exception) and _unsupported(err)


def is_transient(err: BaseException) -> bool:
    """Whether an error is an NVML error worth retrying (``TRANSIENT_ERROR_CODES``)."""
    return isinstance(err, pynvml.NVMLError) and err.value in TRANSIENT_ERROR_CODES


def nvml_failure(what: str, err: Exception) -> MeterError:
    return MeterError(f"NVML call failed: {what}: {type(err).__name__}: {err}")


def device_handle(index: int) -> Any:
    try:
        return pynvml.nvmlDeviceGetHandleByIndex(index)
    except pynvml.NVMLError as err:
        raise nvml_failure(f"nvmlDeviceGetHandleByIndex({index})", err) from err


# --- GPU inventory -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuInfo:
    """One GPU visible to this process."""

    #: NVML index (PCI bus order), which is what ``nvmlDeviceGetHandleByIndex`` takes
    index: int
    uuid: str
    #: exactly as ``nvmlDeviceGetName`` reports it, e.g. "NVIDIA A100-SXM4-40GB"
    name: str
    driver_version: str
    #: ``nvmlDeviceGetPowerManagementLimit`` in W, None where unsupported
    power_limit_w: float | None
    #: whether ``nvmlDeviceGetTotalEnergyConsumption`` is supported (it may still not advance)
    energy_counter: bool
    #: position among the visible GPUs, i.e. the index CUDA gives it in this process
    cuda_index: int = 0


def visible_gpu_indices(
    cuda_visible_devices: str | None, uuids: Sequence[str]
) -> tuple[list[int], list[str]]:
    """The NVML indices CUDA would use for ``CUDA_VISIBLE_DEVICES``, and problems found.

    ``uuids`` are the UUIDs of all GPUs in NVML index order. ``None`` (unset) means every GPU;
    an empty string means none. Entries are integer indices, full ``GPU-`` UUIDs or unique UUID
    prefixes (at least ``GPU-`` plus one character). As in CUDA, an invalid entry (out of range,
    unknown or ambiguous UUID, a duplicate, anything else) hides itself and every entry after
    it; each problem is reported as a sentence. A ``MIG-`` entry raises MigEnabled.
    """
    count = len(uuids)
    if cuda_visible_devices is None:
        return list(range(count)), []
    if not cuda_visible_devices.strip():
        return [], []
    entries = cuda_visible_devices.split(",")
    chosen: list[int] = []
    problems: list[str] = []
    for position, raw in enumerate(entries):
        entry = raw.strip()
        index: int | None = None
        why = ""
        if entry.upper().startswith("MIG-"):
            raise MigEnabled(
                f"CUDA_VISIBLE_DEVICES selects a MIG instance ({entry}): NVML reports energy "
                "for the whole GPU, so the energy of one MIG instance cannot be measured. "
                "Run on a GPU without MIG."
            )
        if re.fullmatch(r"\d+", entry):
            index = int(entry)
            if index >= count:
                why = f"there is no GPU {index} (NVML sees {count})"
                index = None
        elif entry.upper().startswith("GPU-") and len(entry) > 4:
            matches = [i for i, u in enumerate(uuids) if u.lower().startswith(entry.lower())]
            if len(matches) == 1:
                index = matches[0]
            elif not matches:
                why = "no GPU has this UUID"
            else:
                why = f"this UUID prefix matches {len(matches)} GPUs"
        else:
            why = "it is neither a GPU index nor a GPU- UUID"
        if index is not None and index in chosen:
            why, index = f"GPU {index} is listed twice", None
        if index is None:
            ignored = [e.strip() for e in entries[position + 1 :]]
            tail = f" and the entries after it ({', '.join(ignored)})" if ignored else ""
            problems.append(
                f"CUDA_VISIBLE_DEVICES entry {entry!r} is invalid: {why}; CUDA ignores it{tail}, "
                "so they are not measured either"
            )
            break
        chosen.append(index)
    return chosen, problems


def _check_mig(handle: Any, index: int, uuid: str) -> None:
    try:
        current, _pending = pynvml.nvmlDeviceGetMigMode(handle)
    except pynvml.NVMLError as err:
        if _unsupported(err):
            return  # no MIG on this GPU
        raise nvml_failure(f"nvmlDeviceGetMigMode (GPU {index})", err) from err
    if current == pynvml.NVML_DEVICE_MIG_ENABLE:
        raise MigEnabled(
            f"GPU {index} ({uuid}) is in MIG mode: NVML reports energy and power for the whole "
            "GPU, not for a MIG instance, so this workload's energy cannot be attributed. "
            f"Disable MIG (`sudo nvidia-smi -i {index} -mig 0`, then reset the GPU) or run on a "
            "GPU without MIG."
        )


def counter_problem(handle: Any) -> str | None:
    """None if the energy counter can be read, else why not."""
    try:
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except pynvml.NVMLError as err:
        return f"{type(err).__name__}: {err}"
    return None


def _power_limit_w(handle: Any) -> float | None:
    try:
        return float(pynvml.nvmlDeviceGetPowerManagementLimit(handle)) / 1000.0
    except pynvml.NVMLError:
        return None


def _all_uuids() -> list[str]:
    try:
        count = int(pynvml.nvmlDeviceGetCount())
        return [_text(pynvml.nvmlDeviceGetUUID(device_handle(i))) for i in range(count)]
    except pynvml.NVMLError as err:
        raise nvml_failure("enumerating GPUs", err) from err


def list_gpus(env: Mapping[str, str] | None = None) -> list[GpuInfo]:
    """The GPUs this process can use, in CUDA order, honouring ``CUDA_VISIBLE_DEVICES``.

    ``env`` defaults to ``os.environ``. Raises NvmlUnavailable when NVML cannot be initialised
    and MigEnabled when a visible GPU is in MIG mode. Problems with ``CUDA_VISIBLE_DEVICES`` are
    logged as warnings (and returned by :func:`cuda_visible_devices_warnings`).
    """
    ensure_init()
    environ = os.environ if env is None else env
    uuids = _all_uuids()
    indices, problems = visible_gpu_indices(environ.get("CUDA_VISIBLE_DEVICES"), uuids)
    for problem in problems:
        logger.warning("%s", problem)
    if not indices:
        return []
    try:
        driver_version = _text(pynvml.nvmlSystemGetDriverVersion())
    except pynvml.NVMLError as err:
        raise nvml_failure("nvmlSystemGetDriverVersion", err) from err
    gpus: list[GpuInfo] = []
    for cuda_index, index in enumerate(indices):
        handle = device_handle(index)
        _check_mig(handle, index, uuids[index])
        try:
            name = _text(pynvml.nvmlDeviceGetName(handle))
        except pynvml.NVMLError as err:
            raise nvml_failure(f"nvmlDeviceGetName (GPU {index})", err) from err
        gpus.append(
            GpuInfo(
                index=index,
                uuid=uuids[index],
                name=name,
                driver_version=driver_version,
                power_limit_w=_power_limit_w(handle),
                energy_counter=counter_problem(handle) is None,
                cuda_index=cuda_index,
            )
        )
    return gpus


def cuda_visible_devices_warnings(env: Mapping[str, str] | None = None) -> list[str]:
    """Human-readable warnings about ``CUDA_VISIBLE_DEVICES`` / ``CUDA_DEVICE_ORDER``.

    Invalid entries (see :func:`visible_gpu_indices`), and integer indices used while
    ``CUDA_DEVICE_ORDER`` is not ``PCI_BUS_ID`` on a machine with different GPU models: CUDA then
    numbers GPUs fastest first while NVML numbers them by PCI bus, so an index may name another
    GPU. Raises NvmlUnavailable when NVML cannot be initialised.
    """
    ensure_init()
    environ = os.environ if env is None else env
    value = environ.get("CUDA_VISIBLE_DEVICES")
    uuids = _all_uuids()
    _indices, problems = visible_gpu_indices(value, uuids)
    uses_indices = value is not None and any(
        re.fullmatch(r"\d+", e.strip()) for e in value.split(",")
    )
    if uses_indices and environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
        try:
            names = {_text(pynvml.nvmlDeviceGetName(device_handle(i))) for i in range(len(uuids))}
        except pynvml.NVMLError as err:
            raise nvml_failure("nvmlDeviceGetName", err) from err
        if len(names) > 1:
            problems.append(
                "CUDA_VISIBLE_DEVICES uses indices but CUDA_DEVICE_ORDER is not PCI_BUS_ID and "
                f"this machine has different GPU models ({', '.join(sorted(names))}): CUDA's "
                "index may not be NVML's; set CUDA_DEVICE_ORDER=PCI_BUS_ID or use GPU UUIDs"
            )
    return problems


# --- other processes on a GPU -----------------------------------------------------------------


def _own_pids() -> set[int]:
    """This process's PID in every PID namespace (NVML reports host PIDs inside containers)."""
    pids = {os.getpid()}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                pids.update(int(p) for p in line.split()[1:])
    except (OSError, ValueError):
        pass
    return pids


def foreign_processes(gpu: GpuInfo | int, *, exclude_pids: Iterable[int] = ()) -> list[int]:
    """PIDs of other processes with a compute or graphics context on ``gpu`` (sorted).

    This process (``os.getpid()``, in every PID namespace) and ``exclude_pids`` (e.g. the
    workload's own worker processes) are left out.
    """
    ensure_init()
    index = gpu.index if isinstance(gpu, GpuInfo) else gpu
    handle = device_handle(index)
    pids: set[int] = set()
    for fn in (
        pynvml.nvmlDeviceGetComputeRunningProcesses,
        pynvml.nvmlDeviceGetGraphicsRunningProcesses,
    ):
        try:
            processes = fn(handle)
        except pynvml.NVMLError as err:
            if _unsupported(err):
                continue
            raise nvml_failure(f"listing processes on GPU {index}", err) from err
        pids.update(int(p.pid) for p in processes)
    pids -= _own_pids()
    pids -= set(exclude_pids)
    return sorted(pids)


def check_foreign_processes(gpus: Iterable[GpuInfo], *, exclude_pids: Iterable[int] = ()) -> None:
    """Raise ForeignProcesses if any of ``gpus`` runs other processes."""
    excluded = list(exclude_pids)
    found = {g.index: foreign_processes(g, exclude_pids=excluded) for g in gpus}
    busy = {index: pids for index, pids in found.items() if pids}
    if busy:
        where = "; ".join(
            f"GPU {index}: PID {', '.join(map(str, pids))}" for index, pids in busy.items()
        )
        raise ForeignProcesses(
            f"other processes are using the GPU ({where}); their energy would be counted as "
            "this workload's. Stop them, or pick another GPU with CUDA_VISIBLE_DEVICES."
        )


# --- readings ----------------------------------------------------------------------------------


def read_counter_mj(handle: Any) -> int:
    """The energy counter (mJ since the driver was loaded); raises NVMLError."""
    return int(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle))


def read_power_w(handle: Any) -> float:
    """The power reading (NVML reports mW) in W; raises NVMLError."""
    return float(pynvml.nvmlDeviceGetPowerUsage(handle)) / 1000.0


def read_utilisation_pct(handle: Any) -> int:
    """The share of the last sample period in which a kernel ran (%); raises NVMLError."""
    return int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)


# --- probing the energy counter ---------------------------------------------------------------


def probe_counter(
    gpu: GpuInfo, *, wait_s: float = DEFAULT_PROBE_WAIT_S, sleep: Sleep = time.sleep
) -> bool:
    """Whether the GPU's energy counter advances over ``wait_s`` (read, sleep, read).

    False when the counter is unsupported or does not move (reported on some virtualised GPUs).
    """
    return probe_counters([gpu], wait_s=wait_s, sleep=sleep)[gpu.index] is None


def probe_counters(
    gpus: Sequence[GpuInfo], *, wait_s: float, sleep: Sleep
) -> dict[int, str | None]:
    """Probe every GPU over one shared wait; maps NVML index to a fallback reason or None."""
    ensure_init()
    results: dict[int, str | None] = {}
    starts: dict[int, tuple[Any, int]] = {}
    for gpu in gpus:
        handle = device_handle(gpu.index)
        try:
            starts[gpu.index] = (handle, read_counter_mj(handle))
        except pynvml.NVMLError as err:
            results[gpu.index] = FALLBACK_COUNTER_NOT_SUPPORTED
            logger.info("GPU %s has no usable energy counter: %s", gpu.index, err)
    if starts:
        sleep(wait_s)
    for index, (handle, start_mj) in starts.items():
        try:
            end_mj = read_counter_mj(handle)
        except pynvml.NVMLError:
            results[index] = FALLBACK_COUNTER_NOT_SUPPORTED
            continue
        results[index] = None if end_mj > start_mj else FALLBACK_COUNTER_NOT_ADVANCING
    return results


# --- names that moved to the meters' modules ---------------------------------------------------

_MOVED = {
    "NvmlCounterMeter": "bench_runner.devices.counter",
    "NvmlSamplingMeter": "bench_runner.devices.sampler",
    "make_gpu_meters": "bench_runner.devices.gpu",
}


def __getattr__(name: str) -> Any:
    """``nvml.NvmlCounterMeter`` and the other moved names, imported on first access (the
    meters' modules import this one, so this one cannot import them at its top)."""
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
