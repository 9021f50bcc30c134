"""In-process cost of one label ingest, without HTTP: where the registry's CPU goes.

    .venv/bin/python bench/profile_ingest.py [--labels 2000] [--database-url URL] [--pyinstrument]

Resets the same dedicated database as ``ingest.py`` (its public schema is dropped), creates the
vendor and key through the services, pre-signs ``--labels`` envelopes, then, in one thread:

1. times each pure stage of ``registry.services.ingest.ingest`` on every envelope (parse, signature,
   JSON Schema, semantic checks, results recomputation): no database;
2. runs the whole path a request takes after HTTP, per label: a session, ``authenticate``,
   ``ingest`` (with its queries and insert), ``commit``; optionally under pyinstrument.

Prints mean milliseconds per label for each.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import DEFAULT_DATABASE_URL, VENDOR, presign, reset_database

AUDIENCE = "http://registry.bench.invalid"


def _stage_times(bodies: list[bytes], public_key_b64: str) -> dict[str, float]:
    from registry.services.ingest import _semantic_issues
    from schemas import check_results, validate_statement
    from schemas.dsse import decode_statement, load_public_key, parse_envelope, verify_signature

    stages: dict[str, list[float]] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        value = fn()
        stages.setdefault(name, []).append(time.perf_counter() - t0)
        return value

    for body in bodies:
        envelope = timed("parse_envelope + decode_statement", lambda b=body: parse_envelope(b))
        statement = timed(
            "parse_envelope + decode_statement", lambda e=envelope: decode_statement(e)
        )
        ok = timed(
            "load_public_key + verify_signature (Ed25519)",
            lambda e=envelope: verify_signature(e, load_public_key(public_key_b64)),
        )
        assert ok
        issues = timed(
            "validate_statement (JSON Schema)", lambda s=statement: validate_statement(s)
        )
        assert not issues, issues
        timed("_semantic_issues", lambda s=statement: _semantic_issues(s))
        mismatches = timed("check_results", lambda s=statement: check_results(s["predicate"]))
        assert not mismatches
    # parse/decode were recorded as two entries per label: fold them into one per label
    out = {}
    for name, values in stages.items():
        out[name] = 1000.0 * sum(values) / len(bodies)
    return out


def _instrument(module: Any, names: list[str], into: dict[str, list[float]]) -> None:
    """Replace ``module.<name>`` by a wrapper that records each call's wall time in ``into``."""

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                into.setdefault(name, []).append(time.perf_counter() - t0)

        return timed

    for name in names:
        setattr(module, name, wrap(name, getattr(module, name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--labels", type=int, default=2000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CARBONLABEL_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
    )
    parser.add_argument("--pyinstrument", action="store_true", help="profile the full loop")
    args = parser.parse_args()

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from sqlmodel import Session

    from registry.db import make_engine
    from registry.services import keys as key_service
    from registry.services import vendors as vendor_service
    from registry.services.ingest import ingest
    from schemas.dsse import keyid_for, raw_public_key

    try:
        from schemas.dsse import key_proof_message as proof_message
    except ImportError:  # older layout
        from registry.services.keys import proof_message  # type: ignore[attr-defined,no-redef]

    private = Ed25519PrivateKey.generate()
    private_raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    bodies = presign(args.labels, AUDIENCE, private_raw, workers=os.cpu_count() or 1)
    reset_database(args.database_url)
    engine = make_engine(args.database_url)
    raw = raw_public_key(private.public_key())
    public_key_b64 = base64.b64encode(raw).decode()
    with Session(engine, expire_on_commit=False) as session:
        vendor, token = vendor_service.create_vendor(session, slug=VENDOR)
        key_service.register_key(
            session,
            vendor=vendor,
            public_key_b64=public_key_b64,
            proof_b64=base64.b64encode(
                private.sign(proof_message(AUDIENCE, VENDOR, keyid_for(raw)))
            ).decode(),
            registry=AUDIENCE,
        )
        session.commit()

    print(f"{len(bodies)} labels, one thread, no HTTP\n")
    print("pure stages (no database), mean ms per label:")
    stages = _stage_times(bodies, public_key_b64)
    for name, ms in stages.items():
        print(f"  {ms:7.3f}  {name}")
    print(f"  {sum(stages.values()):7.3f}  sum")

    import registry.services.ingest as ingest_module

    inner: dict[str, list[float]] = {}
    _instrument(
        ingest_module,
        ["_existing", "_key_for", "validate_statement", "check_results", "_store"],
        inner,
    )
    per_label: list[float] = []
    parts: dict[str, list[float]] = {"authenticate": [], "ingest": [], "commit": []}

    def loop() -> None:
        for body in bodies:
            t0 = time.perf_counter()
            with Session(engine, expire_on_commit=False) as session:
                caller = vendor_service.authenticate(session, token)
                assert caller is not None
                t1 = time.perf_counter()
                result = ingest(session, vendor=caller, body=body, audience=AUDIENCE)
                t2 = time.perf_counter()
                session.commit()
                t3 = time.perf_counter()
            assert result.created
            per_label.append(time.perf_counter() - t0)
            parts["authenticate"].append(t1 - t0)
            parts["ingest"].append(t2 - t1)
            parts["commit"].append(t3 - t2)

    cpu0 = time.process_time()
    if args.pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        loop()
        profiler.stop()
    else:
        loop()
    cpu_ms = 1000.0 * (time.process_time() - cpu0) / len(bodies)
    print("\nsession + authenticate + ingest + commit against PostgreSQL, ms per label:")
    for name, values in parts.items():
        print(f"  {1000 * statistics.fmean(values):7.3f}  {name} (wall, mean)")
    for name, values in inner.items():
        print(f"  {1000 * sum(values) / len(bodies):7.3f}    ingest -> {name} (wall, mean)")
    print(f"  {1000 * statistics.fmean(per_label):7.3f}  total wall, mean")
    print(f"  {1000 * statistics.median(per_label):7.3f}  total wall, median")
    print(f"  {cpu_ms:7.3f}  CPU of this process per label")
    print(f"  {1.0 / statistics.fmean(per_label):7.1f}  labels/s in one thread")
    if args.pyinstrument:
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    engine.dispose()


if __name__ == "__main__":
    main()
