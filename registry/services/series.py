"""A model's figures across revisions and time, and its production periods against its
benchmark (issue 14: improvement over time, production drift).

Per **group** (suite, task and phase: labels of different suites run different workloads, so
they are never compared):

- ``benchmark``: every benchmark label in good standing, oldest first (``created_at``), with its
  revision, hardware class, energy per functional unit (mean), the upper bound of its 95% CI and
  its grade;
- ``tracks``: per hardware class (figures of different hardware are not comparable), the figure
  of each revision, from its newest *comparable* label (measured, on the suite's standard
  workload), revisions in the order of those labels; the change of the latest revision since the
  previous one and since the first, absolute (Wh) and relative (``latest / earlier - 1``);
- ``operational``: each production period (``operational`` label) in good standing, oldest first:
  its start and end, energy per 1,000 requests, per output token, utilisation, idle share,
  CO2e, and its **drift** against the benchmark (below);
- ``training_runs``: each whole training run measured (``training-run`` label), newest first.

**Drift.** A period's drift is ``production / benchmark - 1``, where production is the period's
energy per 1,000 requests and benchmark the energy per functional unit (mean) of the model's
current benchmark label of the same group and hardware class, when that label is measured on the
suite's standard workload and has the same functional unit (1,000 requests). Without one there
is no drift figure. A period drifts (``drift_flagged``) when its drift exceeds
:func:`drift_tolerance`.

The lists are bounded (:data:`MAX_BENCHMARK_POINTS`, :data:`MAX_OPERATIONAL_POINTS`,
:data:`MAX_TRAINING_RUNS`: the newest are kept, and the answer says when some were left out),
read newest first through ``ix_labels_model_kind_created`` (model, kind, created_at, id) with a
LIMIT; only typed columns and the few JSON members shown are read, never the traces. A vendor's
trend, from the same tracks, is ``services.trends``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from registry.db import read_mappings
from registry.errors import ProblemError
from registry.models import Label, LabelKind, Model, Standing, Vendor
from registry.records import frozen_from
from registry.services.briefs import PlainLabel
from schemas import kinds


def drift_tolerance() -> float:
    """A production period drifts when its energy per 1,000 requests exceeds the benchmark figure
    by more than this share: ``methodology.json`` ``operational.drift_tolerance_relative`` (0.25;
    why so wide: docs/methodology.md)."""
    return kinds.drift_tolerance_relative()


MAX_BENCHMARK_POINTS = 1000
"""Benchmark labels per model in a series (the newest)."""
MAX_OPERATIONAL_POINTS = 500
"""Production periods per model in a series (the newest: about three weeks of hourly periods)."""
MAX_TRAINING_RUNS = 100
"""Training runs per model (the newest)."""
REQUESTS_UNIT = "1k-requests"

LABELS = Label.__table__  # type: ignore[attr-defined]
_DOC = LABELS.c.predicate


# -- what the series hold ------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkPoint:
    label_id: str
    revision: str
    hardware_class: str
    functional_unit: str
    created_at: datetime
    energy_per_unit_wh: float
    energy_ci95_high_wh: float
    grade: str | None
    measured: bool
    standard_workload: bool
    current: bool

    @property
    def comparable(self) -> bool:
        """Measured on the suite's standard workload: a figure changes are computed from."""
        return self.measured and self.standard_workload

    @classmethod
    def of(cls, row: Any, *, measured: bool, standard_workload: bool) -> BenchmarkPoint:
        """The point of a label row (the series' or the trend's select), without the frozen
        dataclass's ``__init__`` (:func:`registry.records.frozen_from`: a vendor page makes a
        point of each of up to 1,000 labels)."""
        fields = {
            "label_id": row.id,
            "revision": row.revision,
            "hardware_class": row.hardware_class,
            "functional_unit": row.functional_unit,
            "created_at": row.created_at,
            "energy_per_unit_wh": float(row.energy_per_unit_wh),
            "energy_ci95_high_wh": float(row.energy_ci95_high_wh),
            "grade": row.grade,
            "measured": measured,
            "standard_workload": standard_workload,
            "current": bool(row.current),
        }
        return frozen_from(cls, fields)


