"""A/B benchmark (not a test): the read routes of two revisions of the registry, measured in
turns on the same database, machine and minute.

    .venv/bin/python bench/ab.py --base REV [--rounds 6] [--seconds 4] [--output FILE]

On a shared VM the run-to-run noise is larger than many changes: the same code's server CPU per
request varied by 15 % between two runs of ``bench/scale.py`` an hour apart. So a change is
measured against its base in alternation: ``git worktree`` checks out ``--base`` into a temporary
folder, and two registries (the base, and this working tree) serve the database of
``bench/scale.py`` (``--database-url``, left as it is) with their caches off, each one worker.
For each route, each round drives one server then the other (the order alternates) with
``--clients`` keep-alive connections (``bench/badges.py``'s load generator: 1 s of warm-up,
then ``--seconds`` measured), over the URLs ``bench/scale.py`` uses. The table gives each side's
median over the rounds of the rate, the p95 and the server's CPU per request, and the change.
The base's code runs with this tree's virtual environment and the database's schema as it is
(the database may be at a newer migration than the base knows).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import badges  # noqa: E402  (bench/ is not a package)
import ingest  # noqa: E402
import scale  # noqa: E402
import scale_data  # noqa: E402

ROUTES = (
    "ranking",
    "ranking csv",
    "leaderboard",
    "compare",
    "vendor page",
    "model page",
    "label",
    "labels list",
    "badge uncached",
)


@dataclass(frozen=True)
class Side:
    rate: float
    p95_ms: float
    server_cpu_ms: float


@contextmanager
def worktree(rev: str) -> Any:
    """``rev`` checked out in a temporary folder (removed afterwards)."""
    folder = Path(tempfile.mkdtemp(prefix="carbonlabel-ab-")) / "base"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(folder), rev],
        check=True,
    )
    try:
        yield folder
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)], check=False
        )


def label_ids(url: str, count: int = 500) -> list[str]:
    import psycopg

    with psycopg.connect(ingest.libpq_url(url)) as conn:
        rows = conn.execute("SELECT id FROM labels ORDER BY id LIMIT %s", (count,)).fetchall()
    return [str(r[0]) for r in rows]


def one(port: int, pid: int, database: str, name: str, paths: list[str], seconds: float) -> Side:
    phases = [badges.Phase("warmup", paths, 1.0), badges.Phase(name, paths, seconds)]
    results, _ = badges.drive(badges.LoadPlan("127.0.0.1", port, 8, phases, pid, database))
    (measured,) = [r for r in results if r.name == name]
    if measured.errors or not measured.ok:
        raise SystemExit(f"{name}: {measured.errors} errors {measured.error_examples[:2]}")
    latencies = sorted(measured.latencies_ms)
    return Side(
        rate=measured.ok / measured.seconds,
        p95_ms=ingest.percentile(latencies, 95),
        server_cpu_ms=measured.server_cpu_s * 1000 / measured.ok,
    )


def median(sides: list[Side], attr: str) -> float:
    return float(statistics.median(getattr(s, attr) for s in sides))


def main(argv: list[str] | None = None) -> int:
    from sqlalchemy.engine import make_url

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=6, help="turns per route (6)")
    parser.add_argument("--seconds", type=float, default=4.0, help="measured s per turn (4)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CARBONLABEL_SCALE_DATABASE_URL", scale.DEFAULT_DATABASE_URL),
        help="bench/scale.py's database (read only)",
    )
    parser.add_argument("--output", type=Path, help="markdown report")
    args = parser.parse_args(argv)
    url = args.database_url
    database = str(make_url(url).database)
    shape = scale_data.Shape.of(1_000_000)
    routes = scale.route_paths(shape, label_ids(url))
    found: dict[str, dict[str, list[Side]]] = {r: {"base": [], "new": []} for r in ROUTES}
    with ExitStack() as stack:
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        base_dir = stack.enter_context(worktree(args.base))
        servers = {
            "base": stack.enter_context(scale.server(url, 1, False, log_dir, base_dir)),
            "new": stack.enter_context(scale.server(url, 1, False, log_dir, ROOT)),
        }
        for route in ROUTES:
            for turn in range(args.rounds):
                order = ("base", "new") if turn % 2 == 0 else ("new", "base")
                for side in order:
                    proc, port = servers[side]
                    found[route][side].append(
                        one(port, proc.pid, database, route, routes[route], args.seconds)
                    )
            b, n = found[route]["base"], found[route]["new"]
            print(
                f"  {route}: {median(b, 'rate'):.0f} -> {median(n, 'rate'):.0f} req/s",
                flush=True,
            )
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/ab.py", *sys.argv[1:]])
    lines = [
        f"### A/B run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        f"Command: `{command}` (new: the working tree at {head})",
        "",
        f"Settings: caches off, one worker each, 8 keep-alive connections, {args.rounds} turns "
        f"of {args.seconds:g} s per route and side (alternating), medians over the turns.",
        "",
        "Machine: "
        + "; ".join(f"{k}: {v}" for k, v in ingest.machine_info(scale.pg_version(url)).items()),
        "",
        "| route | base req/s | new req/s | change | base p95 ms | new p95 ms "
        "| base server CPU ms | new server CPU ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for route in ROUTES:
        b, n = found[route]["base"], found[route]["new"]
        change = median(n, "rate") / median(b, "rate") - 1
        lines.append(
            f"| {route} | {median(b, 'rate'):,.0f} | {median(n, 'rate'):,.0f} | {change:+.0%} "
            f"| {median(b, 'p95_ms'):.1f} | {median(n, 'p95_ms'):.1f} "
            f"| {median(b, 'server_cpu_ms'):.2f} | {median(n, 'server_cpu_ms'):.2f} |"
        )
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.output:
        args.output.write_text(text)
        print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
