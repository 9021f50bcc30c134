"""A streaming client of the OpenAI chat-completions API, timing each request.

One request is ``POST {endpoint}/v1/chat/completions`` with ``stream: true`` and
``stream_options.include_usage``; the answer is a server-sent event stream of chunks, ending
with ``data: [DONE]`` (OpenAI, vLLM) or with the end of the HTTP body (``transformers serve``).
A request succeeds only when the stream ends cleanly after a finish reason and the usage chunk
(``usage.completion_tokens``: the output tokens, as the server counted them); a broken
connection, a stream that stops before either, an error event or a non-200 status is a typed
error (:class:`ErrorKind`), never a silently short request.

Times are on ``time.monotonic`` (the meters' clock), in seconds: the request's start and end,
and the time to the first content token (the first non-empty ``content`` or reasoning delta; a
request that streams no text at all has its first token at the finish chunk).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import ipaddress
import json
import socket
import time
from collections.abc import AsyncGenerator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import httpx

API = "openai-chat-completions"
CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
VERSION_PATH = "/version"
#: ``owned_by`` of ``/v1/models`` entries that name the engine serving them
KNOWN_ENGINES = {"vllm": "vllm", "sglang": "sglang", "tgi": "tgi"}
_DETAIL_MAX = 200


class ServingError(RuntimeError):
    """The endpoint cannot be benchmarked (unreachable, model not served, bad answer): one line."""


class ErrorKind(enum.StrEnum):
    """Why a request failed."""

    HTTP_STATUS = "http-status"  # the server answered with a status other than 200
    CONNECT = "connect"  # no connection
    TIMEOUT = "timeout"  # past the request timeout
    CUT_OFF = "cut-off"  # the stream broke, or ended before its finish reason
    NO_USAGE = "no-usage"  # a complete stream without usage.completion_tokens
    SERVER_ERROR = "server-error"  # an error event inside the stream
    MALFORMED = "malformed"  # a chunk that is not JSON, or not a chat-completion chunk


@dataclass
class RequestResult:
    """One request, ended (completed or failed)."""

    prompt_index: int
    start_s: float
    end_s: float
    error: ErrorKind | None = None
    detail: str = ""
    #: time of the first content token, on the same clock as start_s (None: none came)
    first_token_s: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    text: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def e2e_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def ttft_s(self) -> float:
        """Seconds from the start to the first content token (to the end when none came)."""
        first = self.first_token_s if self.first_token_s is not None else self.end_s
        return first - self.start_s

    def describe(self) -> str:
        """The error in words: its kind and the server's or transport's detail."""
        if self.error is None:
            return "ok"
        return f"{self.error.value}: {self.detail}" if self.detail else self.error.value


@dataclass
class _Stream:
    """What a stream has told so far."""

    first_token_s: float | None = None
    finished: bool = False
    done: bool = False
    usage: dict[str, Any] | None = None
    parts: list[str] = field(default_factory=list)


def chat_body(model: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    """The request body of the suite's stream: one user message, greedy, capped, streamed."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _DETAIL_MAX else line[: _DETAIL_MAX - 3] + "..."


