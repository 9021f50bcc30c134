"""Ingest throughput benchmark: signed labels into the registry, against a bare-INSERT reference.

    .venv/bin/python bench/ingest.py [--clients 32] [--seconds 20] [--database-url URL]

Steps, all in one run:

1. Pre-sign distinct envelopes in a process pool (signing is client work: off the clock).
2. Drop and recreate the ``public`` schema of a dedicated database (``carbonlabel_bench`` by
   default; ``test`` and ``postgres`` are refused), run the migrations, create ``bench_ref``.
   ``--keep-data`` skips this and ingests on top of the data there (e.g. the 1M labels of
   ``bench/scale.py --sizes 1000000 --database-url ...carbonlabel_scale``); row counts are then
   checked against the rows added.
3. Start the registry with uvicorn (one worker) on a free port, wait for ``/healthz``, create the
   vendor ``bench`` (``--keep-data``: only if missing; else a new token of it) and register its
   Ed25519 key.
4. Drive ``POST /v1/labels`` with ``--clients`` closed-loop clients over keep-alive connections
   for ``--warmup`` + ``--seconds``; only responses completed inside the ``--seconds`` window
   count towards labels/s and latency. Every label is distinct; anything but 201 is an error.
   Half-way through the warm-up, ``ANALYZE`` (see ``Analyzer``; ``--no-analyze`` skips it).
5. Stop the registry, start ``bench/ref_app.py`` (same uvicorn, one worker) and drive it the same
   way with the same envelope bytes: it only INSERTs them with raw psycopg 3 and commits.
6. Check that ``labels`` holds exactly as many rows as the registry answered 201 (``bench_ref``
   likewise), print the results and write them as markdown (``--output``).

The load generator runs in its own process (spawned, so it starts clean and idle while signing
and setup happen). By default it speaks HTTP/1.1 itself over asyncio streams (uvloop when
installed) with the requests pre-built, which costs a few tens of microseconds of CPU per request;
``--client httpx`` uses ``httpx.AsyncClient`` instead (several times the CPU per request: on a
2-core machine shared with the server that CPU comes out of the server's share). The report gives
the CPU each side used per request, so the choice can be checked on any machine.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import json
import math
import multiprocessing
import os
import platform
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import cycle
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/carbonlabel_bench"
REFUSED_DATABASES = {"test", "postgres", "template0", "template1"}
VENDOR = "bench"
TARGET_LABELS_PER_S = 200.0
TARGET_P99_MS = 250.0
REF_TABLE_DDL = (
    "CREATE TABLE bench_ref ("
    " id bigserial PRIMARY KEY,"
    " envelope bytea NOT NULL,"
    " received_at timestamptz NOT NULL DEFAULT now())"
)


# --------------------------------------------------------------------------------------------
# Signing (process pool, before anything is timed)
# --------------------------------------------------------------------------------------------

_SIGNING_KEY: Any = None


def _init_signer(private_raw: bytes) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    global _SIGNING_KEY
    _SIGNING_KEY = Ed25519PrivateKey.from_private_bytes(private_raw)


def _sign_range(args: tuple[int, int, str, int]) -> list[tuple[str, bytes]]:
    from schemas.dsse import build_statement, sign_statement
    from schemas.synthetic import make_label

    start, stop, registry, offset = args
    out = []
    for i in range(start, stop):
        label = make_label(vendor=VENDOR, model=f"m{i % 20}", registry=registry, seed=offset + i)
        envelope = sign_statement(build_statement(label), _SIGNING_KEY)
        out.append((label["label_id"], json.dumps(envelope, separators=(",", ":")).encode()))
    return out


def presign(
    count: int, registry: str, private_raw: bytes, workers: int, seed_offset: int = 0
) -> list[bytes]:
    chunk = 500
    ranges = [(s, min(s + chunk, count), registry, seed_offset) for s in range(0, count, chunk)]
    bodies: list[bytes] = []
    seen: set[str] = set()
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_signer, initargs=(private_raw,)
    ) as pool:
        for part in pool.map(_sign_range, ranges):
            for label_id, body in part:
                if label_id in seen:
                    raise SystemExit(f"pre-signing produced a duplicate label_id {label_id}")
                seen.add(label_id)
                bodies.append(body)
    return bodies


# --------------------------------------------------------------------------------------------
# CPU accounting (from /proc, Linux)
# --------------------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu_s(pid: int) -> float | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


_BACKEND = re.compile(r"^postgres: [^:]+: (\S+) (\S+) \S+")


def _postgres_cpu_s(database: str) -> dict[int, float]:
    """CPU seconds of the PostgreSQL server's processes, by pid: the postmaster, its auxiliary
    processes and the backends connected to ``database`` (not those of other databases)."""
    out: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        if raw[raw.index("(") + 1 : raw.rindex(")")] != "postgres":
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue
        backend = _BACKEND.match(cmdline)
        if backend and backend.group(2) != database:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        out[int(entry.name)] = (int(fields[11]) + int(fields[12])) / _TICK
    return out


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    try:
        parts = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return (0.0, 0.0)
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])
    return (float(total - idle), float(total))


@dataclass
class CpuSample:
    server_s: float | None
    postgres_s: dict[int, float]
    loadgen_s: float
    machine: tuple[float, float]


def _cpu_sample(server_pid: int, database: str) -> CpuSample:
    return CpuSample(
        server_s=_proc_cpu_s(server_pid),
        postgres_s=_postgres_cpu_s(database),
        loadgen_s=time.process_time(),
        machine=_machine_cpu(),
    )


# --------------------------------------------------------------------------------------------
# Load generator (runs in its own spawned process)
# --------------------------------------------------------------------------------------------


@dataclass
class LoadSpec:
    host: str
    port: int
    path: str
    token: str | None
    clients: int
    warmup_s: float
    seconds: float
    cycle_bodies: bool
    client: str  # "raw" or "httpx"
    server_pid: int
    database: str
    timeout_s: float = 30.0


@dataclass
class LoadResult:
    # (start, end, status, server-timing header or "") with times relative to the run start
    records: list[tuple[float, float, int, str]]
    window: tuple[float, float]
    cpu_start: CpuSample
    cpu_end: CpuSample
    exhausted: bool
    error_examples: list[str] = field(default_factory=list)
    event_loop: str = "asyncio"
    cpu_window: tuple[float, float] = (0.0, 0.0)  # between the two CPU samples


def _request_bytes(spec: LoadSpec, body: bytes) -> bytes:
    head = [
        f"POST {spec.path} HTTP/1.1",
        f"Host: {spec.host}:{spec.port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    if spec.token:
        head.append(f"Authorization: Bearer {spec.token}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, str, bool, bytes]:
    """(status, server-timing value, keep-alive, body) of one HTTP/1.1 response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    chunked = False
    keep_alive = True
    timing = b""
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            keep_alive = b"close" not in value.lower()
        elif name == b"server-timing":
            timing = value.strip()
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size + 2))
        body = b"".join(p[:-2] for p in parts)
    else:
        body = await reader.readexactly(length) if length else b""
    return status, timing.decode("latin-1"), keep_alive, body


