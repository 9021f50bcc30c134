"""`carbonlabel bench` end to end on the CPU: estimate meter, short protocol, a real reference
model; the label verifies offline and a running registry accepts it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas import check_results, validate_statement
from schemas.dsse import (
    decode_statement,
    keyid_for,
    load_private_key,
    load_public_key,
    parse_envelope,
)
from schemas.verify import VerifyExit, verify_envelope_bytes
from tests.helpers import ADMIN_TOKEN
from tests.server import running_server

REFERENCE_BENCH = [
    "bench",
    "--task",
    "text-classification",
    "--model-id",
    "acme/reference",
    "--key",
    "key.pem",
]
"""``bench`` of the built-in text-classification reference model, signed with ``key.pem``."""
QUICK = [
    "--trials",
    "2",
    "--min-window-s",
    "0.3",
    "--idle-s",
    "0.3",
    "--warmup-iterations",
    "1",
    "--warmup-min-s",
    "0",
    "--cooldown-s",
    "0",
    "--meter",
    "estimate",
    "--quiet",
]


def carbonlabel(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CARBONLABEL_")}
    environment |= {"CUDA_VISIBLE_DEVICES": ""} | (env or {})
    result = subprocess.run(
        [sys.executable, "-m", "carbonlabel", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.mark.parametrize(
    ("task", "phase"),
    [("text-classification", "inference"), ("image-classification", "training")],
)
def test_bench_writes_a_label_that_verifies(tmp_path: Path, task: str, phase: str) -> None:
    assert carbonlabel("keygen", "--out", "key.pem", cwd=tmp_path).returncode == 0
    result = carbonlabel(
        "bench",
        "--task",
        task,
        "--phase",
        phase,
        "--model-id",
        "acme/reference",
        "--key",
        "key.pem",
        "--registry",
        "http://127.0.0.1:9",
        "--zone",
        "SE",
        "--out",
        "out",
        *QUICK,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "ESTIMATED" in result.stderr  # said loudly
    envelope_path = tmp_path / result.stdout.strip().splitlines()[-1]
    data = envelope_path.read_bytes()
    key = load_public_key((tmp_path / "key.pem.pub").read_text())
    assert verify_envelope_bytes(data, key).outcome == VerifyExit.OK
    statement = decode_statement(parse_envelope(data))
    assert validate_statement(statement) == []
    label = statement["predicate"]
    assert check_results(label) == []
    assert label["benchmark"]["task"] == task
    assert label["measurement"]["trials"] == 2
    assert label["measurement"]["min_window_s"] == 0.3
    assert {c["method"] for c in label["measurement"]["components"]} == {"estimate"}
    assert "estimated" in label["measurement"]["flags"]
    assert label["carbon"]["zone"] == "SE"
    assert label["results"]["functional_unit"] == (
        "step" if phase == "training" else "1k-inferences"
    )
    assert label["results"]["energy_per_unit_wh"]["mean"] > 0


def test_bench_submits_to_a_running_registry(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert carbonlabel("db", "upgrade", "--database-url", url, cwd=tmp_path).returncode == 0
    token = carbonlabel(
        "vendor", "create", "acme", "--database-url", url, cwd=tmp_path
    ).stdout.strip()
    carbonlabel("keygen", "--out", "key.pem", cwd=tmp_path)
    with running_server(url, ADMIN_TOKEN) as base:
        env = {"CARBONLABEL_TOKEN": token, "CARBONLABEL_REGISTRY": base}
        assert (
            carbonlabel(
                "key", "register", "acme", "--key", "key.pem", cwd=tmp_path, env=env
            ).returncode
            == 0
        )
        result = carbonlabel(
            *REFERENCE_BENCH,
            "--submit",
            base,
            *QUICK,
            cwd=tmp_path,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        assert "/models/acme/reference (label " in result.stderr  # the model page
        items = httpx.get(f"{base}/v1/labels").json()["items"]
    assert len(items) == 1
    assert items[0]["method"] == "estimated"
    assert items[0]["model"] == "acme/reference"


def test_bench_keeps_the_envelope_when_the_registry_is_down(tmp_path: Path) -> None:
    carbonlabel("keygen", "--out", "key.pem", cwd=tmp_path)
    keyid = keyid_for(load_private_key(tmp_path / "key.pem").public_key())
    with _failing_registry(keyid) as down:  # its checks pass, then it fails every submission
        result = carbonlabel(
            *REFERENCE_BENCH,
            "--submit",
            down,
            *QUICK,
            cwd=tmp_path,
            env={"CARBONLABEL_TOKEN": "clt_x"},
        )
    assert result.returncode == 1
    assert "submit it later with: carbonlabel submit" in result.stderr
    kept = list(tmp_path.glob("*.dsse.json"))
    assert len(kept) == 1
    assert json.loads(kept[0].read_text())["payloadType"] == "application/vnd.in-toto+json"


@contextmanager
def _failing_registry(keyid: str) -> Iterator[str]:
    """A registry that answers bench's checks (GET /v1/whoami) and then 503 to everything."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    where: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/v1/whoami":
                keys = [{"keyid": keyid, "status": "active"}]
                self._answer(200, {"vendor": "acme", "audience": where["base"], "keys": keys})
            else:
                self._answer(503, {"title": "down"})

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self._answer(503, {"title": "down"})

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    where["base"] = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield where["base"]
    finally:
        server.shutdown()
        server.server_close()


def test_bench_with_hourly_intensities(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    carbonlabel("keygen", "--out", "key.pem", cwd=tmp_path)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    rows = [f"{(hour + timedelta(hours=h)).isoformat()},{100.0 * (h + 3)}" for h in range(-1, 3)]
    (tmp_path / "hourly.csv").write_text("timestamp,intensity_g_per_kwh\n" + "\n".join(rows) + "\n")
    result = carbonlabel(
        *REFERENCE_BENCH,
        "--registry",
        "http://127.0.0.1:9",
        "--hourly",
        "hourly.csv",
        "--pue",
        "1.2",
        *QUICK,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    label = json.loads(next(tmp_path.glob("*.label.json")).read_text())
    hourly = label["carbon"]["hourly"]
    assert hourly["intensities"]
    used = {row["intensity_g_per_kwh"] for row in hourly["intensities"]}
    assert used <= {200.0, 300.0, 400.0, 500.0}
    # the hourly-matched figure lies between the cheapest and dearest hour used
    energy_kwh = label["results"]["energy_per_unit_wh"]["mean"] / 1000
    assert (
        energy_kwh * 1.2 * min(used) * 0.99
        <= hourly["co2e_per_unit_g"]
        <= energy_kwh * 1.2 * max(used) * 1.01
    )
    bad = carbonlabel(
        *REFERENCE_BENCH,
        "--registry",
        "http://127.0.0.1:9",
        "--hourly",
        "nope.csv",
        *QUICK,
        cwd=tmp_path,
    )
    assert bad.returncode == 1
    assert bad.stderr.count("error:") == 1