@dataclass(frozen=True)
class Change:
    absolute_wh: float
    """``latest - earlier``, Wh per functional unit (negative: less energy)."""
    relative: float | None
    """``latest / earlier - 1`` (None when the earlier figure is 0)."""


def change(earlier: float, latest: float) -> Change:
    return Change(latest - earlier, latest / earlier - 1.0 if earlier > 0 else None)


@dataclass(frozen=True)
class Track:
    """One hardware class of a group: the figure of each revision, oldest first."""

    hardware_class: str
    revisions: list[BenchmarkPoint]

    @property
    def first(self) -> BenchmarkPoint:
        return self.revisions[0]

    @property
    def latest(self) -> BenchmarkPoint:
        return self.revisions[-1]

    @property
    def previous(self) -> BenchmarkPoint | None:
        return self.revisions[-2] if len(self.revisions) > 1 else None

    @property
    def since_previous(self) -> Change | None:
        previous = self.previous
        if previous is None:
            return None
        return change(previous.energy_per_unit_wh, self.latest.energy_per_unit_wh)

    @property
    def since_first(self) -> Change | None:
        if len(self.revisions) < 2:
            return None
        return change(self.first.energy_per_unit_wh, self.latest.energy_per_unit_wh)


def tracks_of(points: Iterable[BenchmarkPoint]) -> list[Track]:
    """Per hardware class (in name order), the figure of each revision: its newest comparable
    label; revisions in the order of those labels (so the latest is the current label)."""
    newest: dict[str, dict[str, BenchmarkPoint]] = {}
    for point in sorted(points, key=lambda p: (p.created_at, p.label_id)):
        if point.comparable:
            newest.setdefault(point.hardware_class, {})[point.revision] = point
    return [
        Track(hw, sorted(by_revision.values(), key=lambda p: (p.created_at, p.label_id)))
        for hw, by_revision in sorted(newest.items())
    ]


@dataclass(frozen=True)
class DriftReference:
    """The benchmark label a hardware class's production periods are compared with."""

    hardware_class: str
    label_id: str
    revision: str
    created_at: datetime
    energy_per_unit_wh: float

    @property
    def limit_wh(self) -> float:
        """The figure above which a period drifts."""
        return self.energy_per_unit_wh * (1.0 + drift_tolerance())


@dataclass(frozen=True)
class OperationalPoint:
    label_id: str
    revision: str
    hardware_class: str
    period_start: datetime | None
    period_end: datetime
    period_s: float | None
    requests: int | None
    energy_wh: float | None
    energy_per_1k_requests_wh: float
    energy_per_output_token_j: float | None
    utilisation: float | None
    idle_share: float | None
    co2e_g: float | None
    drift: float | None = None
    """``production / benchmark - 1`` against the hardware class's reference; None without one."""

    @property
    def drift_flagged(self) -> bool:
        return self.drift is not None and self.drift > drift_tolerance()


@dataclass(frozen=True)
class TrainingRun:
    label_id: str
    revision: str
    hardware_class: str
    started_at: datetime | None
    ended_at: datetime
    status: str | None
    """``complete`` or ``incomplete`` (a run stopped before its end), as the label states."""
    total_energy_wh: float | None
    steps: int | None
    samples: int | None
    co2e_g: float | None


@dataclass
class SeriesGroup:
    suite: str
    task: str
    phase: str
    functional_unit: str
    benchmark: list[BenchmarkPoint] = field(default_factory=list)
    operational: list[OperationalPoint] = field(default_factory=list)
    training_runs: list[TrainingRun] = field(default_factory=list)
    tracks: list[Track] = field(default_factory=list)
    references: dict[str, DriftReference] = field(default_factory=dict)
    """Per hardware class: the benchmark label its production periods are compared with."""

    def track(self, hardware_class: str) -> Track | None:
        return next((t for t in self.tracks if t.hardware_class == hardware_class), None)


