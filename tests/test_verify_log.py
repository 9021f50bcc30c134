"""``carbonlabel verify`` against a running registry: label ids, a vendor's whole set and envelope
files are checked for inclusion in the signed log, and a registry that rewrites its history is
caught (a changed entry: exit 7; a rebuilt tree: exit 8)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from schemas import merkle
from tests.helpers import ADMIN_TOKEN, append_only_bypassed, register_publisher
from tests.server import running_server
from tests.test_cli import one_line_error, run

pytestmark = pytest.mark.server


def rebuild_tree(conn: object) -> None:
    """What a dishonest operator would do after editing an entry: recompute every node and the
    head so that the log is self-consistent again."""
    leaves = [
        bytes(r.leaf)
        for r in conn.execute(text("SELECT leaf FROM log_entries ORDER BY idx"))  # type: ignore[attr-defined]
    ]
    nodes: dict[tuple[int, int], bytes] = {}
    for index, leaf in enumerate(leaves):
        nodes.update(merkle.append_nodes(index, merkle.leaf_hash(leaf), nodes))
    conn.execute(text("DELETE FROM log_nodes"))  # type: ignore[attr-defined]
    for (level, idx), digest in nodes.items():
        conn.execute(  # type: ignore[attr-defined]
            text("INSERT INTO log_nodes (level, idx, hash) VALUES (:l, :i, :h)"),
            {"l": level, "i": idx, "h": digest},
        )
    conn.execute(  # type: ignore[attr-defined]
        text("UPDATE log_head SET root_hash = :r, frontier = :f"),
        {
            "r": merkle.root_from(len(leaves), nodes),
            "f": merkle.pack_frontier(len(leaves), nodes),
        },
    )


def test_verify_checks_the_log_and_detects_rewritten_history(
    db: Engine, database_url: str, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    with running_server(database_url, ADMIN_TOKEN) as base:
        http = httpx.Client(base_url=base)
        publisher = register_publisher(http, "acme", audience=base)
        ids = []
        for _ in range(3):
            body = publisher.envelope(registry=base)
            response = http.post("/v1/labels", content=body, headers=publisher.headers)
            assert response.status_code == 201, response.text
            ids.append(response.json()["label_id"])
        (tmp_path / "label.dsse.json").write_bytes(body)
        common = ["--registry", base, "--state", str(state)]

        first = run("verify", ids[0], *common, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert first.stdout.startswith(f"OK {ids[0]}:")
        assert "logged at index" in first.stdout
        assert "first use" in first.stderr
        saved = json.loads(state.read_text())["registries"][base]
        assert saved["tree_size"] == 4
        assert saved["verifier_key"].startswith("127.0.0.1:")

        whole = run("verify", "--vendor", "acme", *common, "--json", cwd=tmp_path)
        assert whole.returncode == 0, whole.stderr
        assert [item["outcome"] for item in json.loads(whole.stdout)] == ["ok"] * 3
        from_file = run("verify", "label.dsse.json", *common, cwd=tmp_path)
        assert from_file.returncode == 0, from_file.stderr

        # the log grows: the new checkpoint is proved consistent with the one saved
        more = http.post(
            "/v1/labels", content=publisher.envelope(registry=base), headers=publisher.headers
        )
        assert more.status_code == 201
        grown = run("verify", ids[1], *common, cwd=tmp_path)
        assert grown.returncode == 0, grown.stderr
        assert json.loads(state.read_text())["registries"][base]["tree_size"] == 5

        # the operator edits a stored entry (lifting the triggers): its inclusion proof fails
        index = json.loads(whole.stdout)[1]["log_index"]
        with db.begin() as conn, append_only_bypassed(conn):
            leaf = conn.execute(
                text("SELECT leaf FROM log_entries WHERE idx = :i"), {"i": index}
            ).scalar_one()
            entry = json.loads(bytes(leaf))
            entry["logged_at"] = "2020-01-01T00:00:00.000000Z"  # back-dated
            forged = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
            conn.execute(
                text("UPDATE log_entries SET leaf = :leaf, leaf_hash = :h WHERE idx = :i"),
                {"leaf": forged, "h": merkle.leaf_hash(forged), "i": index},
            )
        changed = run("verify", ids[1], *common, cwd=tmp_path)
        assert changed.returncode == 7, changed.stderr
        assert "not in the signed checkpoint" in changed.stderr
        untouched = run("verify", ids[0], *common, cwd=tmp_path)
        assert untouched.returncode == 0, untouched.stderr

        # ... and rebuilds the whole tree to match: the new root cannot be proved consistent
        with db.begin() as conn, append_only_bypassed(conn):
            rebuild_tree(conn)
        rewritten = run("verify", ids[0], *common, cwd=tmp_path)
        assert rewritten.returncode == 8, rewritten.stderr
        assert "rewrote its history" in one_line_error(rewritten) or "rewrote" in rewritten.stderr
        # the state file still holds the honest checkpoint: the alarm does not go away
        assert run("verify", ids[0], *common, cwd=tmp_path).returncode == 8
        root = json.loads(state.read_text())["registries"][base]["root_hash"]
        assert base64.b64decode(root) != merkle.EMPTY_ROOT


def test_verify_usage_errors(tmp_path: Path) -> None:
    nothing = run("verify", cwd=tmp_path)
    assert "envelope file, a label id, or --vendor" in one_line_error(nothing)
    offline_id = run("verify", "0b0b0b0b-0000-4000-8000-000000000000", cwd=tmp_path)
    assert "--registry" in one_line_error(offline_id)
    missing = run("verify", "nope.json", cwd=tmp_path)
    assert "no such file" in one_line_error(missing)
