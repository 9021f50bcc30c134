"""``GET /v1/models/{vendor}/{model}/series`` and ``GET /v1/vendors/{vendor}/series``: a model's
figures across revisions and time with its production periods and their drift, and a vendor's
trend (services/series.py; docs/api.md#series)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from registry.api.deps import SessionDep
from registry.api.routes import (
    ModelPath,
    SuiteQuery,
    VendorPath,
    check_suite_filters,
    invalid_query,
    json_response,
    problems,
)
from registry.services import series, trends
from registry.services import vendors as vendor_service
from schemas.suites import all_tasks

router = APIRouter(prefix="/v1", tags=["v1"])


# -- the answers, as documented in the OpenAPI document --------------------------------------------


class ChangeOut(BaseModel):
    absolute_wh: float = Field(description="latest - earlier, Wh per functional unit")
    relative: float | None = Field(description="latest / earlier - 1; null when earlier is 0")


class RevisionOut(BaseModel):
    """A revision's figure: its newest measured label of the suite's standard workload."""

    label_id: str
    revision: str
    created_at: str
    energy_per_unit_wh: float


class TrackOut(BaseModel):
    """One hardware class of a group: each revision's figure, oldest first, and the changes."""

    hardware_class: str
    revisions: list[RevisionOut]
    first: RevisionOut
    previous: RevisionOut | None
    latest: RevisionOut
    since_previous: ChangeOut | None
    since_first: ChangeOut | None


class BenchmarkPointOut(BaseModel):
    label_id: str
    revision: str
    created_at: str
    hardware_class: str
    energy_per_unit_wh: float = Field(description="mean energy per functional unit, Wh")
    energy_ci95_high_wh: float
    grade: str | None
    method: Literal["measured", "estimated"]
    standard_workload: bool
    current: bool


class DriftReferenceOut(BaseModel):
    """The current benchmark label a hardware class's production periods are compared with."""

    hardware_class: str
    label_id: str
    revision: str
    created_at: str
    energy_per_unit_wh: float
    limit_wh: float = Field(description="energy_per_unit_wh x (1 + drift_tolerance)")


class OperationalPointOut(BaseModel):
    """One production period (an operational label)."""

    label_id: str
    revision: str
    hardware_class: str
    period_start: str | None
    period_end: str
    period_s: float | None
    requests: int | None
    energy_wh: float | None
    energy_per_1k_requests_wh: float
    energy_per_output_token_j: float | None
    utilisation: float | None
    idle_share: float | None
    co2e_g: float | None
    drift: float | None = Field(
        description="energy_per_1k_requests_wh / the reference's figure - 1; null without one"
    )
    drift_flagged: bool = Field(description="drift > drift_tolerance")


class TrainingRunOut(BaseModel):
    label_id: str
    revision: str
    hardware_class: str
    started_at: str | None
    ended_at: str
    status: str | None = Field(description="complete or incomplete, as the label states")
    total_energy_wh: float | None
    steps: int | None
    samples: int | None
    co2e_g: float | None


class SeriesGroupOut(BaseModel):
    suite: str
    task: str
    phase: str
    functional_unit: str
    benchmark: list[BenchmarkPointOut]
    changes: list[TrackOut]
    drift_references: list[DriftReferenceOut]
    operational: list[OperationalPointOut]
    drifted_periods: int
    training_runs: list[TrainingRunOut]


class SeriesLimits(BaseModel):
    benchmark: int
    operational: int
    training_runs: int


class SeriesTruncated(BaseModel):
    benchmark: bool
    operational: bool
    training_runs: bool


class ModelSeriesOut(BaseModel):
    vendor: str
    model: str
    drift_tolerance: float
    limits: SeriesLimits
    truncated: SeriesTruncated
    groups: list[SeriesGroupOut]


