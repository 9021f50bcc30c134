"""Run the registry in a real uvicorn subprocess for tests that need a real server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import httpx

from tests.helpers import LOG_KEY_B64


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    base: str
    process: subprocess.Popen[bytes]


@contextmanager
def running_server(database_url: str, admin_token: str, **env: str) -> Iterator[str]:
    """Start ``uvicorn --factory registry.main:create_app`` and yield its base URL."""
    with server_process(database_url, admin_token, output=None, log_level="", **env) as server:
        yield server.base


@contextmanager
def server_process(
    database_url: str,
    admin_token: str,
    *,
    output: BinaryIO | None = None,
    log_level: str = "",
    **env: str,
) -> Iterator[ServerProcess]:
    """``running_server``, yielding the process too; its stdout and stderr go to ``output``
    (a file: nothing drains a pipe while the server runs) when given. With ``log_level`` the
    access log is on and uvicorn logs at that level."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environment = (
        os.environ
        | {
            "CARBONLABEL_DATABASE_URL": database_url,
            "CARBONLABEL_ADMIN_TOKEN": admin_token,
            "CARBONLABEL_LOG_SIGNING_KEY": LOG_KEY_B64,
            "CARBONLABEL_PUBLIC_URL": base,
            "CARBONLABEL_RATE_LIMIT_PER_MINUTE": "0",
            "CARBONLABEL_RATE_LIMIT_PER_ADDRESS_PER_MINUTE": "0",
        }
        | env
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "registry.main:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *(
                ["--log-level", log_level]
                if log_level
                else ["--no-access-log", "--log-level", "warning"]
            ),
        ],
        env=environment,
        stdout=output if output is not None else subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                printed = process.stdout.read().decode() if process.stdout else ""
                raise RuntimeError(f"server exited with {process.returncode}: {printed}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready in 30 s")
            time.sleep(0.1)
        yield ServerProcess(base, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
