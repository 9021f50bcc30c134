"""Secrets have no defaults: the server refuses to start without a real admin token."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from registry.config import Settings, SettingsError
from registry.main import create_app


def test_no_admin_token_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARBONLABEL_ADMIN_TOKEN", raising=False)
    settings = Settings(database_url="sqlite://")
    assert settings.admin_token is None
    with pytest.raises(SettingsError, match="CARBONLABEL_ADMIN_TOKEN"):
        settings.check_runnable()
    with pytest.raises(SettingsError), TestClient(create_app(settings)):
        pass


@pytest.mark.parametrize("token", ["changeme", "short", "x" * 10])
def test_weak_admin_token_refuses(token: str) -> None:
    with pytest.raises(SettingsError):
        Settings(database_url="sqlite://", admin_token=token).check_runnable()


def test_demo_mode_needs_no_admin_token() -> None:
    Settings(database_url="sqlite://", demo=True).check_runnable()


def test_postgres_urls_use_psycopg3() -> None:
    assert (
        Settings(database_url="postgresql://u@h/d")
        .resolved_database_url()
        .startswith("postgresql+psycopg://")
    )
    assert Settings(database_url="").resolved_database_url().startswith("sqlite:///")


def test_admin_token_is_not_in_repr() -> None:
    settings = Settings(database_url="sqlite://", admin_token="a-very-secret-admin-token-123456")
    assert "a-very-secret" not in repr(settings)
