"""Prometheus metrics of a tracked run or a watched deployment, for scraping.

``carbonlabel track`` (``prometheus_port=``) and ``carbonlabel watch`` (``--prometheus-port``)
serve these on ``http://HOST:PORT/metrics`` (prometheus_client's own server, a daemon thread):

- ``carbonlabel_energy_joules_total{device,component}`` (counter): energy metered so far;
- ``carbonlabel_power_watts{device,component}`` (gauge): mean power over the last segment;
- ``carbonlabel_co2e_grams_total`` (counter): operational CO2e so far, energy x PUE x intensity;
- ``carbonlabel_units_total{unit}`` (counter): steps (track) or requests (watch) so far;
- ``carbonlabel_segments_total`` (counter): segments closed;
- ``carbonlabel_watch_labels_total{outcome}`` (counter): labels ``signed``, ``submitted``,
  ``skipped`` by ``watch`` (not ``carbonlabel_labels``: the registry's gauge of stored labels).

Each exporter has its own registry (no global state), so several in one process do not collide.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from bench_runner.devices.base import TraceComponent
from schemas.window_energy import component_energy_j


class RunMetrics:
    def __init__(self, *, g_per_wh: float, unit: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.g_per_wh = g_per_wh
        self.unit = unit
        self.energy = Counter(
            "carbonlabel_energy_joules",
            "Energy metered so far, by device and component (J).",
            ["device", "component"],
            registry=self.registry,
        )
        self.power = Gauge(
            "carbonlabel_power_watts",
            "Mean power over the last closed segment, by device and component (W).",
            ["device", "component"],
            registry=self.registry,
        )
        self.co2e = Counter(
            "carbonlabel_co2e_grams",
            "Operational CO2e so far: energy x PUE x grid intensity (g).",
            registry=self.registry,
        )
        self.units = Counter(
            "carbonlabel_units",
            "Work done so far: training steps (track) or requests (watch).",
            ["unit"],
            registry=self.registry,
        )
        self.segments = Counter(
            "carbonlabel_segments", "Measurement segments closed.", registry=self.registry
        )
        self.labels = Counter(
            "carbonlabel_watch_labels",
            "Labels written by watch, by outcome: signed, submitted, skipped.",
            ["outcome"],
            registry=self.registry,
        )
        self._server: Any = None

    def observe(
        self, t_start_s: float, t_end_s: float, components: Iterable[TraceComponent], units: int
    ) -> None:
        """Count one closed segment."""
        total_j = 0.0
        length_s = t_end_s - t_start_s
        for component in components:
            energy_j = component_energy_j(component, t_start_s, t_end_s)
            labels = (str(component.get("device", "")), str(component["name"]))
            self.energy.labels(*labels).inc(max(energy_j, 0.0))
            if length_s > 0:
                self.power.labels(*labels).set(energy_j / length_s)
            total_j += energy_j
        self.co2e.inc(max(total_j, 0.0) / 3600.0 * self.g_per_wh)
        self.units.labels(self.unit).inc(units)
        self.segments.inc()

    def serve(self, port: int, addr: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` on ``addr:port`` (0: any free port); returns the port."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        self._server = server
        return int(server.server_port)

    def text(self) -> str:
        return generate_latest(self.registry).decode()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
