"""How a page prints a value (``registry.pages.printing``): the same characters as Jinja's
``escape(finalize(value))``, as a plain string, for text, markup, numbers and hostile input;
an undefined value still raises; unescaped output is left to Jinja."""

from __future__ import annotations

import random

import jinja2
import markupsafe
import pytest

from registry.pages.printing import (
    PagesEnvironment,
    c_escape,
    escape_text,
    make_printer,
    printable,
    printed_html,
)


class _Html:
    def __html__(self) -> str:
        return "<i>safe</i>"


def _expected(value: object) -> str:
    return str(markupsafe.escape(printable(value)))


def test_printed_values_are_what_jinja_printed() -> None:
    alphabet = "ab <>&'\"\x00\x07\x1b\x7f\x85\x9f\u00e9\u2028\u202e\U0001f600\t\n\r"
    rng = random.Random(7)
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(12))) for _ in range(5000)]
    values: list[object] = [
        *texts,
        0,
        -1.5,
        float("nan"),
        None,
        True,
        markupsafe.Markup("<b>x</b>"),
        _Html(),
    ]
    # the reference, and the pages' printer with MarkupSafe's C loop (used where it is present,
    # as here) and with the reference's
    printers = [printed_html, make_printer(c_escape()), make_printer(escape_text)]
    assert c_escape() is not escape_text
    assert PagesEnvironment().printed_html("<&") == "&lt;&amp;"
    for value in values:
        for printer in printers:
            printed = printer(value)
            assert printed == _expected(value), repr(value)
            assert type(printed) is str
    assert escape_text("<a href='x'>&\"</a>") == str(markupsafe.escape("<a href='x'>&\"</a>"))
    assert printed_html("a\x00<b>\x1b") == "a&lt;b&gt;"


def test_templates_print_through_it_and_keep_jinja_elsewhere() -> None:
    source = (
        "{{ text }}|{{ mark }}|{{ n }}|{{ 'con<st' }}|{% autoescape false %}{{ text }}"
        "{% endautoescape %}|{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(text) }}"
    )
    context = {"text": "a<b\x07", "mark": markupsafe.Markup("<em>m</em>"), "n": 3}
    fast = PagesEnvironment(autoescape=True, finalize=printable, undefined=jinja2.StrictUndefined)
    plain = jinja2.Environment(
        autoescape=True, finalize=printable, undefined=jinja2.StrictUndefined
    )
    expected = plain.from_string(source).render(context)
    assert fast.from_string(source).render(context) == expected
    assert expected == "a&lt;b|<em>m</em>|3|con&lt;st|a<b|<a&lt;b>"
    assert "environment.printed_html(" in fast.compile(source, raw=True)
    with pytest.raises(jinja2.UndefinedError):
        fast.from_string("{{ missing }}").render()


def test_attribute_lookups_are_jinjas() -> None:
    """``PagesEnvironment.getattr`` looks a plain dict's keys up first, and otherwise gives what
    Jinja gives: ``dict`` attributes win over keys of the same name, objects' attributes and
    items, an undefined (raising) value for neither."""

    class Both(dict[str, str]):
        grade = "attribute"

    source = (
        "{{ d.grade }}|{{ d.items is defined }}|{{ d['items'] }}|{{ o.grade }}|{{ s.grade }}"
        "|{{ t.real }}"
    )
    context = {"d": {"grade": "B", "items": "x"}, "o": Both(grade="item"), "s": "str", "t": 3}
    strict = {"autoescape": True, "finalize": printable, "undefined": jinja2.StrictUndefined}
    with pytest.raises(jinja2.UndefinedError):
        jinja2.Environment(**strict).from_string(source).render(context)
    ours = PagesEnvironment(**strict)
    plain = jinja2.Environment(**strict)
    source = source.replace("|{{ s.grade }}", "")
    assert ours.from_string(source).render(context) == plain.from_string(source).render(context)
    assert ours.from_string(source).render(context) == "B|True|x|attribute|3"
    for env in (ours, plain):
        with pytest.raises(jinja2.UndefinedError):
            env.from_string("{{ d.missing }}").render(context)
        with pytest.raises(jinja2.UndefinedError):
            env.from_string("{{ s.grade }}").render(context)