@dataclass
class ModelSeries:
    vendor: str
    model: str
    model_id: int
    """The model's row id (for its page's other reads: ``LabelFilters.model_id``)."""
    groups: list[SeriesGroup]
    truncated: dict[str, bool]
    """Per list (``benchmark``, ``operational``, ``training_runs``): whether older entries were
    left out."""


# -- reading --------------------------------------------------------------------------------------


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def find_model(session: Session, vendor_slug: str, model_name: str) -> int:
    """The model's id; a not-found problem when there is no such vendor or model."""
    found = read_mappings(
        session.connection(), _model_statement(), {"vendor": vendor_slug, "name": model_name}
    )
    if not found:
        raise ProblemError("not-found", f"no model {vendor_slug}/{model_name}")
    return int(found[0]["id"])


@cache
def _model_statement() -> Any:
    return (
        select(Model.id)
        .join(Vendor, col(Vendor.id) == Model.vendor_id)
        .where(Vendor.slug == bindparam("vendor"), Model.name == bindparam("name"))
    )


def _newest(
    session: Session, model_id: int, kind: str, values: dict[str, str], cap: int
) -> tuple[list[Any], bool]:
    """A model's labels of one kind in good standing (those of the suite, task and phase in
    ``values``), newest first, at most ``cap`` (and whether there were more), as plain objects:
    ``ix_labels_model_kind_created`` read backwards with a LIMIT, by a statement built once."""
    connection = session.connection()
    statement = _newest_statement(connection.dialect.name, kind, tuple(values))
    params = {"model_id": model_id, "n": cap + 1, **{f"f_{k}": v for k, v in values.items()}}
    rows = [PlainLabel(row) for row in read_mappings(connection, statement, params)]
    return rows[:cap], len(rows) > cap


@lru_cache(maxsize=64)
def _newest_statement(dialect: str, kind: str, filtered: tuple[str, ...]) -> Any:
    c = LABELS.c
    where = [c.model_id == bindparam("model_id"), c.kind == kind, c.standing == Standing.ok]
    where += [c[name] == bindparam(f"f_{name}") for name in filtered]
    return (
        core_select(*_GROUP_COLUMNS, *_kind_columns(kind, dialect))
        .where(*where)
        .order_by(c.created_at.desc(), c.id.desc())
        .limit(bindparam("n"))
    )


def _kind_columns(kind: str, dialect: str) -> tuple[Any, ...]:
    """What a series reads of a label of ``kind`` beside its group's columns."""
    c = LABELS.c
    if kind == LabelKind.benchmark:
        measured = (c.measured, c.standard_workload, c.current)
        return (c.energy_per_unit_wh, c.energy_ci95_high_wh, c.grade, *measured)

    def part(*path: str) -> Any:
        return _part(dialect, path)

    if kind == LabelKind.operational:
        started, figures = part("run", "started_at"), part("results", "operational")
        return (c.energy_per_unit_wh, started.label("started_at"), figures.label("figures"))
    return (
        part("run", "started_at").label("started_at"),
        part("run", "status").label("status"),
        part("results", "total_energy_wh").label("total_energy_wh"),
        part("results", "steps_measured").label("steps"),
        part("results", "samples_total").label("samples"),
        part("carbon", "co2e_per_run_g").label("co2e_g"),
    )


def _part(dialect: str, path: tuple[str, ...]) -> Any:
    """A part of the document: on PostgreSQL by a chain of ``->`` (text keys: a driver read),
    elsewhere by one path."""
    if dialect != "postgresql":
        return _DOC[path]
    found = _DOC
    for key in path:
        found = found[key]
    return found


_GROUP_COLUMNS = (
    LABELS.c.id,
    LABELS.c.revision,
    LABELS.c.suite,
    LABELS.c.task,
    LABELS.c.phase,
    LABELS.c.hardware_class,
    LABELS.c.functional_unit,
    LABELS.c.created_at,
)


