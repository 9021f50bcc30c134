"""Badge speed benchmark: badge requests/s through the real server, against a constant SVG route
of the same app.

    .venv/bin/python bench/badges.py [--clients 32] [--seconds 15] [--database-url URL]

Steps, all in one run:

1. Create (if needed) the dedicated database ``carbonlabel_bench_badges``, drop and recreate its
   ``public`` schema, run the migrations (``bench/ingest.py``'s ``reset_database``; ``test`` and
   ``postgres`` are refused).
2. Start one uvicorn worker serving :func:`create_bench_app`: the registry's own
   ``registry.main:create_app()`` plus one route, ``GET /bench/constant.svg``, that answers a
   constant SVG (a rendered badge of the usual size) with no work at all. Wait for ``/healthz``,
   create the vendor ``bench``, register its key, and publish signed labels for ``--models``
   models (inference and training, two revisions each).
3. In one spawned load-generator process (``bench/ingest.py``'s raw HTTP/1.1 client parts: the
   response reader, CPU accounting), drive ``--clients`` closed-loop keep-alive clients: a warm-up,
   then ``--rounds`` rounds of [badge window, constant window] with the order alternating
   (ABBA...), ``--seconds`` per route in all. The badge requests cycle through
   ``/badge/bench/m<i>.svg`` for every model, with and without ``?metric=co2e`` and
   ``?phase=training``. Only 200 answers completed inside a window count; anything else is an error.
4. Print the requests/s of both routes, their ratio (target >= 0.8), latency percentiles and CPU
   per request of the server and of PostgreSQL, as markdown (also written to ``--output`` if given).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import math
import multiprocessing
import os
import secrets
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import cycle
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/carbonlabel_bench_badges"
TARGET_RATIO = 0.8
CONSTANT_PATH = "/bench/constant.svg"


# --------------------------------------------------------------------------------------------
# The app under test: the registry plus one constant route (uvicorn imports this module)
# --------------------------------------------------------------------------------------------


def create_bench_app() -> Any:
    """``registry.main.create_app()`` with ``GET /bench/constant.svg`` added where
    ``BENCH_CONSTANT_POSITION`` says (see :func:`parse_args`)."""
    from fastapi import Response

    from registry.api import badges as badge_routes
    from registry.badges import BadgeText, render_badge
    from registry.main import create_app

    constant = render_badge(BadgeText("carbon label", "B · 12.4 Wh/1k", "green")).encode()

    async def constant_svg() -> Response:
        return Response(content=constant, media_type="image/svg+xml;charset=utf-8")

    position = os.environ.get("BENCH_CONSTANT_POSITION", "beside")
    if position == "beside":
        # In the badge routes' own router, first: found by the same routing steps as theirs.
        # (This process serves one app, so changing the module's router here is harmless.)
        badge_routes.router.add_api_route(CONSTANT_PATH, constant_svg, include_in_schema=False)
        badge_routes.router.routes.insert(0, badge_routes.router.routes.pop())
        return create_app()
    app = create_app()
    app.add_api_route(CONSTANT_PATH, constant_svg, include_in_schema=False)
    if position == "first":
        app.router.routes.insert(0, app.router.routes.pop())
    return app


# --------------------------------------------------------------------------------------------
# Load generator (its own spawned process)
# --------------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str  # "badge", "constant" or "warmup"
    paths: list[str]
    seconds: float


@dataclass
class PhaseResult:
    name: str
    seconds: float
    ok: int
    errors: int
    latencies_ms: list[float]
    server_cpu_s: float
    postgres_cpu_s: float
    loadgen_cpu_s: float
    machine_busy_s: float
    error_examples: list[str] = field(default_factory=list)


@dataclass
class LoadPlan:
    host: str
    port: int
    clients: int
    phases: list[Phase]
    server_pid: int
    database: str
    timeout_s: float = 30.0


async def _run_phase(plan: LoadPlan, phase: Phase, conns: list[Any]) -> PhaseResult:
    import ingest

    requests = cycle(
        [
            f"GET {p} HTTP/1.1\r\nHost: {plan.host}:{plan.port}\r\n\r\n".encode("ascii")
            for p in phase.paths
        ]
    )
    ok = 0
    errors = 0
    latencies: list[float] = []
    examples: list[str] = []
    pg_before = ingest._postgres_cpu_s(plan.database)
    server_before = ingest._proc_cpu_s(plan.server_pid) or 0.0
    machine_before = ingest._machine_cpu()[0]
    loadgen_before = time.process_time()
    start = time.perf_counter()
    stop_at = start + phase.seconds

    async def worker(index: int) -> None:
        nonlocal ok, errors
        while True:
            request = next(requests)
            t0 = time.perf_counter()
            if t0 >= stop_at:
                return
            try:
                async with asyncio.timeout(plan.timeout_s):
                    if conns[index] is None:
                        conns[index] = await asyncio.open_connection(plan.host, plan.port)
                    reader, writer = conns[index]
                    writer.write(request)
                    status, _, keep_alive, body = await ingest._read_response(reader)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                errors += 1
                if len(examples) < 5:
                    examples.append(f"{type(exc).__name__}: {exc}")
                if conns[index] is not None:
                    conns[index][1].close()
                conns[index] = None
                continue
            t1 = time.perf_counter()
            if t1 <= stop_at:
                if status == 200:
                    ok += 1
                    latencies.append((t1 - t0) * 1000.0)
                else:
                    errors += 1
                    if len(examples) < 5:
                        examples.append(f"{status}: {body[:200]!r}")
            if not keep_alive:
                conns[index][1].close()
                conns[index] = None

    await asyncio.gather(*(worker(i) for i in range(plan.clients)))
    elapsed = time.perf_counter() - start
    pg_after = ingest._postgres_cpu_s(plan.database)
    server_after = ingest._proc_cpu_s(plan.server_pid) or 0.0
    machine_after = ingest._machine_cpu()[0]
    loadgen_after = time.process_time()
    pg = sum(pg_after[pid] - pg_before.get(pid, 0.0) for pid in pg_after)
    return PhaseResult(
        name=phase.name,
        seconds=min(elapsed, phase.seconds),
        ok=ok,
        errors=errors,
        latencies_ms=latencies,
        server_cpu_s=server_after - server_before,
        postgres_cpu_s=pg,
        loadgen_cpu_s=loadgen_after - loadgen_before,
        machine_busy_s=(machine_after - machine_before) / ingest._TICK,
        error_examples=examples,
    )


async def _drive(plan: LoadPlan) -> tuple[list[PhaseResult], str]:
    conns: list[Any] = [None] * plan.clients
    results = [await _run_phase(plan, phase, conns) for phase in plan.phases]
    for conn in conns:
        if conn is not None:
            conn[1].close()
    return results, type(asyncio.get_running_loop()).__module__.split(".")[0]


def run_plan(plan: LoadPlan) -> tuple[list[PhaseResult], str]:
    """Entry point of the load-generator process."""
    sys.path.insert(0, str(BENCH_DIR))
    import gc

    gc.collect()
    gc.freeze()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_drive(plan))
    return uvloop.run(_drive(plan))


def drive(plan: LoadPlan) -> tuple[list[PhaseResult], str]:
    ctx = multiprocessing.get_context("spawn")
    total = sum(p.seconds for p in plan.phases)
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(run_plan, plan).result(timeout=total + plan.timeout_s + 120.0)


# --------------------------------------------------------------------------------------------
# Seeding
# --------------------------------------------------------------------------------------------


def seed_labels(public_url: str, vendor_token: str, private_raw: bytes, models: int) -> int:
    """Publish signed labels: per model, inference and training, revisions v1 then v2."""
    import httpx
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from schemas.dsse import build_statement, sign_statement
    from schemas.synthetic import make_label

    key = Ed25519PrivateKey.from_private_bytes(private_raw)
    headers = {"Authorization": f"Bearer {vendor_token}", "Content-Type": "application/json"}
    count = 0
    with httpx.Client(base_url=public_url, headers=headers, timeout=30.0) as client:
        for i in range(models):
            for revision in ("v1", "v2"):
                for phase in ("inference", "training"):
                    label = make_label(
                        vendor="bench",
                        model=f"m{i}",
                        registry=public_url,
                        revision=revision,
                        phase=phase,
                        power_w=100.0 + 150.0 * i,
                        seed=i,
                    )
                    body = sign_statement(build_statement(label), key)
                    response = client.post("/v1/labels", json=body)
                    if response.status_code != 201:
                        raise SystemExit(f"seeding: {response.status_code} {response.text}")
                    count += 1
    return count


def badge_paths(models: int) -> list[str]:
    paths = []
    for i in range(models):
        base = f"/badge/bench/m{i}.svg"
        paths += [base, f"{base}?metric=co2e", f"{base}?phase=training"]
    return paths


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


@dataclass
class Summary:
    name: str
    seconds: float
    ok: int
    errors: int
    rate: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms: float
    postgres_cpu_ms: float
    loadgen_cpu_ms: float
    server_cores: float
    other_cores: float
    examples: list[str]


def summarize(name: str, parts: list[PhaseResult]) -> Summary:
    import ingest

    seconds = sum(p.seconds for p in parts)
    ok = sum(p.ok for p in parts)
    latencies = sorted(x for p in parts for x in p.latencies_ms)
    n = max(ok, 1)
    return Summary(
        name=name,
        seconds=seconds,
        ok=ok,
        errors=sum(p.errors for p in parts),
        rate=ok / seconds if seconds else math.nan,
        p50_ms=ingest.percentile(latencies, 50),
        p99_ms=ingest.percentile(latencies, 99),
        server_cpu_ms=sum(p.server_cpu_s for p in parts) * 1000.0 / n,
        postgres_cpu_ms=sum(p.postgres_cpu_s for p in parts) * 1000.0 / n,
        loadgen_cpu_ms=sum(p.loadgen_cpu_s for p in parts) * 1000.0 / n,
        server_cores=sum(p.server_cpu_s for p in parts) / seconds if seconds else math.nan,
        other_cores=max(
            0.0,
            sum(
                p.machine_busy_s - p.server_cpu_s - p.postgres_cpu_s - p.loadgen_cpu_s
                for p in parts
            ),
        )
        / seconds
        if seconds
        else math.nan,
        examples=[e for p in parts for e in p.error_examples][:5],
    )


def paired_ratios(results: list[PhaseResult]) -> list[float]:
    """badge / constant requests/s of each pair of adjacent windows (noise that hits one window
    of a pair shows as one outlier here instead of skewing the whole run)."""
    windows = [r for r in results if r.name in ("badge", "constant")]
    out = []
    for a, b in zip(windows[::2], windows[1::2], strict=False):
        rate = {r.name: r.ok / r.seconds for r in (a, b) if r.seconds}
        if rate.get("constant"):
            out.append(rate.get("badge", 0.0) / rate["constant"])
    return out


def render(
    args: argparse.Namespace,
    command: str,
    machine: dict[str, str],
    results: list[PhaseResult],
    badge: Summary,
    constant: Summary,
    labels: int,
    loop: str,
) -> tuple[str, bool]:
    import ingest

    f = ingest._f
    ratio = badge.rate / constant.rate if constant.rate else math.nan
    cpu_ratio = constant.server_cpu_ms / badge.server_cpu_ms if badge.server_cpu_ms else math.nan
    pairs = paired_ratios(results)
    median_pair = statistics.median(pairs) if pairs else math.nan
    met = ratio >= TARGET_RATIO and badge.errors == 0 and constant.errors == 0
    out = [f"### Badge run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}", ""]
    out += [f"Command: `{command}`", ""]
    out += [
        f"Settings: {args.clients} concurrent keep-alive clients (closed loop), {args.warmup:g} s "
        f"warm-up, then {args.rounds} rounds alternating the two routes (ABBA), {args.seconds:g} s "
        f"per route in all; one uvicorn worker; raw HTTP/1.1 load generator on {loop} in its own "
        f"process; {labels} labels of {args.models} models seeded; badge paths cycle over "
        f"{len(badge_paths(args.models))} URLs (every model; default, `?metric=co2e`, "
        f"`?phase=training`); constant route placed `{args.constant_position}` in the routing "
        "table.",
        "",
        "Machine: " + "; ".join(f"{k}: {v}" for k, v in machine.items()),
        "",
        "| | `GET /badge/bench/m<i>.svg` | `GET /bench/constant.svg` | badge / constant |",
        "|---|---:|---:|---:|",
        f"| requests/s | {f(badge.rate)} | {f(constant.rate)} | {f(ratio, 2)} |",
        f"| requests/s, median of the {len(pairs)} paired windows | | | {f(median_pair, 2)} "
        f"({', '.join(f(r, 2) for r in pairs)}) |",
        f"| latency p50 (ms) | {f(badge.p50_ms, 2)} | {f(constant.p50_ms, 2)} | |",
        f"| latency p99 (ms) | {f(badge.p99_ms, 2)} | {f(constant.p99_ms, 2)} | |",
        f"| 200s in the windows | {badge.ok} | {constant.ok} | |",
        f"| errors | {badge.errors} | {constant.errors} | |",
        f"| server CPU ms per request | {f(badge.server_cpu_ms, 3)} | "
        f"{f(constant.server_cpu_ms, 3)} | {f(cpu_ratio, 2)} (constant / badge) |",
        f"| PostgreSQL CPU ms per request | {f(badge.postgres_cpu_ms, 4)} | "
        f"{f(constant.postgres_cpu_ms, 4)} | |",
        f"| load generator CPU ms per request | {f(badge.loadgen_cpu_ms, 3)} | "
        f"{f(constant.loadgen_cpu_ms, 3)} | |",
        f"| server busy (cores) | {f(badge.server_cores, 2)} | {f(constant.server_cores, 2)} | |",
        f"| other processes (cores) | {f(badge.other_cores, 2)} | {f(constant.other_cores, 2)} | |",
        "",
    ]
    for s in (badge, constant):
        if s.other_cores > 0.15:
            out += [
                f"WARNING: other processes used {s.other_cores:.2f} cores during the {s.name} "
                "windows: the machine was not quiet, the figures are perturbed.",
                "",
            ]
    for s in (badge, constant):
        for example in s.examples:
            out.append(f"- {s.name} error example: `{example}`")
    verdict = "MET" if met else "NOT MET"
    out.append(
        f"Target (badge requests/s >= {TARGET_RATIO} x the constant route's, no errors): "
        f"**{verdict}** (ratio {f(ratio, 2)})."
    )
    return "\n".join(out) + "\n", met


# --------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (32)")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured s per route (15)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up (3 s, badges)")
    parser.add_argument("--rounds", type=int, default=6, help="windows per route, alternating (6)")
    parser.add_argument("--models", type=int, default=6, help="models seeded (6)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CARBONLABEL_BENCH_BADGES_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="SQLAlchemy URL of a dedicated database: its public schema is dropped",
    )
    parser.add_argument(
        "--constant-position",
        choices=("beside", "first", "last"),
        default="beside",
        help="where the constant route sits in the routing table: beside (default: first in the "
        "badge routes' router, so both take the same routing steps), first (the app's first "
        "route: the cheapest match), last (after every route)",
    )
    parser.add_argument("--output", type=Path, help="also write the markdown report here")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(BENCH_DIR))
    import ingest
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from sqlalchemy.engine import make_url

    command = " ".join([".venv/bin/python", "bench/badges.py", *map(shlex.quote, sys.argv[1:])])
    pg_version = ingest.reset_database(args.database_url)
    db_name = str(make_url(args.database_url).database)
    print(f"database {db_name} reset and migrated (PostgreSQL {pg_version})", flush=True)

    port = ingest.free_port()
    public_url = f"http://127.0.0.1:{port}"
    admin_token = secrets.token_urlsafe(32)
    private_raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONLABEL_")} | {
        "CARBONLABEL_DATABASE_URL": args.database_url,
        "CARBONLABEL_ADMIN_TOKEN": admin_token,
        "CARBONLABEL_LOG_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
        "CARBONLABEL_PUBLIC_URL": public_url,
        "CARBONLABEL_RATE_LIMIT_PER_MINUTE": "0",
        "CARBONLABEL_RATE_LIMIT_PER_ADDRESS_PER_MINUTE": "0",
        "BENCH_CONSTANT_POSITION": args.constant_position,
    }
    uvicorn_args = ["--app-dir", str(BENCH_DIR), "--factory", "badges:create_bench_app"]
    uvicorn_args += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    uvicorn_args += ["--no-access-log", "--timeout-graceful-shutdown", "10"]
    with tempfile.TemporaryDirectory(prefix="carbonlabel-bench-badges-") as tmp:
        server = ingest.Server("registry", uvicorn_args, env, Path(tmp))
        try:
            server.wait_healthy(f"{public_url}/healthz")
            vendor_token = ingest.setup_vendor(public_url, admin_token, private_raw)
            labels = seed_labels(public_url, vendor_token, private_raw, args.models)
            print(f"server up (pid {server.pid}); {labels} labels seeded", flush=True)
            paths = badge_paths(args.models)
            per_window = args.seconds / args.rounds
            phases = [Phase("warmup", [*paths, CONSTANT_PATH], args.warmup)]
            for round_ in range(args.rounds):
                order = ("badge", "constant") if round_ % 2 == 0 else ("constant", "badge")
                for name in order:
                    targets = paths if name == "badge" else [CONSTANT_PATH]
                    phases.append(Phase(name, targets, per_window))
            plan = LoadPlan("127.0.0.1", port, args.clients, phases, server.pid, db_name)
            print(
                f"driving {args.clients} clients: {args.warmup:g} s warm-up, then "
                f"{args.rounds} x ({per_window:g} s badge + {per_window:g} s constant)",
                flush=True,
            )
            results, loop = drive(plan)
        finally:
            server.stop()
    badge = summarize("badge", [r for r in results if r.name == "badge"])
    constant = summarize("constant", [r for r in results if r.name == "constant"])
    report, met = render(
        args, command, ingest.machine_info(pg_version), results, badge, constant, labels, loop
    )
    print()
    print(report)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report)
        print(f"written to {args.output}")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
