"""CPU package and DRAM energy from RAPL, through the Linux powercap sysfs interface.

Layout (``/sys/class/powercap`` by default; the root is injectable for tests)::

    intel-rapl:0/                 name = "package-0", energy_uj, max_energy_range_uj
    intel-rapl:0/intel-rapl:0:0/  name = "core"   (part of the package; not measured separately)
    intel-rapl:0/intel-rapl:0:1/  name = "dram"
    intel-rapl:1/                 name = "package-1", ...
    intel-rapl:0:0 -> intel-rapl:0/intel-rapl:0:0   (top-level links to the subzones)

Each ``package-N`` zone becomes a ``cpu`` meter and each of its ``dram`` subzones a ``dram``
meter (method ``rapl``). Other zones (``psys``, ``core``, ``uncore``, ``intel-rapl-mmio``) are
skipped: they overlap the package. AMD Zen CPUs expose the same ``intel-rapl`` powercap zones on
recent kernels (package and core, no DRAM), so this works there unchanged.

``energy_uj`` counts µJ and wraps to 0 after ``max_energy_range_uj``. The meter returns the raw
counter (in J) at the window edges plus ``counter_range_j``, so a single wrap is recomputable
from the label; a background poll (``poll_interval_s``) counts wraps so that a window in which
the counter wrapped more than once is refused instead of silently under-counted.

Since Linux 5.10 (and stable kernels patched for CVE-2020-8694, "Platypus"), ``energy_uj`` is
readable by root only; :class:`~bench_runner.devices.base.RaplPermissionError` explains the fix.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench_runner.devices.base import (
    Clock,
    Meter,
    MeterError,
    RaplPermissionError,
    RaplUnavailable,
    TraceComponent,
)

logger = logging.getLogger(__name__)

DEFAULT_POWERCAP_ROOT = Path("/sys/class/powercap")
#: how often the background poll reads each counter to count wraps (a package at 400 W wraps a
#: typical 262 kJ range in about 11 minutes, so 10 s leaves a wide margin)
DEFAULT_POLL_INTERVAL_S = 10.0

_PACKAGE_ZONE = re.compile(r"^intel-rapl:(\d+)$")
_SUB_ZONE = re.compile(r"^intel-rapl:(\d+):(\d+)$")

Reader = Callable[[Path], str]


def _read_text(path: Path) -> str:
    """Read one sysfs attribute (the default reader; tests replace it)."""
    return path.read_text()


def permission_message(path: Path) -> str:
    """Why ``path`` cannot be read and how to fix it."""
    return (
        f"cannot read {path}: permission denied. Since Linux 5.10 (and stable kernels patched "
        "for CVE-2020-8694, the 'Platypus' power side channel) the RAPL energy counters are "
        "readable by root only. To measure CPU and DRAM energy, either run the benchmark as "
        "root, or make the counters readable until the next reboot with\n"
        "    sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj\n"
        "(the pattern also matches the intel-rapl:N:M subzones, DRAM included), or persistently "
        "with a udev rule, e.g. /etc/udev/rules.d/99-rapl.rules containing\n"
        '    ACTION=="add", SUBSYSTEM=="powercap", RUN+="/bin/chmod a+r /sys%p/energy_uj"\n'
        "Note that this re-opens the side channel the kernel closed to every local user; on a "
        "shared machine prefer running the benchmark as root."
    )


@dataclass(frozen=True)
class RaplDomain:
    """One RAPL zone measured as one component."""

    #: the zone's sysfs directory
    path: Path
    #: the zone's directory name, e.g. "intel-rapl:0" or "intel-rapl:0:1"
    zone: str
    #: contents of its ``name`` file: "package-0", "dram", ...
    name: str
    #: "cpu" (a package) or "dram"
    component: str
    #: the package it belongs to, e.g. "package-0"
    package: str
    max_energy_range_uj: int = field(compare=False)

    @property
    def device(self) -> str:
        """Stable identifier for the label: "package-0" or "package-0/dram"."""
        return self.package if self.component == "cpu" else f"{self.package}/{self.name}"

    @property
    def energy_path(self) -> Path:
        return self.path / "energy_uj"

    @property
    def range_j(self) -> float:
        return self.max_energy_range_uj / 1e6


def _read_int(path: Path, reader: Reader) -> int:
    try:
        return int(reader(path).strip())
    except PermissionError as err:
        raise RaplPermissionError(permission_message(path)) from err
    except (OSError, ValueError) as err:
        raise RaplUnavailable(f"cannot read {path}: {err}") from err


def _zone_name(path: Path, reader: Reader) -> str | None:
    try:
        return reader(path / "name").strip()
    except OSError:
        return None


def discover_domains(
    root: Path | str = DEFAULT_POWERCAP_ROOT, *, reader: Reader | None = None
) -> list[RaplDomain]:
    """The package (``cpu``) and ``dram`` RAPL zones under ``root``, packages in order, each
    followed by its DRAM zone. Raises RaplUnavailable when there are none."""
    read = reader if reader is not None else _read_text
    root = Path(root)
    if not root.is_dir():
        raise RaplUnavailable(
            f"no RAPL domains: {root} does not exist (not Linux, no RAPL-capable CPU, the "
            "intel_rapl_msr module not loaded, or /sys not available in this container)"
        )
    domains: list[tuple[tuple[int, int], RaplDomain]] = []
    for package_dir in sorted(root.iterdir()):
        match = _PACKAGE_ZONE.match(package_dir.name)
        if not match:
            continue
        package = _zone_name(package_dir, read)
        if package is None or not package.startswith("package-"):
            continue  # e.g. "psys", the whole platform, which overlaps the packages
        number = int(match.group(1))
        domains.append(
            (
                (number, -1),
                RaplDomain(
                    path=package_dir,
                    zone=package_dir.name,
                    name=package,
                    component="cpu",
                    package=package,
                    max_energy_range_uj=_read_int(package_dir / "max_energy_range_uj", read),
                ),
            )
        )
        # subzones live inside the package directory (the top-level entries are links to them)
        seen: set[str] = set()
        candidates = [*package_dir.iterdir(), *root.iterdir()]
        for sub_dir in sorted(candidates, key=lambda p: p.name):
            sub = _SUB_ZONE.match(sub_dir.name)
            if not sub or int(sub.group(1)) != number or sub_dir.name in seen:
                continue
            seen.add(sub_dir.name)
            if _zone_name(sub_dir, read) != "dram":
                continue
            domains.append(
                (
                    (number, int(sub.group(2))),
                    RaplDomain(
                        path=sub_dir,
                        zone=sub_dir.name,
                        name="dram",
                        component="dram",
                        package=package,
                        max_energy_range_uj=_read_int(sub_dir / "max_energy_range_uj", read),
                    ),
                )
            )
    if not domains:
        raise RaplUnavailable(
            f"no RAPL domains: {root} has no intel-rapl:N zone named package-N (no RAPL-capable "
            "CPU, or the intel_rapl_msr module is not loaded)"
        )
    return [domain for _key, domain in sorted(domains, key=lambda item: item[0])]


def energy_delta_uj(start_uj: int, end_uj: int, range_uj: int) -> int:
    """Energy between two readings of a counter that wraps after ``range_uj`` (at most once)."""
    delta = end_uj - start_uj
    return delta + range_uj if delta < 0 else delta


@dataclass
class _Window:
    start_uj: int
    last_uj: int
    wraps: int = 0


class RaplMeter(Meter):
    """One RAPL zone: counter readings at window edges, with wraparound accounted for.

    The constructor reads the counter once, so a permission problem surfaces at discovery
    (RaplPermissionError). ``poll_interval_s`` (default 10 s; None disables) runs a daemon
    thread that reads the counter to count wraps inside open windows.
    """

    method = "rapl"

    def __init__(
        self,
        domain: RaplDomain,
        *,
        clock: Clock = time.monotonic,
        reader: Reader | None = None,
        poll_interval_s: float | None = DEFAULT_POLL_INTERVAL_S,
    ) -> None:
        if domain.max_energy_range_uj <= 0:
            raise RaplUnavailable(f"{domain.path}: max_energy_range_uj is not positive")
        self.domain = domain
        self.component = domain.component
        self.device = domain.device
        self._clock = clock
        self._reader = reader
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        self._last: tuple[float, int] | None = None
        self._power_w: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.poll()
        if poll_interval_s is not None:
            if not poll_interval_s > 0:
                raise ValueError("poll_interval_s must be > 0 or None")
            self._thread = threading.Thread(
                target=self._poll_loop,
                args=(poll_interval_s,),
                name=f"rapl-poll-{domain.zone}",
                daemon=True,
            )
            self._thread.start()

    def read_energy_uj(self) -> int:
        """The raw counter now (µJ)."""
        reader = self._reader if self._reader is not None else _read_text
        return _read_int(self.domain.energy_path, reader)

    def _observe_locked(self, t_s: float, energy_uj: int) -> None:
        for window in self._windows.values():
            if energy_uj < window.last_uj:
                window.wraps += 1
            window.last_uj = energy_uj
        if self._last is not None:
            t0_s, e0_uj = self._last
            dt_s = t_s - t0_s
            if dt_s > 1e-3:
                delta = energy_delta_uj(e0_uj, energy_uj, self.domain.max_energy_range_uj)
                self._power_w = delta / 1e6 / dt_s
            else:
                return  # too close to the previous reading to give a power: keep that one
        self._last = (t_s, energy_uj)

    def poll(self) -> int:
        """Read the counter now, counting a wrap for every open window; returns µJ."""
        with self._lock:
            energy_uj = self.read_energy_uj()
            self._observe_locked(self._clock(), energy_uj)
            return energy_uj

    def _poll_loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.poll()
            except MeterError as err:
                logger.warning("RAPL poll of %s failed: %s", self.domain.zone, err)

    def begin_window(self, key: str) -> None:
        with self._lock:
            if key in self._windows:
                raise MeterError(f"window {key!r} is already open")
            energy_uj = self.read_energy_uj()
            self._observe_locked(self._clock(), energy_uj)
            self._windows[key] = _Window(start_uj=energy_uj, last_uj=energy_uj)

    def end_window(self, key: str) -> TraceComponent:
        with self._lock:
            if key not in self._windows:
                raise MeterError(f"window {key!r} was never opened")
            energy_uj = self.read_energy_uj()
            self._observe_locked(self._clock(), energy_uj)
            window = self._windows.pop(key)
        if window.wraps > 1 or (window.wraps == 1 and energy_uj >= window.start_uj):
            raise MeterError(
                f"the RAPL counter of {self.device} wrapped {window.wraps} times in window "
                f"{key!r} (range {self.domain.range_j:.0f} J): its energy cannot be expressed "
                "as one counter reading; use shorter windows"
            )
        return {
            "name": self.component,
            "method": self.method,
            "device": self.device,
            "counter_start_j": window.start_uj / 1e6,
            "counter_end_j": energy_uj / 1e6,
            "counter_range_j": self.domain.range_j,
        }

    def power_w(self) -> float | None:
        """Average power since the previous reading (wraparound handled), or None."""
        try:
            self.poll()
        except MeterError:
            return None
        with self._lock:
            return self._power_w

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)


def make_rapl_meters(
    root: Path | str = DEFAULT_POWERCAP_ROOT,
    *,
    clock: Clock = time.monotonic,
    reader: Reader | None = None,
    poll_interval_s: float | None = DEFAULT_POLL_INTERVAL_S,
) -> list[RaplMeter]:
    """A meter for every package and DRAM zone. Raises RaplUnavailable (no zones) or
    RaplPermissionError (zones present, counters readable by root only)."""
    meters: list[RaplMeter] = []
    try:
        for domain in discover_domains(root, reader=reader):
            meters.append(
                RaplMeter(domain, clock=clock, reader=reader, poll_interval_s=poll_interval_s)
            )
    except MeterError:
        for meter in meters:
            meter.close()
        raise
    return meters
