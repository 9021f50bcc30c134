"""What every page shares: the template environment, formatting filters, rendering with the page
headers, the not-found page and the links between pages.

The only module that reads ``web/``: Jinja2 templates from ``web/templates`` (autoescaped; every
text from the database goes through the template engine, never into markup by hand).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from registry.pages.inline import InlineMacros
from registry.pages.printing import PagesEnvironment, printable
from registry.services.peers import MIN_PEERS
from schemas import suites
from schemas.contract import load_methodology

router = APIRouter(include_in_schema=False)
"""Every page route: each page module adds its routes here, in the order the package imports
them."""

WEB_DIR = Path(__file__).resolve().parent.parent.parent / "web"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


_NUMBER_SPECS = tuple(f",.{decimals}f" for decimals in range(40))
"""``format`` specs by decimals (a page formats hundreds of numbers: a spec built per call cost
a third of the call)."""


def format_number(value: float | None, digits: int = 3) -> str:
    """``digits`` significant digits, thousands separated; an em dash for no value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    if decimals < len(_NUMBER_SPECS):
        return format(value, _NUMBER_SPECS[decimals])
    return f"{value:,.{decimals}f}"


def format_tick(value: float) -> str:
    """An axis tick: as short as it can be (``20``, ``2.5``, ``0.125``)."""
    return f"{value:,.6g}"


def format_date(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value[:10]
    return value.date().isoformat()


def format_count(value: float | None) -> str:
    """A whole number with thousands separated (``21,728``)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{round(value):,}"


def format_parameters(count: int) -> str:
    """``8000000000`` -> ``8B``; ``1200000000`` -> ``1.2B``; ``110000000`` -> ``110M``."""
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if count >= size:
            return f"{count / size:.3g}{suffix}"
    return str(count)


def format_percent(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}%"


@functools.cache
def _environment() -> jinja2.Environment:
    return make_environment()


def make_environment(*, inline_macros: bool = True, printing: bool = True) -> jinja2.Environment:
    """The pages' template environment (``inline_macros``: the row macros run inline,
    ``pages.inline``; ``printing``: values printed by ``pages.printing``, else by Jinja's own
    code; the same bytes either way)."""
    env = (PagesEnvironment if printing else jinja2.Environment)(
        loader=jinja2.FileSystemLoader(WEB_DIR / "templates"),
        autoescape=True,
        finalize=printable,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[InlineMacros] if inline_macros else [],
        # The templates are part of the build: loaded once per process, never stat()ed again
        # (Jinja's default checks each template's and each import's mtime at every render).
        # A template edited under a running server would also disagree with its ETags, whose
        # build identity hashes the templates once per process (http_cache.code_digest).
        auto_reload=False,
    )
    env.filters["num"] = format_number
    env.filters["date"] = format_date
    env.filters["pct"] = format_percent
    env.filters["count"] = format_count
    env.filters["params"] = format_parameters
    env.filters["path"] = lambda value: quote(str(value), safe="")
    env.globals["min_peers"] = MIN_PEERS  # the macros read it too (imported without context)
    return env


def render(
    request: Request, template: str, context: Mapping[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """Render a page with the headers every page carries."""
    body = (
        _environment()
        .get_template(template)
        .render(
            {
                "request_path": request.url.path,
                "tasks": all_tasks(),
                **context,
            }
        )
    )
    return HTMLResponse(body, status_code=status_code, headers=PAGE_HEADERS)


def not_found(request: Request, message: str) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"title": "Not found", "status": 404, "message": message},
        status_code=404,
    )


def query_string(**params: Any) -> str:
    """``?a=1&b=2`` from the parameters that have a value."""
    kept = {k: v for k, v in params.items() if v not in (None, "", [])}
    return "?" + urlencode(kept, doseq=True) if kept else ""


def model_path(vendor: str, model: str) -> str:
    return f"/models/{quote(vendor, safe='')}/{quote(model, safe='')}"


def vendor_path(vendor: str) -> str:
    return f"/vendors/{quote(vendor, safe='')}"


def unit_name(phase: str) -> str:
    """Suite 1's unit of energy for a phase (see ``unit_name_for`` for any functional unit)."""
    return "Wh per 1,000 inferences" if phase == "inference" else "Wh per training step"


_UNIT_NAMES = {
    "1k-inferences": "Wh per 1,000 inferences",
    "1k-requests": "Wh per 1,000 requests",
    "step": "Wh per training step",
}


def unit_name_for(functional_unit: str) -> str:
    """``1k-requests`` -> ``Wh per 1,000 requests``; an unknown unit as ``Wh per <unit>``."""
    return _UNIT_NAMES.get(functional_unit, f"Wh per {functional_unit}")


def unit_short_for(functional_unit: str) -> str:
    """The unit as tables and charts show it: :func:`unit_name_for`'s words."""
    return unit_name_for(functional_unit)


def functional_unit_of(suite: str, task: str, phase: str) -> str:
    """The functional unit of a suite's task and phase (``1k-requests`` for suite-2 text
    generation inference)."""
    try:
        return suites.functional_unit_name(suite, task, phase)
    except (suites.UnknownSuiteError, KeyError):
        return "1k-inferences" if phase == "inference" else "step"


def all_tasks() -> list[str]:
    """Every task of every suite: suite 1's (the methodology's) first, then those only a later
    suite offers (``chat-serving``, suite 2), in suite order."""
    names = list(load_methodology()["tasks"])
    for version in suites.suite_versions():
        names += [t for t in suites.suite_spec(version)["tasks"] if t not in names]
    return names


def suites_offering(task: str) -> list[str]:
    """The suite versions that offer a task, oldest first (none for an unknown task)."""
    return [v for v in suites.suite_versions() if task in suites.suite_spec(v)["tasks"]]


def size_class_options(suite: str, task: str) -> list[tuple[str, str]]:
    """(name, display name) of the size classes a suite grades this task in; none for others."""
    try:
        if not suites.uses_size_classes(suite, task):
            return []
    except suites.UnknownSuiteError:
        return []
    return [(str(c["name"]), str(c["label"])) for c in suites.suite_spec(suite)["size_classes"]]


def quality_metric_of(suite: str, task: str) -> str | None:
    """The metric a suite measures a task's quality with; None where it measures none (suite 1,
    image classification)."""
    if suite == suites.SUITE_1:
        return None
    spec = suites.suite_spec(suite)["tasks"].get(task) or {}
    quality = spec.get("quality")
    return str(quality["metric"]) if isinstance(quality, dict) else None
