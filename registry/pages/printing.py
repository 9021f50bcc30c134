"""How a page template prints a value: ``{{ value }}`` drops the control characters that HTML
cannot carry, then escapes the text, in one call that returns a plain string.

Jinja compiles ``{{ value }}`` in an autoescaped template to ``escape(finalize(value))``:
MarkupSafe's ``escape`` returns a :class:`markupsafe.Markup`, whose ``__new__`` runs in Python,
and the leaderboard prints about 3,000 values (that object alone was 13 % of its CPU). A printed
value only ever joins the page's text, so it need not be a ``Markup``: :class:`PagesEnvironment`
compiles it to ``environment.printed_html(value)``, which gives the same characters as a plain
string. Where a template turns autoescaping off, Jinja's own code is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jinja2
from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import Expr

_DICT_ATTRIBUTES = frozenset(dir(dict))
"""Names that ``getattr`` finds on every dict (``items``, ``get``, ...): Jinja prefers them to
a key of that name, and so does :meth:`PagesEnvironment.getattr`."""
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def printable(value: Any) -> Any:
    """Every ``{{ value }}`` of a template passes here before it is escaped: control characters
    (which HTML cannot carry) are dropped from text; markup and other values pass as they are."""
    if isinstance(value, str) and not hasattr(value, "__html__"):
        # a printable string holds none of them (the regular expression is ten times slower)
        return value if value.isprintable() else _CONTROL_CHARACTERS.sub("", value)
    return value


def escape_text(text: str) -> str:
    """HTML-escaped text, character for character as :func:`markupsafe.escape` (``&<>'"``)."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("'", "&#39;")
        .replace('"', "&#34;")
    )


def c_escape() -> Callable[[str], str]:
    """MarkupSafe's own escaping loop, in C, returning a plain string (what its ``escape`` wraps
    in a ``Markup``): a tenth of :func:`escape_text`'s time, and a model page prints some 2,700
    values. It is not MarkupSafe's public API, so where it is missing or differs (another
    MarkupSafe, no compiled speedups) this gives :func:`escape_text`, the same characters
    (``tests/test_pages_printing.py`` compares both with ``markupsafe.escape``)."""
    try:
        from markupsafe._speedups import _escape_inner
    except ImportError:
        return escape_text
    probe = "<&'\"x\u00e9"
    return _escape_inner if _escape_inner(probe) == escape_text(probe) else escape_text


def make_printer(escape: Callable[[str], str]) -> Callable[[Any], str]:
    """A printer of values as :func:`printed_html`, with ``escape`` as its last step."""

    def printed_html(value: Any) -> str:
        """``str(escape(printable(value)))`` without making a ``Markup``: markup (anything with
        ``__html__``) as it is, anything else as text without control characters, escaped. An
        undefined value raises, as printing it would."""
        if type(value) is not str:
            html = getattr(value, "__html__", None)
            if html is not None:
                return str(html())
            value = str(value)
        if not value.isprintable():
            value = _CONTROL_CHARACTERS.sub("", value)
        return escape(value)

    return printed_html


printed_html = make_printer(escape_text)
"""The reference printer, escaping with :func:`escape_text` (:class:`PagesEnvironment` prints
with :func:`c_escape`'s choice, the same characters)."""


class PrintingCodeGenerator(CodeGenerator):
    """Compiles each printed expression of an autoescaped template to one call of
    ``environment.printed_html``."""

    def _output_child_pre(self, node: Expr, frame: Frame, finalize: Any) -> None:
        if frame.eval_ctx.autoescape and not frame.eval_ctx.volatile:
            self.write("environment.printed_html(")
        else:
            super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node: Expr, frame: Frame, finalize: Any) -> None:
        if frame.eval_ctx.autoescape and not frame.eval_ctx.volatile:
            self.write(")")
        else:
            super()._output_child_post(node, frame, finalize)


class PagesEnvironment(jinja2.Environment):
    """A Jinja environment whose templates print values by :func:`printed_html` (with
    :func:`printable` as its ``finalize`` for constants and unescaped output)."""

    code_generator_class = PrintingCodeGenerator

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # what the compiled templates call for each printed value (built here, not at import)
        self.printed_html = make_printer(c_escape())

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``obj.attribute`` in a template, as Jinja's (the attribute first, then the item), with
        a plain dict's keys looked up first when no attribute of ``dict`` has that name: the
        same value, without the ``AttributeError`` that Jinja raises and catches for every
        ``view.key`` of the dict views the pages render (8 % of the model page's CPU)."""
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        # then Jinja's own steps (written out: a call to super() would cost every lookup)
        try:
            return getattr(obj, attribute)
        except AttributeError:
            pass
        try:
            return obj[attribute]
        except (TypeError, LookupError, AttributeError):
            return self.undefined(obj=obj, name=attribute)
