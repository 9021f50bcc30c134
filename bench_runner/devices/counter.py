"""GPU energy from NVML's energy counter (``nvml-energy-counter``), read at window edges.

``nvmlDeviceGetTotalEnergyConsumption`` counts mJ since the driver was loaded (Volta and newer).
NVML is reached through :mod:`bench_runner.devices.nvml` only.
"""

from __future__ import annotations

import threading

from bench_runner.devices import nvml
from bench_runner.devices.base import Meter, MeterError, TraceComponent
from bench_runner.devices.nvml import GpuInfo


class NvmlCounterMeter(Meter):
    """GPU energy from NVML's energy counter, read at window edges."""

    component = "gpu"
    method = "nvml-energy-counter"
    fallback_reason: str | None = None
    fallback_detail: str | None = None

    def __init__(self, gpu: GpuInfo) -> None:
        nvml.ensure_init()
        self.gpu = gpu
        self.device = gpu.uuid
        self._handle = nvml.device_handle(gpu.index)
        self._lock = threading.Lock()
        self._starts_j: dict[str, float] = {}

    def read_energy_j(self) -> float:
        """The counter now, in J (NVML counts mJ since the driver was loaded)."""
        try:
            return nvml.read_counter_mj(self._handle) / 1000.0
        except nvml.NVMLError as err:
            raise nvml.nvml_failure(
                f"reading the energy counter of GPU {self.gpu.index}", err
            ) from err

    def begin_window(self, key: str) -> None:
        energy_j = self.read_energy_j()
        with self._lock:
            if key in self._starts_j:
                raise MeterError(f"window {key!r} is already open")
            self._starts_j[key] = energy_j

    def end_window(self, key: str) -> TraceComponent:
        energy_j = self.read_energy_j()
        with self._lock:
            if key not in self._starts_j:
                raise MeterError(f"window {key!r} was never opened")
            start_j = self._starts_j.pop(key)
        if energy_j < start_j:
            raise MeterError(
                f"the energy counter of GPU {self.gpu.index} went backwards "
                f"({start_j} J -> {energy_j} J): was the driver reloaded or the GPU reset?"
            )
        return {
            "name": self.component,
            "method": self.method,
            "device": self.device,
            "counter_start_j": start_j,
            "counter_end_j": energy_j,
        }

    def power_w(self) -> float | None:
        try:
            return nvml.read_power_w(self._handle)
        except nvml.NVMLError:
            return None
