"""Scale benchmark (not a test): the read routes at 10k, 100k and 1M labels, through HTTP.

    .venv/bin/python bench/scale.py [--sizes 10000,100000,1000000] [--seconds 5] [--reuse]

For each size N:

1. Create the dedicated database ``carbonlabel_scale`` if needed (``test`` and ``postgres`` are
   refused), drop and recreate its ``public`` schema, run the migrations, and fill it by COPY
   with N labels of the issue-11 shape (``bench/scale_data.py``: N/100 vendors, N/10 models,
   suite-1 tasks x phases x 13 hardware classes, a quarter current, a real transparency log,
   real signatures on a sample of about 1,000 labels). ``--reuse`` keeps a database that already
   holds exactly that shape.
2. Start the registry (``uvicorn --factory registry.main:create_app``, rate limits off) and drive
   each route with ``--clients`` keep-alive connections (``bench/badges.py``'s load generator:
   raw HTTP/1.1, its own process): ``--warmup`` s of warm-up then ``--seconds`` s measured per
   route, cycling over a deterministic sample of real vendors, models, labels and task/phase
   pairs. ``/healthz``, a constant route of the same app, is measured first and last, and each
   route's p95 is also given as a ratio to its p95. Three servers in turn: one worker with its
   caches off (``CARBONLABEL_BADGE_CACHE_TTL_S=0``, ``CARBONLABEL_PAGE_CACHE_MAX_BYTES=1``: the
   main table and the targets; the "uncached badge" is this server's, over 200 models), one
   worker as deployed (caches on; the "cached badge" asks for one URL again and again; each
   route's warm-up lasts long enough to render each of its URLs once), and two
   workers with the caches off for the ranking, the leaderboard and the badge.
3. Checks (any failure: exit 2): row counts and references, the log's checkpoint (signature,
   size and the root computed while loading), inclusion proofs of a few entries (RFC 9162
   verification), every non-200 answer, and the sampled labels' envelopes (signature, schema,
   results) under their vendor's registered key.
4. ``EXPLAIN (ANALYZE, BUFFERS)`` of the SQL that one request of each route runs (captured from
   the app in-process; ``--no-explain`` skips it): scan types, sorts and time per statement.

Targets (issue 11; a miss prints FAIL but does not change the exit status): p95 at 1M labels
<= 25 ms for the ranking (JSON and CSV), ``/v1/labels`` and ``/v1/labels/{id}``; <= 60 ms for
``/``, ``/compare``, ``/vendors/{v}`` and ``/models/{v}/{m}``; <= 10 ms for the uncached badge;
and each route's p95 at the largest size within 1.5x of its p95 at the smallest.
"""

from __future__ import annotations

import argparse
import base64
import math
import os
import secrets
import shlex
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import badges  # noqa: E402  (bench/ is not a package)
import ingest  # noqa: E402
import scale_data  # noqa: E402
from scale_checks import check_http, explain  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/carbonlabel_scale"
CONSTANT = "/healthz"
GROWTH_LIMIT = 1.5
# route name -> p95 target at 1M labels (ms); None: no target
TARGETS_MS: dict[str, float | None] = {
    "ranking": 25, "ranking csv": 25, "leaderboard": 60, "compare": 60, "vendor page": 60,
    "model page": 60, "label": 25, "labels list": 25, "badge cached": None, "badge uncached": 10,
}  # fmt: skip
TWO_WORKER_ROUTES = ("ranking", "leaderboard", "badge uncached")


@dataclass
class Stats:
    route: str
    example: str
    ok: int
    errors: int
    rate: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    server_cpu_ms: float  # per request (one worker: the server process)
    postgres_cpu_ms: float  # per request (the database's backends)
    other_cores: float  # CPU of other processes on the machine during the windows
    examples: list[str] = field(default_factory=list)


@dataclass
class SizeResult:
    labels: int
    shape: scale_data.Shape
    generation_s: float | None
    timings_s: dict[str, float]
    off: dict[str, Stats]  # one worker, caches off (the main table)
    on: dict[str, Stats]  # one worker, caches on (as deployed)
    two: dict[str, Stats]  # two workers, caches off
    failures: list[str]
    explain: list[str]


