"""What ``carbonlabel bench --submit`` checks with the registry before it measures anything:
that the token is valid, that it belongs to the vendor ``--model-id`` names, that the signing key
is registered to that vendor and active, and that the label's audience is this registry. Each
failure is one line that says how to fix it, found within :data:`TIMEOUT_S` (one request to
``GET /v1/whoami``, no retries), rather than after minutes of measuring."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from bench_runner.client import RegistryClient, RegistryError

TIMEOUT_S = 2.0


class PreflightError(ValueError):
    """A check failed: the message is one line with the fix."""


def check_submission(
    submit_url: str,
    token: str,
    *,
    vendor: str,
    model_name: str,
    keyid: str,
    key_path: Path,
    audience: str,
    transport: httpx.BaseTransport | None = None,
    client_factory: Callable[..., RegistryClient] = RegistryClient,
) -> str:
    """Check a submission before the measurement; returns a one-line summary when all holds,
    raises :class:`PreflightError` otherwise."""
    base = submit_url.rstrip("/")
    try:
        with client_factory(
            base, token, transport=transport, retries=0, timeout_s=TIMEOUT_S
        ) as client:
            who = client.get_json("/v1/whoami")
    except RegistryError as exc:
        if exc.status == 401:
            raise PreflightError(
                f"{base} refused the token: pass a valid vendor token with --token or "
                "CARBONLABEL_TOKEN (the registry's operator issues them)"
            ) from None
        if exc.status == 404:
            raise PreflightError(
                f"{base} has no /v1/whoami: --submit takes the registry's base URL "
                "(https://host, without /v1)"
            ) from None
        raise PreflightError(f"cannot check the submission with {base} ({exc})") from None
    owner = str(who.get("vendor", ""))
    if owner != vendor:
        raise PreflightError(
            f"the token belongs to vendor {owner!r}, but --model-id names {vendor!r}: "
            f"pass --model-id {owner}/{model_name}, or a token of {vendor!r}"
        )
    expected = str(who.get("audience", "")).rstrip("/")
    if expected != audience.rstrip("/"):
        raise PreflightError(
            f"{base} accepts labels addressed to {expected}, not {audience}: "
            f"pass --registry {expected} (or --submit {expected})"
        )
    register = f"carbonlabel key register {owner} --key {key_path} --registry {base}"
    statuses = {k.get("keyid"): k.get("status") for k in who.get("keys", [])}
    status = statuses.get(keyid)
    if status is None:
        raise PreflightError(
            f"key {keyid} ({key_path}) is not registered to {owner!r}: run `{register}` first"
        )
    if status != "active":
        raise PreflightError(
            f"key {keyid} ({key_path}) is {status} at {base}: make a new key with "
            f"`carbonlabel keygen` and register it (`{register}`)"
        )
    return f"checked with {base}: token of {owner}, key {keyid} active, audience {expected}"
