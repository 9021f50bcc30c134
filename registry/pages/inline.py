"""Row macros written once and run inline: a Jinja extension that puts a macro's body in place
of its calls when a template is compiled.

The table rows of the leaderboard, vendor and compare pages show a label through the macros of
``macros.html`` (``{{ m.grade(row) }}``, ``{{ m.energy(row) }}``, ...), seven calls a row. A
Jinja macro call costs more than its body (argument handling, a function call, the body joined
and wrapped as markup, then escaped again by the caller): at 50 rows the calls were 45 % of the
leaderboard's render (3.5 ms, against 1.9 ms with the bodies written in place). This extension
rewrites the token stream of a template that imports ``macros.html``: a print statement that is
exactly ``{{ ALIAS.NAME(ARG) }}`` becomes ``{% with PARAM = ARG %}BODY{% endwith %}``, BODY
being the macro's tokens as lexed in ``macros.html`` (whitespace control applied). The output
is the same bytes (``tests/test_pages_inline.py`` renders every page both ways).

Only macros that can be inlined safely are: one parameter, no ``caller``, and a body that
assigns nothing, defines or imports nothing and calls no other macro. Others, and calls with
other arguments or filters, stay calls. Inlined bodies are read when the environment first
compiles a template; a running process does not see an edit of ``macros.html`` in the templates
it has already compiled (pages are built once per release).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cached_property
from typing import NamedTuple

from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream

MACROS_TEMPLATE = "macros.html"
_FORBIDDEN_IN_BODY = {"set", "macro", "call", "import", "from", "include", "extends", "block"}


class _Macro(NamedTuple):
    parameter: str
    defaults: tuple[tuple[str, Token], ...]
    """The other parameters and their default values (one token each)."""
    body: tuple[Token, ...]


class InlineMacros(Extension):
    """See the module: the one-parameter macros of ``macros.html`` inlined at their calls."""

    def filter_stream(self, stream: TokenStream) -> Iterable[Token]:
        if stream.name == MACROS_TEMPLATE:
            return stream
        tokens = list(stream)
        alias = _import_alias(tokens)
        if alias is None:
            return tokens
        return list(self._inlined(tokens, alias))

    def _inlined(self, tokens: list[Token], alias: str) -> Iterator[Token]:
        index = 0
        while index < len(tokens):
            call = _call_at(tokens, index, alias)
            macro = self._macros.get(call[0]) if call else None
            if call is None or macro is None:
                yield tokens[index]
                index += 1
                continue
            _, argument = call
            line = tokens[index].lineno
            yield from _tokens(line, "block_begin {%", "name with", f"name {macro.parameter}")
            yield from _tokens(line, "assign =", f"name {argument}")
            for name, value in macro.defaults:
                yield from _tokens(line, "comma ,", f"name {name}", "assign =")
                yield value._replace(lineno=line)
            yield from _tokens(line, "block_end %}")
            yield from (token._replace(lineno=line) for token in macro.body)
            yield from _tokens(line, "block_begin {%", "name endwith", "block_end %}")
            index += 8

    @cached_property
    def _macros(self) -> dict[str, _Macro]:
        """The inlinable macros of ``macros.html`` by name."""
        environment = self.environment
        assert environment.loader is not None
        source, filename, _ = environment.loader.get_source(environment, MACROS_TEMPLATE)
        tokens = list(environment.lexer.tokenize(source, MACROS_TEMPLATE, filename))
        found: dict[str, _Macro] = {}
        index = 0
        while index < len(tokens):
            head = [(t.type, t.value) for t in tokens[index : index + 5]]
            if head[:2] != [("block_begin", "{%"), ("name", "macro")] or len(head) < 5:
                index += 1
                continue
            end = _end_of_macro(tokens, index)
            opened = tokens.index(next(t for t in tokens[index:] if t.type == "block_end"), index)
            signature = _signature(tokens[index + 3 : opened])
            if head[2][0] == "name" and signature is not None:
                body = tuple(tokens[opened + 1 : end])
                if _inlinable(body):
                    found[head[2][1]] = _Macro(signature[0], signature[1], body)
            index = end + 1
        return found


def _signature(tokens: list[Token]) -> tuple[str, tuple[tuple[str, Token], ...]] | None:
    """``(row, full=false)``: the first parameter and the others' one-token defaults; None for
    any other shape."""
    kinds = [t.type for t in tokens]
    if len(kinds) < 3 or kinds[:2] != ["lparen", "name"] or kinds[-1] != "rparen":
        return None
    defaults: list[tuple[str, Token]] = []
    rest = tokens[2:-1]
    while rest:
        parts = [t.type for t in rest[:4]]
        if parts[:3] != ["comma", "name", "assign"] or len(rest) < 4:
            return None
        if rest[3].type not in ("name", "integer", "float", "string"):
            return None
        defaults.append((rest[1].value, rest[3]))
        rest = rest[4:]
    return tokens[1].value, tuple(defaults)


def _tokens(line: int, *specs: str) -> Iterator[Token]:
    for spec in specs:
        kind, _, value = spec.partition(" ")
        yield Token(line, kind, value)


def _import_alias(tokens: list[Token]) -> str | None:
    """The name ``{% import "macros.html" as NAME %}`` gives, if the template has it."""
    for index in range(len(tokens) - 5):
        window = [(t.type, t.value) for t in tokens[index : index + 6]]
        if (
            window[:4]
            == [
                ("block_begin", "{%"),
                ("name", "import"),
                ("string", MACROS_TEMPLATE),
                ("name", "as"),
            ]
            and window[4][0] == "name"
            and window[5][0] == "block_end"
        ):
            return window[4][1]
    return None


def _call_at(tokens: list[Token], index: int, alias: str) -> tuple[str, str] | None:
    """(macro, argument) when the tokens from ``index`` are ``{{ alias.NAME(ARG) }}``."""
    window = [(t.type, t.value) for t in tokens[index : index + 8]]
    if len(window) < 8 or window[0][0] != "variable_begin" or window[7][0] != "variable_end":
        return None
    kinds = [kind for kind, _ in window[1:7]]
    if kinds != ["name", "dot", "name", "lparen", "name", "rparen"] or window[1][1] != alias:
        return None
    return window[3][1], window[5][1]


def _end_of_macro(tokens: list[Token], start: int) -> int:
    """The index of the ``{%`` that opens the ``endmacro`` of the macro opened at ``start``."""
    for index in range(start + 1, len(tokens) - 1):
        if tokens[index].type == "block_begin" and tokens[index + 1].value == "endmacro":
            return index
    raise ValueError(f"{MACROS_TEMPLATE}: a macro without endmacro")


def _inlinable(body: tuple[Token, ...]) -> bool:
    """No assignment, definition or import in the body, no ``caller``, no other macro."""
    for index, token in enumerate(body):
        following = body[index + 1].value if index + 1 < len(body) else None
        before = [t.type for t in body[max(0, index - 2) : index]]
        if (
            (token.type == "name" and token.value == "caller")
            or (token.type == "block_begin" and following in _FORBIDDEN_IN_BODY)
            # a call of a bare name (another macro, a global function); methods
            # (``row.created_at.isoformat()``) and filters (``|format(...)``) are fine
            or (
                token.type == "lparen"
                and before[-1:] == ["name"]
                and before[:1] not in (["dot"], ["pipe"])
            )
        ):
            return False
    return True