class TrendOut(BaseModel):
    suite: str
    task: str
    phase: str
    models: int = Field(description="models with two revisions or more on one hardware class")
    median_relative_change: float | None
    from_month: str = Field(description="YYYY-MM of the earliest first revision counted")
    to_month: str = Field(description="YYYY-MM of the latest revision counted")
    sentence: str


class ModelChangeOut(BaseModel):
    model: str
    suite: str
    task: str
    phase: str
    hardware_class: str
    revisions: int
    series: list[RevisionOut] = Field(description="each revision's figure, oldest first")
    first: RevisionOut
    previous: RevisionOut | None
    latest: RevisionOut
    since_previous: ChangeOut | None
    since_first: ChangeOut | None


class VendorSeriesOut(BaseModel):
    vendor: str
    display_name: str
    trend: str = Field(description="one line a buyer can quote: the trend with the most models")
    trends: list[TrendOut]
    models: list[ModelChangeOut]
    limit: int
    truncated: bool


# -- to JSON ---------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _change(found: series.Change | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {"absolute_wh": found.absolute_wh, "relative": found.relative}


def _revision(point: series.BenchmarkPoint | None) -> dict[str, Any] | None:
    if point is None:
        return None
    return {
        "label_id": point.label_id,
        "revision": point.revision,
        "created_at": _iso(point.created_at),
        "energy_per_unit_wh": point.energy_per_unit_wh,
    }


def _track(track: series.Track) -> dict[str, Any]:
    return {
        "hardware_class": track.hardware_class,
        "revisions": [_revision(p) for p in track.revisions],
        "first": _revision(track.first),
        "previous": _revision(track.previous),
        "latest": _revision(track.latest),
        "since_previous": _change(track.since_previous),
        "since_first": _change(track.since_first),
    }


def _benchmark(p: series.BenchmarkPoint) -> dict[str, Any]:
    return {
        "label_id": p.label_id,
        "revision": p.revision,
        "created_at": _iso(p.created_at),
        "hardware_class": p.hardware_class,
        "energy_per_unit_wh": p.energy_per_unit_wh,
        "energy_ci95_high_wh": p.energy_ci95_high_wh,
        "grade": p.grade,
        "method": "measured" if p.measured else "estimated",
        "standard_workload": p.standard_workload,
        "current": p.current,
    }


def _reference(r: series.DriftReference) -> dict[str, Any]:
    return {
        "hardware_class": r.hardware_class,
        "label_id": r.label_id,
        "revision": r.revision,
        "created_at": _iso(r.created_at),
        "energy_per_unit_wh": r.energy_per_unit_wh,
        "limit_wh": r.limit_wh,
    }


def _operational(p: series.OperationalPoint) -> dict[str, Any]:
    return {
        "label_id": p.label_id,
        "revision": p.revision,
        "hardware_class": p.hardware_class,
        "period_start": _iso(p.period_start),
        "period_end": _iso(p.period_end),
        "period_s": p.period_s,
        "requests": p.requests,
        "energy_wh": p.energy_wh,
        "energy_per_1k_requests_wh": p.energy_per_1k_requests_wh,
        "energy_per_output_token_j": p.energy_per_output_token_j,
        "utilisation": p.utilisation,
        "idle_share": p.idle_share,
        "co2e_g": p.co2e_g,
        "drift": p.drift,
        "drift_flagged": p.drift_flagged,
    }


def _training_run(r: series.TrainingRun) -> dict[str, Any]:
    return {
        "label_id": r.label_id,
        "revision": r.revision,
        "hardware_class": r.hardware_class,
        "started_at": _iso(r.started_at),
        "ended_at": _iso(r.ended_at),
        "status": r.status,
        "total_energy_wh": r.total_energy_wh,
        "steps": r.steps,
        "samples": r.samples,
        "co2e_g": r.co2e_g,
    }