def model_series(
    session: Session,
    vendor_slug: str,
    model_name: str,
    *,
    suite: str | None = None,
    task: str | None = None,
    phase: str | None = None,
) -> ModelSeries:
    """The model's series per group (only the groups matching the filters given)."""
    model_id = find_model(session, vendor_slug, model_name)
    given = {"suite": suite, "task": task, "phase": phase}
    filters = {name: value for name, value in given.items() if value is not None}
    groups: dict[tuple[str, str, str], SeriesGroup] = {}

    def group_of(row: Any) -> SeriesGroup:
        key = (row.suite, row.task, row.phase)
        if key not in groups:
            groups[key] = SeriesGroup(*key, functional_unit=row.functional_unit)
        return groups[key]

    bench_rows, bench_more = _newest(
        session, model_id, LabelKind.benchmark, filters, MAX_BENCHMARK_POINTS
    )
    for row in reversed(bench_rows):
        group_of(row).benchmark.append(
            BenchmarkPoint.of(
                row, measured=bool(row.measured), standard_workload=bool(row.standard_workload)
            )
        )
    for group in groups.values():
        group.tracks = tracks_of(group.benchmark)
        group.references = {
            p.hardware_class: DriftReference(
                p.hardware_class, p.label_id, p.revision, p.created_at, p.energy_per_unit_wh
            )
            for p in group.benchmark
            if p.current and p.comparable and p.functional_unit == REQUESTS_UNIT
        }

    op_rows, op_more = _newest(
        session, model_id, LabelKind.operational, filters, MAX_OPERATIONAL_POINTS
    )
    for row in reversed(op_rows):
        group = group_of(row)
        figures = row.figures if isinstance(row.figures, dict) else {}
        energy = float(row.energy_per_unit_wh)
        reference = group.references.get(row.hardware_class)
        drift = None
        if reference is not None and row.functional_unit == REQUESTS_UNIT:
            drift = change(reference.energy_per_unit_wh, energy).relative
        group.operational.append(
            OperationalPoint(
                label_id=row.id,
                revision=row.revision,
                hardware_class=row.hardware_class,
                period_start=_instant(row.started_at),
                period_end=row.created_at,
                period_s=_number(figures.get("period_s")),
                requests=_whole(figures.get("requests")),
                energy_wh=_number(figures.get("energy_wh")),
                energy_per_1k_requests_wh=energy,
                energy_per_output_token_j=_number(figures.get("energy_per_output_token_j")),
                utilisation=_number(figures.get("utilisation")),
                idle_share=_number(figures.get("idle_share")),
                co2e_g=_number(figures.get("co2e_g")),
                drift=drift,
            )
        )

    run_rows, runs_more = _newest(
        session, model_id, LabelKind.training_run, filters, MAX_TRAINING_RUNS
    )
    for row in run_rows:  # newest first
        group_of(row).training_runs.append(
            TrainingRun(
                label_id=row.id,
                revision=row.revision,
                hardware_class=row.hardware_class,
                started_at=_instant(row.started_at),
                ended_at=row.created_at,
                status=row.status if isinstance(row.status, str) else None,
                total_energy_wh=_number(row.total_energy_wh),
                steps=_whole(row.steps),
                samples=_whole(row.samples),
                co2e_g=_number(row.co2e_g),
            )
        )
    ordered = sorted(
        groups.values(), key=lambda g: (-len(g.suite), descending(g.suite), g.task, g.phase)
    )
    return ModelSeries(
        vendor=vendor_slug,
        model=f"{vendor_slug}/{model_name}",
        model_id=model_id,
        groups=ordered,
        truncated={
            "benchmark": bench_more,
            "operational": op_more,
            "training_runs": runs_more,
        },
    )


def descending(text: str) -> tuple[int, ...]:
    """A sort key that orders strings of one length in descending order (newer suites first)."""
    return tuple(-ord(ch) for ch in text)
