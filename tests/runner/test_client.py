"""The registry client: retries with backoff on network errors and 5xx, never on 4xx."""

from __future__ import annotations

import httpx
import pytest

from bench_runner.client import RegistryClient, RegistryError


def client_with(responses: list[object]) -> tuple[RegistryClient, list[float], list[httpx.Request]]:
    sleeps: list[float] = []
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        assert isinstance(item, httpx.Response)
        return item

    client = RegistryClient(
        "http://registry.test",
        "clt_token",
        transport=httpx.MockTransport(handler),
        retries=3,
        backoff_s=0.5,
        sleep=sleeps.append,
    )
    return client, sleeps, seen


CREATED = httpx.Response(
    201, json={"label_id": "x", "links": {"self": "http://registry.test/v1/labels/x"}}
)


def test_retries_network_errors_and_5xx_with_backoff() -> None:
    client, sleeps, seen = client_with(
        [httpx.ConnectError("refused"), httpx.Response(503, json={"detail": "busy"}), CREATED]
    )
    status, body = client.submit(b"{}")
    assert status == 201
    assert body["label_id"] == "x"
    assert sleeps == [0.5, 1.0]
    assert len(seen) == 3
    assert seen[0].headers["authorization"] == "Bearer clt_token"


def test_gives_up_after_the_retries() -> None:
    client, sleeps, seen = client_with([httpx.ConnectError("refused")] * 4)
    with pytest.raises(RegistryError, match="cannot reach") as info:
        client.submit(b"{}")
    assert info.value.status is None
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(seen) == 4


def test_no_retry_on_4xx_and_the_problem_is_reported() -> None:
    problem = {
        "type": "urn:carbonlabel:problem:schema-violation",
        "status": 422,
        "detail": "bad",
        "errors": [{"pointer": "/predicate/task", "message": "nope"}],
    }
    client, sleeps, seen = client_with([httpx.Response(422, json=problem)])
    with pytest.raises(RegistryError) as info:
        client.submit(b"{}")
    assert info.value.status == 422
    assert "schema-violation" in str(info.value)
    assert "/predicate/task" in str(info.value)
    assert sleeps == []
    assert len(seen) == 1


def test_a_5xx_retry_after_is_waited_at_least() -> None:
    unavailable = httpx.Response(
        503, headers={"Retry-After": "2"}, json={"type": "urn:carbonlabel:problem:unavailable"}
    )
    client, sleeps, seen = client_with([unavailable, unavailable, unavailable, CREATED])
    status, _ = client.submit(b"{}")
    assert status == 201
    assert sleeps == [2.0, 2.0, 2.0]  # backoff 0.5, 1.0, 2.0, each raised to the server's 2 s
    assert len(seen) == 4
