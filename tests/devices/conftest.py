"""A fake NVML for the device tests, installed by patching the functions of the real ``pynvml``
module that ``bench_runner.devices.nvml`` imported (its error classes and constants stay real).

By default (autouse) NVML's shared library is "not found", so no test can reach a real GPU; the
``fake_nvml`` fixture installs fake GPUs instead.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest

from bench_runner.devices import nvml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "label.schema.json"
DATA_DIR = Path(__file__).resolve().parents[1] / "data"

NVML_FUNCTIONS = (
    "nvmlInit",
    "nvmlShutdown",
    "nvmlSystemGetDriverVersion",
    "nvmlDeviceGetCount",
    "nvmlDeviceGetHandleByIndex",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetName",
    "nvmlDeviceGetPowerManagementLimit",
    "nvmlDeviceGetTotalEnergyConsumption",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetMigMode",
    "nvmlDeviceGetComputeRunningProcesses",
    "nvmlDeviceGetGraphicsRunningProcesses",
)


def nvml_error(code: int) -> pynvml.NVMLError:
    """A real NVML error; ``NVMLError(code)`` becomes the matching subclass."""
    return pynvml.NVMLError(code)


class FakeClock:
    """A monotonic clock the test moves; ``sleep`` advances it."""

    def __init__(self, t_s: float = 1000.0) -> None:
        self.t_s = t_s
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.t_s

    def advance(self, dt_s: float) -> None:
        with self._lock:
            self.t_s += dt_s

    def sleep(self, dt_s: float) -> None:
        self.advance(dt_s)


@dataclass
class FakeGpu:
    """One GPU as the fake NVML reports it. Callables are called on every read."""

    uuid: str
    name: str | bytes = "NVIDIA A100-SXM4-40GB"
    #: mJ, or a callable giving it; None: nvmlDeviceGetTotalEnergyConsumption is NotSupported
    energy_mj: int | Callable[[], int] | None = 0
    #: mW, or a callable giving it; None: NotSupported
    power_mw: int | Callable[[], int] | None = 100_000
    #: GPU utilisation (%), or a callable giving it; None: nvmlDeviceGetUtilizationRates is
    #: NotSupported
    utilisation_pct: int | Callable[[], int] | None = 0
    #: None: nvmlDeviceGetPowerManagementLimit is NotSupported
    power_limit_mw: int | None = 400_000
    #: current MIG mode; None: nvmlDeviceGetMigMode is NotSupported (no MIG)
    mig_mode: int | None = None
    compute_pids: list[int] = field(default_factory=list)
    #: None: nvmlDeviceGetGraphicsRunningProcesses is NotSupported
    graphics_pids: list[int] | None = field(default_factory=list)


def _value(v: Any) -> Any:
    return v() if callable(v) else v


class FakeNvml:
    def __init__(self) -> None:
        self.gpus: list[FakeGpu] = []
        self.driver_version: str | bytes = "550.54.15"
        self.init_error: int | None = None
        self.init_calls = 0

    def add(self, gpu: FakeGpu) -> FakeGpu:
        self.gpus.append(gpu)
        return gpu

    # the NVML functions (a handle is the FakeGpu itself)

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error is not None:
            raise nvml_error(self.init_error)

    def nvmlShutdown(self) -> None:
        pass

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        return self.driver_version

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        if not 0 <= index < len(self.gpus):
            raise nvml_error(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return self.gpus[index]

    def nvmlDeviceGetUUID(self, handle: FakeGpu) -> str:
        return handle.uuid

    def nvmlDeviceGetName(self, handle: FakeGpu) -> str | bytes:
        return handle.name

    def nvmlDeviceGetPowerManagementLimit(self, handle: FakeGpu) -> int:
        if handle.power_limit_mw is None:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return handle.power_limit_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeGpu) -> int:
        if handle.energy_mj is None:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return int(_value(handle.energy_mj))

    def nvmlDeviceGetPowerUsage(self, handle: FakeGpu) -> int:
        if handle.power_mw is None:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return int(_value(handle.power_mw))

    def nvmlDeviceGetUtilizationRates(self, handle: FakeGpu) -> SimpleNamespace:
        if handle.utilisation_pct is None:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return SimpleNamespace(gpu=int(_value(handle.utilisation_pct)), memory=0)

    def nvmlDeviceGetMigMode(self, handle: FakeGpu) -> list[int]:
        if handle.mig_mode is None:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return [handle.mig_mode, handle.mig_mode]

    def nvmlDeviceGetComputeRunningProcesses(self, handle: FakeGpu) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=p, usedGpuMemory=0) for p in handle.compute_pids]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: FakeGpu) -> list[SimpleNamespace]:
        if handle.graphics_pids is None:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return [SimpleNamespace(pid=p, usedGpuMemory=0) for p in handle.graphics_pids]


def _install(monkeypatch: pytest.MonkeyPatch, fake: FakeNvml) -> None:
    for name in NVML_FUNCTIONS:
        monkeypatch.setattr(f"bench_runner.devices.nvml.pynvml.{name}", getattr(fake, name))


@pytest.fixture(autouse=True)
def no_real_nvml(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    """Every device test starts with NVML uninitialised and its library missing, and with no
    CUDA_VISIBLE_DEVICES / CUDA_DEVICE_ORDER from the environment."""
    monkeypatch.setattr(nvml, "_initialised", False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    fake = FakeNvml()
    fake.init_error = pynvml.NVML_ERROR_LIBRARY_NOT_FOUND
    _install(monkeypatch, fake)
    return fake


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch, no_real_nvml: FakeNvml) -> FakeNvml:
    """A working fake NVML with no GPUs; tests add them with ``fake_nvml.add(FakeGpu(...))``."""
    no_real_nvml.init_error = None
    return no_real_nvml


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def closing() -> Iterator[Callable[[Any], Any]]:
    """Register meters (or meter sets) to be closed at teardown; returns its argument."""
    opened: list[Any] = []

    def register(obj: Any) -> Any:
        opened.append(obj)
        return obj

    yield register
    for obj in reversed(opened):
        if isinstance(obj, list):
            for item in obj:
                item.close()
        else:
            obj.close()


@pytest.fixture(scope="session")
def label_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@pytest.fixture
def validate_component(label_schema: dict[str, Any]) -> Callable[[dict[str, Any], str], None]:
    """Validate a trace component against ``$defs/<name>`` of the label schema."""
    import jsonschema

    def validate(component: dict[str, Any], definition: str) -> None:
        schema = {
            "$schema": label_schema["$schema"],
            "$defs": label_schema["$defs"],
            "$ref": f"#/$defs/{definition}",
        }
        jsonschema.validate(component, schema)

    return validate