def route_paths(
    shape: scale_data.Shape, label_ids: list[str], bust: bool = False
) -> dict[str, list[str]]:
    """Every route's request paths: a deterministic sample of real rows and task/phase pairs.

    ``bust``: each task/phase query also in 16 versions (``&cb=k``, a parameter the routes
    ignore), so that concurrent requests are seldom for the same URL and the page cache's
    coalescing of identical requests in flight does not serve them (see ``server``)."""
    pairs = sorted({(task, phase) for task, phase, _ in scale_data.combos()})
    tp = [f"task={t}&phase={p}{f'&cb={k}' if k else ''}" for k in range(16 if bust else 1)
          for t, p in pairs]  # fmt: skip
    vendors = [scale_data.vendor_slug(v) for v in range(0, shape.vendors, -(-shape.vendors // 200))]
    models = [
        (scale_data.vendor_slug(m % shape.vendors), scale_data.model_name(m))
        for m in range(0, shape.models, -(-shape.models // 200))
    ]
    trios = [",".join(vendors[(i + k * 7) % len(vendors)] for k in range(3)) for i in range(60)]
    return {
        CONSTANT: [CONSTANT],
        "ranking": [f"/v1/vendors?{q}" for q in tp],
        "ranking csv": [f"/v1/vendors?{q}&format=csv" for q in tp],
        "leaderboard": [f"/?{q}" for q in tp],
        "compare": [
            f"/compare?task={t}&phase={p}&vendors={trio}"
            for i, trio in enumerate(trios)
            for t, p in [pairs[i % len(pairs)]]
        ],
        "vendor page": [f"/vendors/{v}" for v in vendors],
        "model page": [f"/models/{v}/{m}" for v, m in models],
        "label": [f"/v1/labels/{i}" for i in label_ids],
        "labels list": [f"/v1/labels?{q}&current=true" for q in tp],
        "badge cached": [f"/badge/{models[0][0]}/{models[0][1]}.svg"],
        "badge uncached": [f"/badge/{v}/{m}.svg" for v, m in models],
    }


def reset_database(url: str) -> str:
    """Create the database if needed, drop and recreate its public schema, migrate."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    from registry.db import upgrade

    name = make_url(url).database
    if not name or name in ingest.REFUSED_DATABASES:
        raise SystemExit(f"refusing to wipe database {name!r}: use a dedicated one")
    with psycopg.connect(ingest.libpq_url(url, "postgres"), autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(ingest.libpq_url(url), autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    upgrade(url)
    return pg_version(url)


def pg_version(url: str) -> str:
    import psycopg

    with psycopg.connect(ingest.libpq_url(url)) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def reused(url: str, shape: scale_data.Shape) -> scale_data.LoadReport | None:
    """The load report of a database that already holds ``shape``, or None."""
    import psycopg
    from sqlmodel import SQLModel

    import registry.models  # noqa: F401  (the tables)

    try:
        with psycopg.connect(ingest.libpq_url(url)) as conn:
            query = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            if set(SQLModel.metadata.tables) - {r[0] for r in conn.execute(query)}:
                return None  # made by older migrations
            head = conn.execute("SELECT tree_size, root_hash FROM log_head").fetchone()
            labels = conn.execute("SELECT count(*) FROM labels").fetchone()
            if (
                not head
                or not labels
                or (labels[0], head[0]) != (shape.labels, shape.labels + shape.vendors)
            ):
                return None
            report = scale_data.LoadReport(tree_size=head[0], root_hash=bytes(head[1]))
            every = max(1, shape.labels // 500)
            query = "SELECT id FROM labels WHERE (log_index - %s) %% %s = 0 ORDER BY log_index"
            report.label_ids = [r[0] for r in conn.execute(query, (shape.vendors, every))]
            sampled = conn.execute(query, (shape.vendors, shape.sample_every))
            report.sample_ids = [r[0] for r in sampled]
    except psycopg.Error:
        return None
    return report


@contextmanager
def server(url: str, workers: int, caches: bool, log_dir: Path, app_dir: Path | None = None) -> Any:
    """The registry under uvicorn; ``caches`` False: no badge cache, no page cache; ``app_dir``:
    the code of another checkout (``bench/ab.py``) instead of this one."""
    port = ingest.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONLABEL_")} | {
        "CARBONLABEL_DATABASE_URL": url,
        "CARBONLABEL_ADMIN_TOKEN": secrets.token_urlsafe(32),
        "CARBONLABEL_LOG_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
        "CARBONLABEL_PUBLIC_URL": scale_data.REGISTRY_URL,
        "CARBONLABEL_RATE_LIMIT_PER_MINUTE": "0",
        "CARBONLABEL_RATE_LIMIT_PER_ADDRESS_PER_MINUTE": "0",
    }
    if not caches:
        # 1 byte: no page is stored (a body must fit in an eighth of it). Not 0: with 0,
        # registry/http_cache.py answers 500 to concurrent requests for the same URL (KeyError in
        # PageCache.rendering: in_flight() is off, so two renders register the same ETag).
        env |= {"CARBONLABEL_BADGE_CACHE_TTL_S": "0", "CARBONLABEL_PAGE_CACHE_MAX_BYTES": "1"}
    args = ["--factory", "registry.main:create_app", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--workers", str(workers), "--no-access-log", "--timeout-graceful-shutdown", "10"]
    name = f"registry-{workers}w-{caches}"
    if app_dir is not None:
        env["PYTHONPATH"] = str(app_dir)
        args += ["--app-dir", str(app_dir)]
        name += f"-{app_dir.name}"
    proc = ingest.Server(name, args, env, log_dir)
    try:
        proc.wait_healthy(f"http://127.0.0.1:{port}{CONSTANT}")
        yield proc, port
    finally:
        proc.stop()


def measure(
    port: int,
    pid: int,
    database: str,
    routes: dict[str, list[str]],
    args: argparse.Namespace,
    warmups_s: dict[str, float] | None = None,
) -> dict[str, Stats]:
    """Each route: a warm-up window (``args.warmup``, or longer where ``warmups_s`` says), then
    a measured one; the constant route first and last."""
    routes = {CONSTANT: [CONSTANT], **routes}
    names = [CONSTANT, *(r for r in routes if r != CONSTANT), CONSTANT]
    phases = []
    for name in names:
        warmup_s = max(args.warmup, (warmups_s or {}).get(name, 0.0))
        phases.append(badges.Phase("warmup", routes[name], warmup_s))
        phases.append(badges.Phase(name, routes[name], args.seconds))
    plan = badges.LoadPlan("127.0.0.1", port, args.clients, phases, pid, database)
    results, _ = badges.drive(plan)
    out = {}
    for name in dict.fromkeys(names):
        parts = [r for r in results if r.name == name]
        latencies = sorted(x for p in parts for x in p.latencies_ms)
        seconds = sum(p.seconds for p in parts)
        ok = sum(p.ok for p in parts)
        out[name] = Stats(
            route=name,
            example=routes[name][0],
            ok=ok,
            errors=sum(p.errors for p in parts),
            rate=ok / seconds if seconds else math.nan,
            p50_ms=ingest.percentile(latencies, 50),
            p95_ms=ingest.percentile(latencies, 95),
            p99_ms=ingest.percentile(latencies, 99),
            server_cpu_ms=sum(p.server_cpu_s for p in parts) * 1000 / max(ok, 1),
            postgres_cpu_ms=sum(p.postgres_cpu_s for p in parts) * 1000 / max(ok, 1),
            other_cores=max(
                0.0,
                sum(
                    p.machine_busy_s - p.server_cpu_s - p.postgres_cpu_s - p.loadgen_cpu_s
                    for p in parts
                )
                / max(seconds, 1e-9),
            ),
            examples=[e for p in parts for e in p.error_examples][:3],
        )
        print(f"    {name}: p95 {out[name].p95_ms:.2f} ms, {out[name].rate:.0f}/s", flush=True)
    return out


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def size_table(result: SizeResult) -> list[str]:
    s = result.shape
    gen = "reused" if result.generation_s is None else f"{result.generation_s:.0f} s"
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings_s.items())
    out = [
        f"#### {result.labels:,} labels",
        "",
        f"{s.vendors:,} vendors, {s.models:,} models, {s.groups:,} current labels, real "
        f"signatures on every {s.sample_every:,}th label; generated in {gen}"
        + (f" ({steps})" if steps else "")
        + ".",
        "",
        "Caches off (`CARBONLABEL_BADGE_CACHE_TTL_S=0`, `CARBONLABEL_PAGE_CACHE_MAX_BYTES=1`), "
        "one worker; then the same server with its caches on (as deployed):",
        "",
        "| route | example | p50 ms | p95 ms | p99 ms | req/s | p95 / constant | target p95 "
        "(1M) | | server / PostgreSQL CPU ms per request | other processes (cores) | caches on: "
        "p95 ms | caches on: req/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for name in dict.fromkeys([*result.off, *result.on]):
        stats, on = result.off.get(name), result.on.get(name)
        shown = stats or on
        assert shown is not None
        base = (result.off if stats else result.on)[CONSTANT]
        target = TARGETS_MS.get(name)
        verdict = (
            "" if target is None or not stats else ("PASS" if stats.p95_ms <= target else "FAIL")
        )
        cells = [f"{name} | `{shown.example[:80]}`"]
        if stats:
            cells += [_f(stats.p50_ms, 2), _f(stats.p95_ms, 2), _f(stats.p99_ms, 2)]
            cells += [_f(stats.rate, 0), _f(stats.p95_ms / base.p95_ms, 1)]
        else:
            cells += ["-"] * 5
        cells += ["-" if target is None else f"{target:g}", verdict]
        cells += [f"{_f(shown.server_cpu_ms, 2)} / {_f(shown.postgres_cpu_ms, 2)}"]
        cells += [_f(shown.other_cores, 2)]
        cells += [_f(on.p95_ms, 2), _f(on.rate, 0)] if on else ["-", "-"]
        out.append("| " + " | ".join(cells) + " |")
    if result.two:
        out += ["", "One worker against two (caches off in both):", ""]
        out += ["| route | 1 worker req/s | 2 workers req/s | x | 1 worker p95 | 2 workers p95 |"]
        out += ["|---|---:|---:|---:|---:|---:|"]
        for name in TWO_WORKER_ROUTES:
            a, b = result.off[name], result.two[name]
            out.append(
                f"| {name} | {_f(a.rate, 0)} | {_f(b.rate, 0)} | {_f(b.rate / a.rate, 2)} | "
                f"{_f(a.p95_ms, 2)} | {_f(b.p95_ms, 2)} |"
            )
    if result.explain:
        out += ["", "EXPLAIN (ANALYZE, BUFFERS) of one request per route:", "", *result.explain]
    out += ["", f"Checks: {'all passed' if not result.failures else 'FAILED'}."]
    out += [f"- {failure}" for failure in result.failures]
    return [*out, ""]


def growth_table(results: list[SizeResult]) -> list[str]:
    first, last = results[0], results[-1]
    out = [
        f"#### Growth: p95 at {last.labels:,} over p95 at {first.labels:,} labels "
        f"(target <= {GROWTH_LIMIT})",
        "",
        "| route | p95 small | p95 large | ratio | |",
        "|---|---:|---:|---:|---|",
    ]
    for name in TARGETS_MS:
        a, b = (r.off[name].p95_ms if name in r.off else r.on[name].p95_ms for r in (first, last))
        ratio = b / a if a else math.nan
        verdict = "PASS" if ratio <= GROWTH_LIMIT else "FAIL"
        out.append(f"| {name} | {_f(a, 2)} | {_f(b, 2)} | {_f(ratio, 2)} | {verdict} |")
    return [*out, ""]


def _cache_warmups(
    routes: dict[str, list[str]], uncached: dict[str, Stats] | None
) -> dict[str, float]:
    """With the caches on, a route's warm-up lasts long enough to render each of its URLs once
    (at the caches-off rate, and half again): the window then measures the cache as deployed,
    not the first render of each URL (200 vendor pages take about 6 s to render once)."""
    if uncached is None:
        return {}
    return {
        name: 1.5 * len(urls) / uncached[name].rate
        for name, urls in routes.items()
        if name in uncached and uncached[name].rate > 0
    }


def run_size(labels: int, args: argparse.Namespace, log_dir: Path) -> SizeResult:
    from sqlalchemy.engine import make_url

    url, shape = args.database_url, scale_data.Shape.of(labels)
    database = str(make_url(url).database)
    dsn = ingest.libpq_url(url)
    print(f"== {labels:,} labels: {shape}", flush=True)
    report = reused(url, shape) if args.reuse else None
    generation_s: float | None = None
    if report is None:
        started = time.perf_counter()
        reset_database(url)
        report = scale_data.load(dsn, shape)
        generation_s = time.perf_counter() - started
        print(f"  generated in {generation_s:.1f} s", flush=True)
    failures = scale_data.check_counts(dsn, shape)
    routes = route_paths(shape, report.label_ids)
    busted = route_paths(shape, report.label_ids, bust=True)
    runs: dict[str, dict[str, Stats]] = {}
    plans = [("off", 1, False), ("on", 1, True)]
    plans += [] if args.no_workers else [("two", 2, False)]
    for name, workers, caches in plans:
        wanted = TWO_WORKER_ROUTES if name == "two" else routes
        skip = "badge cached" if not caches else "badge uncached"  # a cache-off server has none
        with server(url, workers, caches, log_dir) as (proc, port):
            print(f"  {workers} worker(s), caches {'on' if caches else 'off'}:", flush=True)
            paths = routes if caches else busted
            chosen = {k: paths[k] for k in wanted if k not in (skip, CONSTANT)}
            warmups_s = _cache_warmups(chosen, runs.get("off")) if caches else None
            runs[name] = measure(port, proc.pid, database, chosen, args, warmups_s)
            if name == "off":
                failures += check_http(port, url, report)
    for stats in [s for run in runs.values() for s in run.values()]:
        if stats.errors or not stats.ok:
            failures.append(f"{stats.route}: {stats.errors} errors {stats.examples}, {stats.ok} ok")
    lines = [] if args.no_explain else explain(url, routes, skip=(CONSTANT, "badge cached"))
    return SizeResult(
        labels, shape, generation_s, report.timings_s, runs["off"], runs["on"],
        runs.get("two", {}), failures, lines,
    )  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="label counts")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured s per route (5)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up s per route (2)")
    parser.add_argument("--clients", type=int, default=8, help="keep-alive connections (8)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CARBONLABEL_SCALE_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="SQLAlchemy URL of a dedicated database: its public schema is dropped",
    )
    parser.add_argument("--reuse", action="store_true", help="keep a database of the same shape")
    parser.add_argument("--no-explain", action="store_true", help="skip the EXPLAIN summaries")
    parser.add_argument("--no-workers", action="store_true", help="skip the two-worker runs")
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    parser.add_argument(
        "--output", type=Path, default=BENCH_DIR / "results" / f"scale-{day}.md", help="markdown"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = " ".join([".venv/bin/python", "bench/scale.py", *map(shlex.quote, sys.argv[1:])])
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    results: list[SizeResult] = []
    with tempfile.TemporaryDirectory(prefix="carbonlabel-scale-") as tmp:
        for labels in sizes:
            results.append(run_size(labels, args, Path(tmp)))
            print("\n".join(size_table(results[-1])), flush=True)
    machine = ingest.machine_info(pg_version(args.database_url))
    out = [f"### Scale run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}", ""]
    out += [f"Command: `{command}`", ""]
    out += [
        f"Settings: {args.clients} keep-alive connections, {args.warmup:g} s warm-up and "
        f"{args.seconds:g} s measured per route (caches on: a warm-up long enough to render "
        f"each URL of the route once), one uvicorn worker unless said; constant route "
        f"`{CONSTANT}`.",
        "",
        "Machine: " + "; ".join(f"{k}: {v}" for k, v in machine.items()),
        "",
    ]
    for result in results:
        out += size_table(result)
    if len(results) > 1:
        out += growth_table(results)
        print("\n".join(growth_table(results)))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(out))
    print(f"written to {args.output}")
    failed = [f for r in results for f in r.failures]
    if failed:
        print(f"ERROR: {len(failed)} checks failed", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