def model_series_json(found: series.ModelSeries) -> dict[str, Any]:
    """The answer of ``GET /v1/models/{vendor}/{model}/series`` (:class:`ModelSeriesOut`)."""
    return {
        "vendor": found.vendor,
        "model": found.model,
        "drift_tolerance": series.drift_tolerance(),
        "limits": {
            "benchmark": series.MAX_BENCHMARK_POINTS,
            "operational": series.MAX_OPERATIONAL_POINTS,
            "training_runs": series.MAX_TRAINING_RUNS,
        },
        "truncated": found.truncated,
        "groups": [
            {
                "suite": g.suite,
                "task": g.task,
                "phase": g.phase,
                "functional_unit": g.functional_unit,
                "benchmark": [_benchmark(p) for p in g.benchmark],
                "changes": [_track(t) for t in g.tracks],
                "drift_references": [_reference(r) for r in g.references.values()],
                "operational": [_operational(p) for p in g.operational],
                "drifted_periods": sum(1 for p in g.operational if p.drift_flagged),
                "training_runs": [_training_run(r) for r in g.training_runs],
            }
            for g in found.groups
        ],
    }


def vendor_series_json(found: trends.VendorSeries) -> dict[str, Any]:
    """The answer of ``GET /v1/vendors/{vendor}/series`` (:class:`VendorSeriesOut`)."""
    return {
        "vendor": found.vendor,
        "display_name": found.display_name,
        "trend": found.trend,
        "trends": [
            {
                "suite": t.suite,
                "task": t.task,
                "phase": t.phase,
                "models": t.models,
                "median_relative_change": t.median_relative_change,
                "from_month": f"{t.start:%Y-%m}",
                "to_month": f"{t.end:%Y-%m}",
                "sentence": t.sentence,
            }
            for t in found.trends
        ],
        "models": [
            {
                "model": item.model,
                "suite": item.suite,
                "task": item.task,
                "phase": item.phase,
                "hardware_class": item.track.hardware_class,
                "revisions": len(item.track.revisions),
                "series": [_revision(p) for p in item.track.revisions],
                "first": _revision(item.track.first),
                "previous": _revision(item.track.previous),
                "latest": _revision(item.track.latest),
                "since_previous": _change(item.track.since_previous),
                "since_first": _change(item.track.since_first),
            }
            for item in found.tracks
        ],
        "limit": trends.MAX_VENDOR_LABELS,
        "truncated": found.truncated,
    }


# -- the routes ------------------------------------------------------------------------------------

TaskQuery = Annotated[
    str | None,
    Query(
        max_length=64,
        description="only this task of the methodology",
        json_schema_extra={"enum": all_tasks()},
    ),
]


@router.get(
    "/models/{vendor}/{model}/series",
    response_model=ModelSeriesOut,
    responses=problems(404),
)
def model_series(
    vendor: VendorPath,
    model: ModelPath,
    session: SessionDep,
    task: TaskQuery = None,
    phase: Literal["inference", "training"] | None = None,
    suite: SuiteQuery = None,
) -> Response:
    """A model's figures across revisions and time, per suite, task and phase: every benchmark
    label in good standing, the change of each hardware class's latest revision since the
    previous and the first, the production periods (operational labels; the newest 500) with
    their drift against the current benchmark label of their hardware class, and the training
    runs measured."""
    check_suite_filters(suite, None)
    if task is not None and task not in all_tasks():
        raise invalid_query("task", f"unknown task; one of {all_tasks()}")
    found = series.model_series(session, vendor, model, suite=suite, task=task, phase=phase)
    return json_response(model_series_json(found))


@router.get(
    "/vendors/{vendor}/series",
    response_model=VendorSeriesOut,
    responses=problems(404),
)
def vendor_series(vendor: VendorPath, session: SessionDep) -> Response:
    """A vendor's trend: each model's change from its first to its latest revision per suite,
    task, phase and hardware class, and per group one sentence a buyer can quote."""
    owner = vendor_service.get_vendor(session, vendor)
    return json_response(vendor_series_json(trends.vendor_series(session, owner)))