async def _drive(spec: LoadSpec, bodies: list[bytes]) -> LoadResult:
    loop = asyncio.get_running_loop()
    records: list[tuple[float, float, int, str]] = []
    errors: list[str] = []
    source = cycle(bodies) if spec.cycle_bodies else iter(bodies)
    exhausted = False
    t_zero = time.perf_counter()
    warm_end = t_zero + spec.warmup_s
    stop_at = warm_end + spec.seconds
    samples: dict[str, CpuSample] = {}

    def note_error(text: str) -> None:
        if len(errors) < 5:
            errors.append(text[:500])

    async def sampler() -> None:
        await asyncio.sleep(max(0.0, warm_end - time.perf_counter()))
        samples["start"] = _cpu_sample(spec.server_pid, spec.database)
        await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
        samples["end"] = _cpu_sample(spec.server_pid, spec.database)

    if spec.client == "raw":
        prebuilt = [_request_bytes(spec, b) for b in bodies]
        requests = cycle(prebuilt) if spec.cycle_bodies else iter(prebuilt)

        async def worker() -> None:
            nonlocal exhausted
            reader: asyncio.StreamReader | None = None
            writer: asyncio.StreamWriter | None = None
            while time.perf_counter() < stop_at:
                request = next(requests, None)
                if request is None:
                    exhausted = True
                    break
                t0 = time.perf_counter()
                try:
                    async with asyncio.timeout(spec.timeout_s):
                        if writer is None:
                            reader, writer = await asyncio.open_connection(spec.host, spec.port)
                        assert reader is not None
                        writer.write(request)
                        status, timing, keep_alive, body = await _read_response(reader)
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                    records.append((t0 - t_zero, time.perf_counter() - t_zero, 0, ""))
                    note_error(f"{type(exc).__name__}: {exc}")
                    if writer is not None:
                        writer.close()
                    reader = writer = None
                    continue
                records.append((t0 - t_zero, time.perf_counter() - t_zero, status, timing))
                if status != 201:
                    note_error(f"{status}: {body[:400]!r}")
                if not keep_alive:
                    writer.close()
                    reader = writer = None
            if writer is not None:
                writer.close()

        await asyncio.gather(sampler(), *(worker() for _ in range(spec.clients)))
    else:
        import httpx

        headers = {"Content-Type": "application/json"}
        if spec.token:
            headers["Authorization"] = f"Bearer {spec.token}"
        limits = httpx.Limits(max_connections=spec.clients, max_keepalive_connections=spec.clients)
        async with httpx.AsyncClient(
            base_url=f"http://{spec.host}:{spec.port}", limits=limits, timeout=spec.timeout_s
        ) as client:

            async def worker() -> None:
                nonlocal exhausted
                while time.perf_counter() < stop_at:
                    body = next(source, None)
                    if body is None:
                        exhausted = True
                        break
                    t0 = time.perf_counter()
                    try:
                        response = await client.post(spec.path, content=body, headers=headers)
                    except httpx.HTTPError as exc:
                        records.append((t0 - t_zero, time.perf_counter() - t_zero, 0, ""))
                        note_error(f"{type(exc).__name__}: {exc}")
                        continue
                    status = response.status_code
                    records.append(
                        (
                            t0 - t_zero,
                            time.perf_counter() - t_zero,
                            status,
                            response.headers.get("server-timing", ""),
                        )
                    )
                    if status != 201:
                        note_error(f"{status}: {response.text[:400]}")

            await asyncio.gather(sampler(), *(worker() for _ in range(spec.clients)))
    if "end" not in samples:  # every client stopped early (bodies exhausted)
        samples.setdefault("start", _cpu_sample(spec.server_pid, spec.database))
        samples["end"] = _cpu_sample(spec.server_pid, spec.database)
    loop_name = type(loop).__module__.split(".")[0]
    return LoadResult(
        records=records,
        window=(spec.warmup_s, spec.warmup_s + spec.seconds),
        cpu_window=(spec.warmup_s, spec.warmup_s + spec.seconds),
        cpu_start=samples["start"],
        cpu_end=samples["end"],
        exhausted=exhausted,
        error_examples=errors,
        event_loop=loop_name,
    )


