"""Row macros run inline (``registry.pages.inline``) and values printed by
``registry.pages.printing``: the same bytes as Jinja's macro calls and printing, on every page of
the demo registry; and templates made to probe what may and may not be inlined."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest
from fastapi.testclient import TestClient

from registry.config import Settings
from registry.db import make_engine, upgrade
from registry.demo import seed
from registry.main import create_app
from registry.pages import common
from registry.pages.inline import InlineMacros
from tests.helpers import ADMIN_TOKEN, AUDIENCE, LOG_KEY_B64

MACROS = """\
{% macro plain(row) -%}
<b>{{ row.name }}</b>{% if row.n > 1 %} x{{ row.n }}{% endif %}
{%- endmacro %}

{% macro loop_inside(row, full=false) -%}
{% for x in row.things[:2] %}<i>{{ x }}</i>{% if full %}+{% endif %}{% endfor %}
{%- endmacro %}

{% macro sets(row) -%}
{% set shown = row.name|upper %}{{ shown }}
{%- endmacro %}

{% macro calls_another(row) -%}
[{{ plain(row) }}]
{%- endmacro %}
"""
PAGE = """\
{% import "macros.html" as m %}
{% for row in rows %}
<p>{{ loop.index }} {{ m.plain(row) }} {{ m.loop_inside(row) }} {{ loop.index }}</p>
<p>{{ m.loop_inside(row, full=true) }} {{ m.sets(row) }} {{ m.calls_another(row) }}</p>
{% endfor %}
{% for other in rows %}{{ m.plain(other) }}|{{ m.plain(other)|length }}{% endfor %}
"""


def _environment(inline: bool) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.DictLoader({"macros.html": MACROS, "page.html": PAGE}),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[InlineMacros] if inline else [],
    )


def test_what_is_inlined_and_what_stays_a_call() -> None:
    rows = [
        {"name": "a<b", "n": 1, "things": ["x", "y&z", "w"]},
        {"name": "c", "n": 3, "things": []},
    ]
    inline, calls = _environment(True), _environment(False)
    expected = calls.get_template("page.html").render(rows=rows)
    assert inline.get_template("page.html").render(rows=rows) == expected
    assert "a&lt;b" in expected
    assert "y&amp;z" in expected
    extension = next(iter(inline.extensions.values()))
    assert isinstance(extension, InlineMacros)
    # one parameter, or more with defaults: inlined; an assignment or another macro: not
    assert sorted(extension._macros) == ["loop_inside", "plain"]
    code = inline.compile(PAGE, "page.html", raw=True)
    # left as calls: loop_inside with its second argument, sets, calls_another and a filtered
    # call (plain(other)|length); the rest were inlined
    called = re.findall(r"'(plain|loop_inside|sets|calls_another)'", code)
    assert sorted(called) == ["calls_another", "loop_inside", "plain", "sets"]
    assert "<b>" in code  # the body of plain, written in the page's own code


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('inline')) / 'demo.db'}"
    upgrade(url)
    engine = make_engine(url)
    seed(engine, AUDIENCE)
    settings = Settings(
        database_url=url,
        admin_token=ADMIN_TOKEN,
        log_signing_key=LOG_KEY_B64,
        public_url=AUDIENCE,
        page_cache_max_bytes=1,
    )
    with TestClient(create_app(settings, engine=engine)) as client:
        yield client
    engine.dispose()


def _pages(client: TestClient) -> list[str]:
    """Every leaderboard the leaderboards link to (tasks, phases, sort orders), and every
    vendor, model and compare page they link to."""

    def links(page: str, pattern: str) -> set[str]:
        return {html.unescape(link) for link in re.findall(pattern, client.get(page).text)}

    boards = {"/"} | {"/" + link for link in links("/", r'href="(\?task=[^"]+)"')}
    for board in sorted(boards):
        boards |= {"/" + link for link in links(board, r'href="(\?task=[^"]+)"')}
    found = set(boards)
    for board in sorted(boards):
        found |= links(board, r'href="(/(?:vendors|models|compare)[^"#]*)"')
    return sorted(found)


def test_every_page_of_the_demo_is_the_same_bytes(
    demo: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = _pages(demo)
    assert sum(p.startswith("/models/") for p in pages) >= 10
    assert any(p.startswith("/vendors/") for p in pages)
    assert any(p.startswith("/compare") for p in pages)
    inlined = {}
    for page in pages:
        response = demo.get(page)
        assert response.status_code == 200, page
        inlined[page] = response.content
    monkeypatch.setattr(
        common,
        "_environment",
        lambda: common.make_environment(inline_macros=False, printing=False),
    )
    for page in pages:
        assert demo.get(page).content == inlined[page], page
