"""The scale benchmark's checks through HTTP (the log's checkpoint and inclusion proofs, the
sampled labels' signatures) and its ``EXPLAIN (ANALYZE, BUFFERS)`` summaries of each route's SQL
(``bench/scale.py``)."""

from __future__ import annotations

import base64
import os
import re
import secrets
from typing import Any

import ingest
import scale_data


def check_http(port: int, url: str, report: scale_data.LoadReport) -> list[str]:
    """The log (checkpoint, inclusion proofs) and the sampled labels' signatures."""
    import httpx
    import psycopg

    from schemas import merkle
    from schemas.dsse import load_public_key
    from schemas.note import open_checkpoint
    from schemas.verify import VerifyExit, verify_envelope_bytes

    failures = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0) as client:
        info = client.get("/v1/log").json()
        checkpoint = open_checkpoint(client.get("/v1/log/checkpoint").text, info["verifier_key"])
        root = base64.b64decode(info["root_hash"])
        if (checkpoint.tree_size, checkpoint.root_hash) != (report.tree_size, report.root_hash):
            failures.append(f"log checkpoint {checkpoint.tree_size} differs from the loaded log")
        if root != report.root_hash or info["tree_size"] != report.tree_size:
            failures.append("GET /v1/log: size or root differs from the loaded log")
        size = report.tree_size
        for index in sorted({0, 1, size // 3, size // 2, size - 2, size - 1}):
            proof = client.get("/v1/log/proof/inclusion", params={"index": index}).json()
            leaf = base64.b64decode(client.get(f"/v1/log/entries/{index}").json()["leaf"])
            path = [base64.b64decode(h) for h in proof["proof"]]
            if not merkle.verify_inclusion(merkle.leaf_hash(leaf), index, size, path, root):
                failures.append(f"inclusion proof of entry {index} does not verify")
        with psycopg.connect(ingest.libpq_url(url)) as conn:
            rows = conn.execute("SELECT keyid, public_key_b64 FROM public_keys").fetchall()
        keys: dict[str, str] = dict(rows)
        for label_id in report.sample_ids[:: max(1, len(report.sample_ids) // 25)]:
            label = client.get(f"/v1/labels/{label_id}").json()
            envelope = client.get(f"/v1/labels/{label_id}/envelope").content
            key = load_public_key(keys[label["verification"]["keyid"]])
            verdict = verify_envelope_bytes(envelope, key)
            if verdict.outcome != VerifyExit.OK or label["receipt"] is None:
                failures.append(f"sampled label {label_id}: {verdict.message}")
    return failures


def explain(url: str, routes: dict[str, list[str]], skip: tuple[str, ...] = ()) -> list[str]:
    """One request per route in-process; EXPLAIN (ANALYZE, BUFFERS) of each SELECT it ran (the
    three slowest shown): scans, sorts (rows sorted), execution time."""
    from fastapi.testclient import TestClient
    from pydantic import SecretStr
    from sqlalchemy import event

    from registry.config import Settings
    from registry.main import create_app

    settings = Settings(
        database_url=url,
        admin_token=SecretStr(secrets.token_urlsafe(32)),
        log_signing_key=SecretStr(base64.b64encode(os.urandom(32)).decode()),
        public_url=scale_data.REGISTRY_URL,
        rate_limit_per_minute=0,
        rate_limit_per_address_per_minute=0,
        badge_cache_ttl_s=0,
        page_cache_max_bytes=1,
    )
    captured: list[tuple[str, Any]] = []
    lines = []
    with TestClient(create_app(settings)) as client:
        engine = client.app.state.engine  # type: ignore[attr-defined]

        def capture(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
            if statement.lstrip().upper().startswith(("SELECT", "WITH")):
                captured.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", capture)
        for name, paths in routes.items():
            if name in skip:
                continue
            path = paths[len(paths) // 2]
            captured.clear()
            client.get(path)
            plans = []
            with engine.connect() as conn:
                raw = conn.connection.driver_connection
                for statement, parameters in list(captured):
                    plans.append((_explained(raw, statement, parameters), statement))
                conn.rollback()
            total_ms = sum(plan["Execution Time"] for plan, _ in plans)
            lines.append(f"- **{name}** `{path}`: {len(plans)} queries, {total_ms:.2f} ms")
            plans.sort(key=lambda item: -item[0]["Execution Time"])
            lines += ["  - " + plan_summary(plan, statement) for plan, statement in plans[:3]]
    return lines


def _explained(raw: Any, statement: str, parameters: Any) -> dict[str, Any]:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of a statement as the server runs it: prepared (``PREPARE``
    with ``$n`` for its named parameters, ``EXECUTE`` with their values as literals) on a
    connection of the app's engine, so with the plan the server uses (``SET plan_cache_mode =
    force_generic_plan`` there: ``registry.db.make_engine``'s ``generic_plans``). An EXPLAIN of
    the statement with its values would show a plan made for those values, which a prepared
    statement does not use."""
    from psycopg import ClientCursor

    names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", statement)))
    sql = re.sub(r"%\((\w+)\)s", lambda m: f"${names.index(m[1]) + 1}", statement)
    sql = sql.replace("%%", "%")
    quoting = ClientCursor(raw)
    values = ", ".join(quoting.mogrify("%s", [parameters[name]]) for name in names)
    raw.execute("PREPARE scale_explain AS " + sql)
    try:
        found = raw.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE scale_explain"
            + (f"({values})" if names else "")
        ).fetchone()
    finally:
        raw.execute("DEALLOCATE scale_explain")
    return dict(found[0][0])


def plan_summary(plan: dict[str, Any], statement: str) -> str:
    nodes: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        kind = node["Node Type"]
        rows = int(node.get("Actual Rows", 0) * node.get("Actual Loops", 1))
        if kind.endswith("Sort") and node.get("Plans"):
            sorted_rows = node["Plans"][0].get("Actual Rows", 0) * node["Plans"][0].get(
                "Actual Loops", 1
            )
            nodes.append(f"**{kind} of {int(sorted_rows):,} rows**")
        elif kind.endswith("Scan"):
            where = node.get("Index Name") or node.get("Relation Name") or ""
            nodes.append(f"{kind} {where} ({rows:,} rows)")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    flat = " ".join(statement.split())
    sql = flat[flat.find(" FROM ") + 1 :][:100] if " FROM " in flat else flat[:100]
    top = plan["Plan"]
    return (
        f"{plan['Execution Time']:.2f} ms, buffers hit {top.get('Shared Hit Blocks', 0)} read "
        f"{top.get('Shared Read Blocks', 0)}: {'; '.join(nodes) or top['Node Type']} (`{sql}`)"
    )