def run_load(spec: LoadSpec, bodies: list[bytes]) -> LoadResult:
    """Entry point of the load-generator process."""
    import gc

    gc.collect()
    gc.freeze()  # what exists now lives to the end: keep the collector from rescanning it
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_drive(spec, bodies))
    return uvloop.run(_drive(spec, bodies))


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _uvicorn_cmd() -> list[str]:
    script = Path(sys.executable).with_name("uvicorn")
    return [str(script)] if script.exists() else [sys.executable, "-m", "uvicorn"]


class Server:
    """A uvicorn subprocess with its log in a file; stop() is bounded (SIGINT, then SIGKILL)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.cmd = _uvicorn_cmd() + args
        self.proc = subprocess.Popen(
            self.cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_healthy(self, url: str, timeout_s: float = 60.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"{self.name} did not answer {url} in {timeout_s} s:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


# --------------------------------------------------------------------------------------------
# Database
# --------------------------------------------------------------------------------------------


def libpq_url(sqlalchemy_url: str, database: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def reset_database(sqlalchemy_url: str) -> str:
    """Create the database if needed, drop and recreate its public schema, migrate; version."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    from registry.db import upgrade

    name = make_url(sqlalchemy_url).database
    if not name or name in REFUSED_DATABASES:
        raise SystemExit(f"refusing to wipe database {name!r}: use a dedicated one")
    with psycopg.connect(libpq_url(sqlalchemy_url, "postgres"), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(libpq_url(sqlalchemy_url), autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
        row = conn.execute("SHOW server_version").fetchone()
    upgrade(sqlalchemy_url)
    with psycopg.connect(libpq_url(sqlalchemy_url), autocommit=True) as conn:
        conn.execute(REF_TABLE_DDL)
    return str(row[0]) if row else "?"


def keep_database(sqlalchemy_url: str) -> str:
    """``--keep-data``: use the database as it is (only ``bench_ref`` is created if missing)."""
    import psycopg

    with psycopg.connect(libpq_url(sqlalchemy_url), autocommit=True) as conn:
        conn.execute(REF_TABLE_DDL.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"))
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def existing_vendor_token(sqlalchemy_url: str) -> str | None:
    """A new API token of the vendor ``bench`` if it exists already (stored as the registry
    stores tokens: their SHA-256), else None."""
    import hashlib

    import psycopg

    token = "clt_" + secrets.token_urlsafe(32)
    with psycopg.connect(libpq_url(sqlalchemy_url), autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO api_tokens (vendor_id, token_sha256, prefix, created_at)"
            " SELECT id, %s, %s, now() FROM vendors WHERE slug = %s RETURNING id",
            (hashlib.sha256(token.encode()).hexdigest(), token[:8], VENDOR),
        ).fetchone()
    return token if row else None


def count_rows(sqlalchemy_url: str, table: str) -> int:
    import psycopg
    from psycopg import sql

    with psycopg.connect(libpq_url(sqlalchemy_url)) as conn:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else -1


# --------------------------------------------------------------------------------------------
# Statistics and report
# --------------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of an ascending list."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


def parse_server_timing(value: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in value.split(","):
        name, *params = (p.strip() for p in item.split(";"))
        for param in params:
            key, _, number = param.partition("=")
            if key == "dur" and name:
                with contextlib.suppress(ValueError):
                    out[name] = float(number)
    return out


@dataclass
class PhaseStats:
    name: str
    window_s: float
    ok_in_window: int
    errors_in_window: int
    total_requests: int
    total_created: int
    status_counts: dict[int, int]
    rate: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    timing_means: dict[str, float]
    cpu_ms_per_req: dict[str, float]
    machine_busy_pct: float
    other_cores: float
    exhausted: bool
    error_examples: list[str]
    event_loop: str
    rows: int = -1


def summarize(name: str, result: LoadResult) -> PhaseStats:
    lo, hi = result.window
    in_window = [r for r in result.records if lo <= r[1] <= hi]
    if result.exhausted and in_window:
        hi = max(r[1] for r in in_window)
    window = max(hi - lo, 1e-9)
    ok = [r for r in in_window if r[2] == 201]
    latencies = sorted((r[1] - r[0]) * 1000.0 for r in ok)
    sums: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for r in ok:
        for key, value in parse_server_timing(r[3]).items():
            sums[key] += value
            counts[key] += 1
    timing_means = {k: sums[k] / counts[k] for k in sums}
    c_lo, c_hi = result.cpu_window
    n = max(sum(1 for r in result.records if c_lo <= r[1] <= c_hi), 1)
    start, end = result.cpu_start, result.cpu_end
    pg = sum(
        end.postgres_s.get(pid, 0.0) - start.postgres_s.get(pid, 0.0) for pid in end.postgres_s
    )
    cpu: dict[str, float] = {
        "server": (
            ((end.server_s or 0.0) - (start.server_s or 0.0)) * 1000.0 / n
            if start.server_s is not None
            else math.nan
        ),
        "postgres": pg * 1000.0 / n,
        "load generator": (end.loadgen_s - start.loadgen_s) * 1000.0 / n,
    }
    busy = end.machine[0] - start.machine[0]
    total = end.machine[1] - start.machine[1]
    known_s = (
        ((end.server_s or 0.0) - (start.server_s or 0.0)) + pg + (end.loadgen_s - start.loadgen_s)
    )
    cpu_window_s = max(c_hi - c_lo, 1e-9)
    return PhaseStats(
        name=name,
        window_s=window,
        ok_in_window=len(ok),
        errors_in_window=len(in_window) - len(ok),
        total_requests=len(result.records),
        total_created=sum(1 for r in result.records if r[2] == 201),
        status_counts=dict(Counter(r[2] for r in result.records)),
        rate=len(ok) / window,
        p50_ms=percentile(latencies, 50),
        p90_ms=percentile(latencies, 90),
        p99_ms=percentile(latencies, 99),
        max_ms=latencies[-1] if latencies else math.nan,
        mean_ms=sum(latencies) / len(latencies) if latencies else math.nan,
        timing_means=timing_means,
        cpu_ms_per_req=cpu,
        machine_busy_pct=100.0 * busy / total if total else math.nan,
        other_cores=max(0.0, busy / _TICK - known_s) / cpu_window_s,
        exhausted=result.exhausted,
        error_examples=result.error_examples,
        event_loop=result.event_loop,
    )


def machine_info(pg_version: str) -> dict[str, str]:
    cpu_model = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
        memory = f"{mem_kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        memory = "?"
    versions = {}
    for dist in ("uvicorn", "fastapi", "sqlalchemy", "psycopg", "uvloop", "httptools"):
        try:
            from importlib.metadata import version

            versions[dist] = version(dist)
        except Exception:
            versions[dist] = "-"
    return {
        "CPU": cpu_model,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "PostgreSQL": pg_version,
        "packages": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


def _f(value: float, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def render(
    args: argparse.Namespace,
    command: str,
    machine: dict[str, str],
    reg: PhaseStats,
    ref: PhaseStats | None,
    presign_s: float,
    envelope_bytes: float,
    statistics_line: str = "",
) -> tuple[str, bool]:
    target_met = (
        reg.rate >= TARGET_LABELS_PER_S
        and reg.p99_ms < TARGET_P99_MS
        and reg.errors_in_window == 0
        and reg.rows == reg.total_created
    )
    out = [f"### Ingest run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}", ""]
    out += [f"Command: `{command}`", ""]
    out += [
        f"Settings: {args.clients} concurrent clients (closed loop, keep-alive), "
        f"{args.warmup:g} s warm-up then {args.seconds:g} s measured, one uvicorn worker, "
        f"load generator: `{args.client}` client on {reg.event_loop} in its own process; "
        f"envelopes ~{envelope_bytes / 1024:.1f} KiB each, pre-signed in {presign_s:.1f} s "
        f"(off the clock).",
        "",
        "Machine: " + "; ".join(f"{k}: {v}" for k, v in machine.items()),
        "",
    ]
    if statistics_line:
        out += [statistics_line, ""]
    ratio = (lambda a, b: a / b if b else math.nan) if ref else (lambda a, b: math.nan)
    header = "| | registry `POST /v1/labels` | reference (bare INSERT) | registry / reference |"
    out += [header, "|---|---:|---:|---:|"]

    def row(label: str, a: float, b: float | None, digits: int = 1, show_ratio: bool = True) -> str:
        r = _f(ratio(a, b), 2) if show_ratio and b is not None else ""
        return f"| {label} | {_f(a, digits)} | {_f(b, digits) if b is not None else '-'} | {r} |"

    out.append(row("labels/s sustained", reg.rate, ref.rate if ref else None))
    out.append(row("latency p50 (ms)", reg.p50_ms, ref.p50_ms if ref else None))
    out.append(row("latency p90 (ms)", reg.p90_ms, ref.p90_ms if ref else None))
    out.append(row("latency p99 (ms)", reg.p99_ms, ref.p99_ms if ref else None))
    out.append(row("latency max (ms)", reg.max_ms, ref.max_ms if ref else None))
    out.append(row("201s in window", reg.ok_in_window, ref.ok_in_window if ref else None, 0, False))
    out.append(
        row(
            "errors in window",
            reg.errors_in_window,
            ref.errors_in_window if ref else None,
            0,
            False,
        )
    )
    for key in ("server", "postgres", "load generator"):
        out.append(
            row(
                f"CPU ms per request: {key}",
                reg.cpu_ms_per_req[key],
                ref.cpu_ms_per_req[key] if ref else None,
                2,
            )
        )
    out.append(
        row(
            "machine CPU busy (%)",
            reg.machine_busy_pct,
            ref.machine_busy_pct if ref else None,
            0,
            False,
        )
    )
    out.append(
        row(
            "other processes' CPU (cores)",
            reg.other_cores,
            ref.other_cores if ref else None,
            2,
            False,
        )
    )
    out.append("")
    for stats in (reg, ref):
        if stats is not None and stats.other_cores > 0.15:
            out.append(
                f"WARNING: other processes used {stats.other_cores:.2f} cores during the "
                f"{stats.name} window: the machine was not quiet, the figures are perturbed."
            )
            out.append("")
    verify = reg.timing_means.get("verify", math.nan)
    validate = reg.timing_means.get("validate", math.nan)
    store = reg.timing_means.get("store", math.nan)
    in_server = verify + validate + store
    out += [
        "Registry Server-Timing, mean over the window's 201s (ms): "
        f"verify {_f(verify, 2)}, validate {_f(validate, 2)}, store {_f(store, 2)} "
        f"(sum {_f(in_server, 2)}; the rest of the {_f(reg.mean_ms, 1)} ms mean latency is "
        "HTTP, framework, dependencies, commit and queueing).",
        "",
    ]
    checks = []
    for stats, table in ((reg, "labels"), (ref, "bench_ref")):
        if stats is None:
            continue
        verdict = "OK" if stats.rows == stats.total_created else "MISMATCH"
        checks.append(
            f"`{table}` rows {stats.rows} vs 201 answers {stats.total_created} "
            f"(all phases): {verdict}"
        )
    out += ["Row check: " + "; ".join(checks) + ".", ""]
    for stats in (reg, ref):
        if stats is None:
            continue
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(stats.status_counts.items()))
        out.append(f"{stats.name} status codes over the whole run: {codes}.")
        if stats.exhausted:
            out.append(
                f"WARNING: {stats.name} used up the pre-signed envelopes before the window "
                f"ended; the window was cut to {stats.window_s:.1f} s (raise --labels)."
            )
        for example in stats.error_examples:
            out.append(f"- error example: `{example}`")
    out.append("")
    verdict = "MET" if target_met else "NOT MET"
    out.append(
        f"Target (>= {TARGET_LABELS_PER_S:.0f} labels/s sustained and p99 < {TARGET_P99_MS:.0f} "
        f"ms at 32 clients, one worker, PostgreSQL, no errors): **{verdict}** "
        f"({_f(reg.rate)} labels/s, p99 {_f(reg.p99_ms)} ms"
        + ("" if args.clients == 32 else f", measured at {args.clients} clients")
        + ")."
    )
    return "\n".join(out) + "\n", target_met


# --------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------


def _http_json(method: str, url: str, token: str, payload: dict[str, Any]) -> dict[str, Any]:
    import httpx

    response = httpx.request(
        method, url, json=payload, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
    )
    if response.status_code != 201:
        raise SystemExit(f"{method} {url} answered {response.status_code}: {response.text}")
    data: dict[str, Any] = response.json()
    return data


def setup_vendor(
    public_url: str, admin_token: str, private_raw: bytes, vendor_token: str | None = None
) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from schemas.dsse import keyid_for, raw_public_key

    try:
        from schemas.dsse import key_proof_message as proof_message
    except ImportError:  # older layout
        from registry.services.keys import proof_message  # type: ignore[attr-defined,no-redef]

    if vendor_token is None:  # else the vendor exists (--keep-data)
        created = _http_json("POST", f"{public_url}/v1/vendors", admin_token, {"slug": VENDOR})
        vendor_token = created["token"]
    key = Ed25519PrivateKey.from_private_bytes(private_raw)
    raw = raw_public_key(key.public_key())
    proof = key.sign(proof_message(public_url, VENDOR, keyid_for(raw)))
    _http_json(
        "POST",
        f"{public_url}/v1/vendors/{VENDOR}/keys",
        vendor_token,
        {
            "public_key": base64.b64encode(raw).decode(),
            "proof": base64.b64encode(proof).decode(),
        },
    )
    return str(vendor_token)


class Analyzer:
    """``ANALYZE`` of the benchmark database once, ``delay_s`` into the warm-up.

    The schema is created empty just before the run, so the planner has no statistics; with
    ``autovacuum = off`` (as in this project's CI configuration of PostgreSQL) it never gets
    any, and it plans the ingest queries as if the tables were empty (a whole peer group read
    where an index finds a handful of rows). A production database has autovacuum's statistics;
    this step gives the run the same. ``--no-analyze`` skips it.
    """

    def __init__(self, enabled: bool, sqlalchemy_url: str, delay_s: float) -> None:
        self.done_at_s: float | None = None
        self.autovacuum = "?"
        self.error: str | None = None
        self.timer: threading.Timer | None = None
        if not enabled:
            return
        started = time.monotonic()

        def analyze() -> None:
            import psycopg

            try:
                with psycopg.connect(libpq_url(sqlalchemy_url), autocommit=True) as conn:
                    row = conn.execute("SHOW autovacuum").fetchone()
                    self.autovacuum = str(row[0]) if row else "?"
                    conn.execute("ANALYZE")
                self.done_at_s = time.monotonic() - started
            except psycopg.Error as exc:
                self.error = str(exc)

        self.timer = threading.Timer(delay_s, analyze)
        self.timer.start()

    def finish(self) -> str:
        """A line for the report."""
        if self.timer is None:
            return "Statistics: no ANALYZE (`--no-analyze`)."
        self.timer.cancel()
        self.timer.join()
        if self.error is not None:
            return f"Statistics: ANALYZE failed: {self.error}"
        if self.done_at_s is None:
            return "Statistics: ANALYZE did not run (the run ended first)."
        return (
            f"Statistics: `ANALYZE` done {self.done_at_s:.1f} s into the warm-up "
            f"(the server's autovacuum is {self.autovacuum})."
        )


class PySpy:
    """``py-spy record`` on a pid, started after ``delay_s`` for ``seconds`` (or nothing)."""

    def __init__(self, output: Path | None, pid: int, delay_s: float, seconds: float) -> None:
        self.output = output
        self.proc: subprocess.Popen[bytes] | None = None
        self.timer: threading.Timer | None = None
        if output is None:
            return
        exe = Path(sys.executable).with_name("py-spy")
        cmd = [str(exe) if exe.exists() else "py-spy", "record", "--pid", str(pid)]
        cmd += ["--duration", str(max(1, round(seconds))), "--rate", "200", "--gil"]
        cmd += ["--nonblocking", "--format", "raw", "--output", str(output)]
        output.parent.mkdir(parents=True, exist_ok=True)

        def start() -> None:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        self.timer = threading.Timer(delay_s, start)
        self.timer.start()

    def finish(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer.join()
        if self.proc is None:
            return
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if self.proc.returncode != 0:
            print(f"py-spy failed: {err.decode(errors='replace')[-500:]}", file=sys.stderr)
        else:
            print(f"py-spy profile written to {self.output}", flush=True)


def drive(spec: LoadSpec, bodies: list[bytes]) -> LoadResult:
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(run_load, spec, bodies).result(
            timeout=spec.warmup_s + spec.seconds + spec.timeout_s + 120.0
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (32)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window (20 s)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up before it (3 s)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CARBONLABEL_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="SQLAlchemy URL of a dedicated database: its public schema is dropped",
    )
    parser.add_argument(
        "--labels",
        type=int,
        default=0,
        help="envelopes to pre-sign (default: enough for 600 labels/s over warm-up + window)",
    )
    parser.add_argument(
        "--client", choices=("raw", "httpx"), default="raw", help="load generator's HTTP client"
    )
    parser.add_argument("--skip-reference", action="store_true", help="registry only")
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="no schema reset: ingest on top of the database as it is (e.g. bench/scale.py's "
        "labels); the vendor `bench` is created only if missing",
    )
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="no ANALYZE half-way through the warm-up (the planner then has no statistics "
        "when autovacuum is off)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=BENCH_DIR / "results" / "ingest.md",
        help="markdown report (bench/results/ingest.md)",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="PATH",
        help="record the registry with py-spy (--gil, collapsed stacks) over the measured window"
        " into PATH; the profiler's CPU perturbs the figures of that run",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is not met")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = " ".join([".venv/bin/python", "bench/ingest.py", *map(shlex.quote, sys.argv[1:])])
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from sqlalchemy.engine import make_url

    count = args.labels or int(600 * (args.warmup + args.seconds)) + 1000
    registry_port, ref_port = free_port(), free_port()
    while ref_port == registry_port:
        ref_port = free_port()
    public_url = f"http://127.0.0.1:{registry_port}"
    private_raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )

    t0 = time.perf_counter()
    # --keep-data: seeds (hence label ids) unlike those of an earlier run on the same database
    offset = secrets.randbits(48) if args.keep_data else 0
    bodies = presign(
        count, public_url, private_raw, workers=os.cpu_count() or 1, seed_offset=offset
    )
    presign_s = time.perf_counter() - t0
    envelope_bytes = sum(len(b) for b in bodies) / len(bodies)
    print(f"pre-signed {len(bodies)} envelopes in {presign_s:.1f} s", flush=True)

    if args.keep_data:
        pg_version = keep_database(args.database_url)
        print(f"database kept as it is (PostgreSQL {pg_version})", flush=True)
    else:
        pg_version = reset_database(args.database_url)
        print(f"database reset and migrated (PostgreSQL {pg_version})", flush=True)
    db_name = str(make_url(args.database_url).database)
    rows_before = {t: count_rows(args.database_url, t) for t in ("labels", "bench_ref")}

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONLABEL_")}
    admin_token = secrets.token_urlsafe(32)
    uvicorn_common = ["--host", "127.0.0.1", "--workers", "1", "--no-access-log"]
    uvicorn_common += ["--timeout-graceful-shutdown", "10"]
    with tempfile.TemporaryDirectory(prefix="carbonlabel-bench-") as tmp:
        log_dir = Path(tmp)
        env = base_env | {
            "CARBONLABEL_DATABASE_URL": args.database_url,
            "CARBONLABEL_ADMIN_TOKEN": admin_token,
            "CARBONLABEL_LOG_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
            "CARBONLABEL_PUBLIC_URL": public_url,
            "CARBONLABEL_RATE_LIMIT_PER_MINUTE": "0",
            "CARBONLABEL_RATE_LIMIT_PER_ADDRESS_PER_MINUTE": "0",
        }
        server = Server(
            "registry",
            [
                "--factory",
                "registry.main:create_app",
                "--port",
                str(registry_port),
                *uvicorn_common,
            ],
            env,
            log_dir,
        )
        try:
            server.wait_healthy(f"{public_url}/healthz")
            existing = existing_vendor_token(args.database_url) if args.keep_data else None
            vendor_token = setup_vendor(public_url, admin_token, private_raw, existing)
            print(
                f"registry up (pid {server.pid}); driving {args.clients} clients for "
                f"{args.warmup:g} s warm-up + {args.seconds:g} s",
                flush=True,
            )
            spec = LoadSpec(
                host="127.0.0.1",
                port=registry_port,
                path="/v1/labels",
                token=vendor_token,
                clients=args.clients,
                warmup_s=args.warmup,
                seconds=args.seconds,
                cycle_bodies=False,
                client=args.client,
                server_pid=server.pid,
                database=db_name,
            )
            profiler = PySpy(args.py_spy, server.pid, args.warmup, args.seconds)
            analyzer = Analyzer(not args.no_analyze, args.database_url, args.warmup / 2)
            try:
                reg_result = drive(spec, bodies)
            finally:
                profiler.finish()
                statistics_line = analyzer.finish()
        finally:
            server.stop()
        reg = summarize("registry", reg_result)
        reg.rows = count_rows(args.database_url, "labels") - rows_before["labels"]
        print(
            f"registry: {reg.rate:.1f} labels/s, p50 {reg.p50_ms:.1f} ms, "
            f"p99 {reg.p99_ms:.1f} ms, errors {reg.errors_in_window}",
            flush=True,
        )

        ref: PhaseStats | None = None
        if not args.skip_reference:
            ref_env = base_env | {"BENCH_REF_DSN": libpq_url(args.database_url)}
            ref_server = Server(
                "reference",
                [
                    "--app-dir",
                    str(BENCH_DIR),
                    "--factory",
                    "ref_app:create_app",
                    "--port",
                    str(ref_port),
                    *uvicorn_common,
                ],
                ref_env,
                log_dir,
            )
            try:
                ref_server.wait_healthy(f"http://127.0.0.1:{ref_port}/healthz")
                print(f"reference up (pid {ref_server.pid})", flush=True)
                ref_spec = LoadSpec(
                    host="127.0.0.1",
                    port=ref_port,
                    path="/ingest",
                    token=None,
                    clients=args.clients,
                    warmup_s=args.warmup,
                    seconds=args.seconds,
                    cycle_bodies=True,
                    client=args.client,
                    server_pid=ref_server.pid,
                    database=db_name,
                )
                ref_result = drive(ref_spec, bodies)
            finally:
                ref_server.stop()
            ref = summarize("reference", ref_result)
            ref.rows = count_rows(args.database_url, "bench_ref") - rows_before["bench_ref"]
            print(
                f"reference: {ref.rate:.1f} inserts/s, p50 {ref.p50_ms:.1f} ms, "
                f"p99 {ref.p99_ms:.1f} ms, errors {ref.errors_in_window}",
                flush=True,
            )

    report, target_met = render(
        args,
        command,
        machine_info(pg_version),
        reg,
        ref,
        presign_s,
        envelope_bytes,
        statistics_line,
    )
    print()
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(f"written to {args.output}")
    rows_ok = reg.rows == reg.total_created and (ref is None or ref.rows == ref.total_created)
    if not rows_ok:
        print("ERROR: row counts do not match the 201 answers", file=sys.stderr)
        return 2
    return 1 if args.check and not target_met else 0


if __name__ == "__main__":
    sys.exit(main())
