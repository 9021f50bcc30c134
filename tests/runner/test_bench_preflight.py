"""``bench --submit`` checks the token, its vendor, the key and the audience with the registry
before it measures anything (bench_runner/preflight.py; issue 12, item 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from bench_runner.client import RegistryClient
from bench_runner.preflight import PreflightError, check_submission
from schemas.dsse import keyid_for
from tests.helpers import ADMIN_TOKEN, AUDIENCE, Publisher, register_publisher
from tests.runner.test_bench_e2e import QUICK, carbonlabel
from tests.server import running_server


def _check(client: TestClient, token: str, base: str = AUDIENCE, **overrides: Any) -> str:
    """check_submission against the app behind ``client`` (its transport, in process)."""

    def through_the_app(request: httpx.Request) -> httpx.Response:
        answer = client.request(
            request.method,
            request.url.raw_path.decode(),
            headers={"Authorization": request.headers.get("Authorization", "")},
            content=request.content,
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    def factory(base: str, token: str, **kwargs: Any) -> RegistryClient:
        kwargs["transport"] = httpx.MockTransport(through_the_app)  # the app, in process
        return RegistryClient(base, token, **kwargs)

    arguments: dict[str, Any] = {
        "vendor": "acme",
        "model_name": "m",
        "keyid": "",
        "key_path": Path("key.pem"),
        "audience": AUDIENCE,
        "client_factory": factory,
    } | overrides
    return check_submission(base, token, **arguments)


@pytest.fixture
def acme(client: TestClient) -> Publisher:
    return register_publisher(client, "acme")


def test_a_ready_submission_passes(client: TestClient, acme: Publisher) -> None:
    ready = _check(client, acme.token, keyid=acme.keyid)
    assert f"token of acme, key {acme.keyid} active, audience {AUDIENCE}" in ready


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("bad-token", "refused the token: pass a valid vendor token with --token or"),
        (
            "other-vendor",
            "the token belongs to vendor 'acme', but --model-id names 'zeta': "
            "pass --model-id acme/m, or a token of 'zeta'",
        ),
        (
            "unregistered-key",
            "is not registered to 'acme': run `carbonlabel key register acme "
            "--key key.pem --registry http://testserver` first",
        ),
        (
            "audience",
            "accepts labels addressed to http://testserver, not https://elsewhere: "
            "pass --registry http://testserver",
        ),
        ("base-url", "has no /v1/whoami: --submit takes the registry's base URL"),
    ],
)
def test_each_failure_is_one_line_with_the_fix(
    client: TestClient, acme: Publisher, case: str, expected: str
) -> None:
    token, overrides = acme.token, {"keyid": acme.keyid}
    if case == "bad-token":
        token = "clt_not-a-token"
    elif case == "other-vendor":
        overrides["vendor"] = "zeta"
    elif case == "unregistered-key":
        overrides["keyid"] = keyid_for(Ed25519PrivateKey.generate().public_key())
    elif case == "audience":
        overrides["audience"] = "https://elsewhere"
    base = AUDIENCE + "/v1" if case == "base-url" else AUDIENCE  # /v1/v1/whoami: no such page
    with pytest.raises(PreflightError) as raised:
        _check(client, token, base, **overrides)
    message = str(raised.value)
    assert expected in message
    assert "\n" not in message


def test_a_retired_key_is_refused(client: TestClient, acme: Publisher) -> None:
    fresh = Ed25519PrivateKey.generate()
    from tests.helpers import add_key

    add_key(client, "acme", acme.token, fresh)
    response = client.post(
        f"/v1/vendors/acme/keys/{acme.keyid}/revoke",
        json={"reason": "retired"},
        headers=acme.headers,
    )
    assert response.status_code == 200
    with pytest.raises(PreflightError, match=r"is retired at .*carbonlabel keygen"):
        _check(client, acme.token, keyid=acme.keyid)
    assert "active" in _check(client, acme.token, keyid=keyid_for(fresh.public_key()))


def test_an_unreachable_registry_fails_at_once() -> None:
    from tests.server import free_port

    with pytest.raises(PreflightError, match="cannot check the submission with"):
        check_submission(
            f"http://127.0.0.1:{free_port()}",
            "clt_x",
            vendor="acme",
            model_name="m",
            keyid="00",
            key_path=Path("key.pem"),
            audience="http://127.0.0.1",
        )


def test_bench_stops_before_measuring_and_dry_run_checks_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert carbonlabel("db", "upgrade", "--database-url", url, cwd=tmp_path).returncode == 0
    token = carbonlabel("vendor", "create", "acme", "--database-url", url, cwd=tmp_path)
    carbonlabel("keygen", "--out", "key.pem", cwd=tmp_path)
    with running_server(url, ADMIN_TOKEN) as base:
        env = {"CARBONLABEL_TOKEN": token.stdout.strip(), "CARBONLABEL_REGISTRY": base}
        bench = ["bench", "--task", "text-classification", "--key", "key.pem", "--submit", base]
        # the key is not registered yet: refused before anything is measured or written
        refused = carbonlabel(*bench, "--model-id", "acme/reference", *QUICK, cwd=tmp_path, env=env)
        assert refused.returncode == 1
        assert refused.stderr.strip().count("\n") == 0, refused.stderr
        assert "carbonlabel key register acme --key key.pem" in refused.stderr
        assert list(tmp_path.glob("*.json")) == []
        registered = carbonlabel(
            "key", "register", "acme", "--key", "key.pem", cwd=tmp_path, env=env
        )
        assert registered.returncode == 0
        other = carbonlabel(*bench, "--model-id", "zeta/reference", *QUICK, cwd=tmp_path, env=env)
        assert other.returncode == 1
        assert "the token belongs to vendor 'acme'" in other.stderr
        ready = carbonlabel(
            *bench, "--model-id", "acme/reference", "--dry-run", cwd=tmp_path, env=env
        )
        assert ready.returncode == 0, ready.stderr
        assert "token of acme" in ready.stdout + ready.stderr
        assert list(tmp_path.glob("*.json")) == []  # checked only: nothing measured
