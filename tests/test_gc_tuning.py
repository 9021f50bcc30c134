"""The collector tuning of a served app (registry/gc_tuning.py): applied once the app has
started, undone at its shutdown, and not applied when the setting is off."""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from registry import gc_tuning
from registry.config import Settings
from registry.main import create_app


def test_started_app_freezes_and_raises_thresholds_then_undoes(
    db: Engine, settings: Settings
) -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    assert before != gc_tuning.THRESHOLDS
    app = create_app(settings.model_copy(update={"gc_tuning": True}), engine=db)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_threshold() == gc_tuning.THRESHOLDS
        # the app's own objects are among the frozen ones
        assert gc.get_freeze_count() > 10_000
        assert all(o is not app for o in gc.get_objects(generation=2))
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_setting_off_leaves_the_collector_alone(db: Engine, settings: Settings) -> None:
    before = gc.get_threshold()
    assert not settings.gc_tuning
    with TestClient(create_app(settings, engine=db)) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0


def test_setting_reads_the_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert Settings().gc_tuning is True
    monkeypatch.setenv("CARBONLABEL_GC_TUNING", "false")
    assert Settings().gc_tuning is False
