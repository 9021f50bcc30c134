"""Browser tests: Playwright's sync API driving Debian's Chromium against a real uvicorn server
on a SQLite file seeded with the demo data.

Chromium comes from the system (``apt-get install chromium``), never from ``playwright install``;
``CARBONLABEL_CHROMIUM`` overrides its path. Screenshots go to ``docs/screenshots/`` (or to
``CARBONLABEL_SCREENSHOTS_DIR``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from registry.db import make_engine, upgrade
from registry.demo import seed
from registry.models import PublicKey, Vendor
from tests.helpers import ADMIN_TOKEN
from tests.server import running_server

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CARBONLABEL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The registry URL the demo labels are signed for: fixed, so that screenshots do not change
# with the test server's port (only the copy-ready snippets show it).
PUBLIC_URL = "https://registry.carbonlabel.example"
SEEDED_AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def pytest_configure(config: pytest.Config) -> None:
    # Also registered in pyproject.toml; here too so that this folder runs on its own.
    config.addinivalue_line("markers", "browser: drives a real headless Chromium (Playwright)")


@pytest.fixture(scope="session")
def screenshots_dir() -> Path:
    path = Path(os.environ.get("CARBONLABEL_SCREENSHOTS_DIR", ROOT / "docs" / "screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server on a migrated SQLite file holding the demo catalogue."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'demo.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        seed(engine, PUBLIC_URL)
        with Session(engine) as session:  # registration dates: fixed, for stable screenshots
            for row in [*session.exec(select(Vendor)), *session.exec(select(PublicKey))]:
                row.created_at = SEEDED_AT
                session.add(row)
            session.commit()
    finally:
        engine.dispose()
    with running_server(url, ADMIN_TOKEN, CARBONLABEL_PUBLIC_URL=PUBLIC_URL) as base:
        yield base


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: `apt-get install chromium` (or set CARBONLABEL_CHROMIUM), "
            "or deselect the browser tests with -m 'not browser'",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Console:
    """Console errors and uncaught exceptions of one page."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on(
            "console",
            lambda msg: (
                self.errors.append(f"console.{msg.type}: {msg.text}")
                if msg.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on(
            "requestfailed",
            lambda request: self.errors.append(f"request failed: {request.url}"),
        )


@pytest.fixture
def context(browser: Any, base_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, base_url=base_url, locale="en-GB")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def phone_context(browser: Any, base_url: str) -> Iterator[Any]:
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        base_url=base_url,
        locale="en-GB",
    )
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def console() -> Console:
    return Console()
