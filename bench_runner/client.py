"""HTTP client for a registry (httpx; the transport is injectable for tests)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx


class RegistryError(RuntimeError):
    """The registry refused a request (4xx) or stayed unreachable/failing after retries."""

    def __init__(self, message: str, status: int | None = None, problem: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem


class RegistryClient:
    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        retries: int = 3,
        backoff_s: float = 0.5,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, transport=transport, timeout=timeout_s
        )
        self.retries = retries
        self.backoff_s = backoff_s
        self._sleep = sleep

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Retries network errors and 5xx with exponential backoff, waiting at least a 5xx's
        ``Retry-After`` (seconds, capped); never retries 4xx."""
        last: str = ""
        retry_after: float | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                delay = self.backoff_s * 2 ** (attempt - 1)
                self._sleep(max(delay, retry_after) if retry_after is not None else delay)
            retry_after = None
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                last = f"cannot reach {self._http.base_url}: {exc.__class__.__name__}: {exc}"
                continue
            if response.status_code >= 500:
                last = f"registry answered {response.status_code}: {_detail(response)}"
                retry_after = _retry_after(response)
                continue
            if response.status_code >= 400:
                raise RegistryError(
                    f"registry refused ({response.status_code}): {_detail(response)}",
                    response.status_code,
                    _json(response),
                )
            return response
        raise RegistryError(last)

    def submit(self, envelope_bytes: bytes) -> tuple[int, dict[str, Any]]:
        response = self._request(
            "POST",
            "/v1/labels",
            content=envelope_bytes,
            headers={"Content-Type": "application/json"},
        )
        return response.status_code, response.json()

    def get_json(self, path: str) -> dict[str, Any]:
        """A JSON object from a GET (RegistryError for 4xx, or when it is not a JSON object)."""
        response = self._request("GET", path)
        body = _json(response)
        if not isinstance(body, dict):
            raise RegistryError(f"{path}: the registry did not answer a JSON object")
        return body

    def get_text(self, path: str) -> str:
        return self._request("GET", path).text

    def get_bytes(self, path: str) -> bytes:
        return self._request("GET", path).content

    def register_key(self, vendor: str, public_key_b64: str, proof_b64: str) -> dict[str, Any]:
        response = self._request(
            "POST",
            f"/v1/vendors/{vendor}/keys",
            json={"public_key": public_key_b64, "proof": proof_b64},
        )
        result: dict[str, Any] = response.json()
        return result


MAX_RETRY_AFTER_S = 60.0


def _retry_after(response: httpx.Response) -> float | None:
    """A ``Retry-After`` in seconds (the HTTP-date form is ignored), at most MAX_RETRY_AFTER_S."""
    value = response.headers.get("retry-after", "").strip()
    if not value.isdigit():
        return None
    return min(float(value), MAX_RETRY_AFTER_S)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _detail(response: httpx.Response) -> str:
    body = _json(response)
    if isinstance(body, dict):
        kind = str(body.get("type", "")).rsplit(":", 1)[-1]
        detail = body.get("detail", "")
        errors = body.get("errors")
        extra = ""
        if isinstance(errors, list) and errors:
            extra = "; " + "; ".join(
                f"{e.get('pointer', '')}: {e.get('message', e.get('recomputed', ''))}"
                for e in errors[:5]
                if isinstance(e, dict)
            )
        return f"{kind}: {detail}{extra}"
    return response.text[:200]