def _read_event(data: str, state: _Stream, now: float) -> tuple[ErrorKind, str] | None:
    """Fold one ``data:`` payload into ``state``; an error when the payload is one."""
    if data == "[DONE]":
        state.done = True
        return None
    try:
        chunk = json.loads(data)
    except ValueError:
        return ErrorKind.MALFORMED, f"not JSON: {_short(data)}"
    if not isinstance(chunk, dict):
        return ErrorKind.MALFORMED, f"not a chunk: {_short(data)}"
    if chunk.get("error") is not None:
        error = chunk["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        return ErrorKind.SERVER_ERROR, _short(str(message))
    choices = chunk.get("choices") or []
    if not isinstance(choices, list):
        return ErrorKind.MALFORMED, "choices is not a list"
    for choice in choices:
        delta = choice.get("delta") or {} if isinstance(choice, dict) else {}
        text = delta.get("content") if isinstance(delta, dict) else None
        reasoning = (
            delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(delta, dict)
            else None
        )
        if (text or reasoning) and state.first_token_s is None:
            state.first_token_s = now
        if isinstance(text, str) and text:
            state.parts.append(text)
        if isinstance(choice, dict) and choice.get("finish_reason") is not None:
            state.finished = True
            if state.first_token_s is None:
                state.first_token_s = now
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        state.usage = usage
    return None


def _outcome(state: _Stream) -> tuple[ErrorKind, str] | None:
    """A stream that ended cleanly is complete with a finish reason and the usage; ``[DONE]``
    ends it early where the server sends it (``transformers serve`` ends the HTTP body instead).
    A connection that breaks is a cut-off before this is asked."""
    if not state.finished:
        return ErrorKind.CUT_OFF, "the stream ended without a finish_reason"
    usage = state.usage or {}
    tokens = usage.get("completion_tokens")
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
        return ErrorKind.NO_USAGE, "no usage.completion_tokens in the stream"
    return None


async def send_chat(
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    prompt_index: int,
    *,
    timeout_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> RequestResult:
    """Send one streamed chat request and time it; failures come back as a typed error."""
    result = RequestResult(prompt_index, clock(), 0.0)
    state = _Stream()
    failure: tuple[ErrorKind, str] | None = None
    try:
        async with asyncio.timeout(timeout_s), client.stream("POST", url, json=body) as response:
            if response.status_code != 200:
                raw = await response.aread()
                text = raw.decode("utf-8", "replace")
                failure = ErrorKind.HTTP_STATUS, f"HTTP {response.status_code} {_short(text)}"
            else:
                # an async generator: closed here, not by the loop's finaliser after it stops
                stream = cast("AsyncGenerator[str, None]", response.aiter_lines())
                async with contextlib.aclosing(stream) as lines:
                    async for line in lines:
                        if not line.startswith("data:"):
                            continue  # blank separators, comments, event names
                        failure = _read_event(line[5:].strip(), state, clock())
                        if failure or state.done:
                            break
    except TimeoutError:
        failure = ErrorKind.TIMEOUT, f"no complete answer within {timeout_s:g} s"
    except httpx.TimeoutException as exc:
        failure = ErrorKind.TIMEOUT, f"{type(exc).__name__}"
    except httpx.ConnectError as exc:
        failure = ErrorKind.CONNECT, _short(str(exc) or type(exc).__name__)
    except httpx.HTTPError as exc:  # the connection broke mid-stream
        failure = ErrorKind.CUT_OFF, _short(f"{type(exc).__name__}: {exc}")
    result.end_s = clock()
    if failure is None:
        failure = _outcome(state)
    result.first_token_s = state.first_token_s
    result.text = "".join(state.parts)
    if failure is not None:
        result.error, result.detail = failure
        return result
    usage = state.usage or {}
    result.output_tokens = int(usage["completion_tokens"])
    prompt_tokens = usage.get("prompt_tokens")
    result.input_tokens = int(prompt_tokens) if isinstance(prompt_tokens, int) else 0
    return result


# -- the server: what it serves and which engine it is ------------------------------------------


@dataclass(frozen=True)
class ServerInfo:
    """What ``/v1/models`` and ``/version`` said."""

    models: list[str]
    #: ``owned_by`` of the served model's entry
    owned_by: str | None
    #: ``/version``'s ``version`` (vLLM answers it), None when it does not answer
    version: str | None

    @property
    def engine_name(self) -> str | None:
        """The engine, when the server names it (``owned_by`` of a known engine)."""
        return KNOWN_ENGINES.get((self.owned_by or "").lower())


def base_url(endpoint: str) -> str:
    """The server's base URL: ``http(s)://host[:port][/prefix]`` without a trailing ``/v1``."""
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServingError(f"--endpoint must be an http(s) URL, got {endpoint!r}")
    if parts.query or parts.fragment:
        raise ServingError(f"--endpoint takes no query or fragment, got {endpoint!r}")
    path = parts.path.rstrip("/").removesuffix("/v1")
    return f"{parts.scheme}://{parts.netloc}{path}"


def endpoint_host(endpoint: str) -> str:
    """``host:port`` of the endpoint (no scheme, user, path), as the label records it."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}"


def is_this_machine(endpoint: str) -> bool:
    """Whether the endpoint's host is this machine: loopback, or an address it can bind."""
    host = urlsplit(endpoint).hostname or ""
    if host == "localhost":
        return True
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    for family, _type, _proto, _name, address in infos:
        ip = str(address[0])
        if ipaddress.ip_address(ip.split("%")[0]).is_loopback:
            return True
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((ip, 0))
            except OSError:
                continue
            return True
    return False


def _get_json(client: httpx.Client, url: str) -> tuple[int, Any]:
    response = client.get(url)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None


def probe_server(
    base: str, served_model: str, *, headers: dict[str, str] | None = None, timeout_s: float = 10.0
) -> ServerInfo:
    """Ask the server what it serves (``/v1/models``, which must list ``served_model``) and its
    version (``/version``, optional). Raises ServingError with one line."""
    try:
        with httpx.Client(timeout=timeout_s, headers=headers or {}) as client:
            status, models = _get_json(client, base + MODELS_PATH)
            if status != 200:
                hint = " (an API key: --endpoint-api-key)" if status in (401, 403) else ""
                raise ServingError(f"{base}{MODELS_PATH} answered HTTP {status}{hint}")
            entries = models.get("data") if isinstance(models, dict) else None
            if not isinstance(entries, list):
                raise ServingError(
                    f"{base}{MODELS_PATH} did not answer an OpenAI model list: "
                    "is this an OpenAI-compatible server?"
                )
            ids = [str(e.get("id")) for e in entries if isinstance(e, dict) and e.get("id")]
            if served_model not in ids:
                served = ", ".join(ids) or "nothing"
                raise ServingError(
                    f"the server does not serve {served_model!r}; it serves: {served}"
                )
            entry = next(e for e in entries if isinstance(e, dict) and e.get("id") == served_model)
            owned_by = entry.get("owned_by")
            status, answer = _get_json(client, base + VERSION_PATH)
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        raise ServingError(f"cannot reach {base}: {_short(reason)}") from None
    version = None
    if status == 200 and isinstance(answer, dict) and isinstance(answer.get("version"), str):
        version = answer["version"][:64]
    return ServerInfo(ids, str(owned_by) if owned_by else None, version)


T = TypeVar("T")


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end on a fresh event loop in a thread of its own, so it works
    whether or not the calling thread already runs a loop (a notebook, a test session's)."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="carbonlabel-serving") as pool:
        return pool.submit(asyncio.run, coroutine).result()
