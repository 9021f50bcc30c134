"""The console script end to end: one clear line and a non-zero exit on every failure."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.dsse import b64decode_any
from schemas.synthetic import make_label
from tests.helpers import ADMIN_TOKEN
from tests.server import free_port, running_server


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CARBONLABEL_")}
    environment |= env or {}
    result = subprocess.run(
        [sys.executable, "-m", "carbonlabel", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    result = run("keygen", "--out", "key.pem", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path / "key.pem"


def test_keygen_writes_0600_key_and_prints_keyid(keys: Path) -> None:
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    raw = b64decode_any((keys.parent / "key.pem.pub").read_text().strip())
    printed = run("keygen", "--out", "other.pem", cwd=keys.parent).stdout.strip()
    assert len(printed) == 64
    assert hashlib.sha256(raw).hexdigest() != printed  # a new key has a new keyid
    again = run("keygen", "--out", "key.pem", cwd=keys.parent)
    assert "exists" in one_line_error(again)


def _write_label(path: Path, **kw: object) -> Path:
    label = make_label(vendor="acme", model="m", registry="http://127.0.0.1:1", **kw)  # type: ignore[arg-type]
    path.write_text(json.dumps(label))
    return path


def test_sign_then_verify_and_each_failure_code(keys: Path) -> None:
    cwd = keys.parent
    _write_label(cwd / "label.json")
    signed = run("sign", "label.json", "--key", "key.pem", cwd=cwd)
    assert signed.returncode == 0, signed.stderr
    assert (cwd / "label.dsse.json").exists()
    ok = run("verify", "label.dsse.json", "--public-key", "key.pem.pub", cwd=cwd)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK ")

    envelope = json.loads((cwd / "label.dsse.json").read_text())
    envelope["payload"] = envelope["payload"][:-8] + "AAAAAAA="
    (cwd / "tampered.json").write_text(json.dumps(envelope))
    assert run("verify", "tampered.json", "-p", "key.pem.pub", cwd=cwd).returncode == 4

    run("keygen", "--out", "other.pem", cwd=cwd)
    assert run("verify", "label.dsse.json", "-p", "other.pem.pub", cwd=cwd).returncode == 4

    label = json.loads((cwd / "label.json").read_text())
    label["benchmark"]["task"] = "nonsense"
    (cwd / "bad-schema.json").write_text(json.dumps(label))
    run("sign", "bad-schema.json", "--key", "key.pem", cwd=cwd)
    schema = run("verify", "bad-schema.dsse.json", "-p", "key.pem.pub", cwd=cwd)
    assert schema.returncode == 5
    assert "/predicate/benchmark/task" in schema.stderr

    label = json.loads((cwd / "label.json").read_text())
    label["results"]["energy_per_unit_wh"]["mean"] /= 3
    (cwd / "cooked.json").write_text(json.dumps(label))
    run("sign", "cooked.json", "--key", "key.pem", cwd=cwd)
    assert run("verify", "cooked.dsse.json", "-p", "key.pem.pub", cwd=cwd).returncode == 6

    (cwd / "junk.json").write_text("not an envelope")
    assert run("verify", "junk.json", "-p", "key.pem.pub", cwd=cwd).returncode == 3
    missing = run("verify", "nope.json", "-p", "key.pem.pub", cwd=cwd)
    assert missing.returncode == 1
    assert "nope.json" in one_line_error(missing)
    not_a_key = run("sign", "label.json", "--key", "label.json", cwd=cwd)
    assert "private key" in one_line_error(not_a_key)


def test_db_upgrade_and_vendor_create(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    up = run("db", "upgrade", "--database-url", url, cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    created = run("vendor", "create", "acme", "--database-url", url, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().startswith("clt_")
    dup = run("vendor", "create", "acme", "--database-url", url, cwd=tmp_path)
    assert "already exists" in one_line_error(dup)
    bad = run("vendor", "create", "Not A Slug", "--database-url", url, cwd=tmp_path)
    assert "slug" in one_line_error(bad)
    unmigrated = run(
        "vendor", "create", "x", "--database-url", f"sqlite:///{tmp_path / 'n.db'}", cwd=tmp_path
    )
    assert "db upgrade" in one_line_error(unmigrated)
    unreachable = run(
        "db", "upgrade", "--database-url", "postgresql://x@127.0.0.1:1/none", cwd=tmp_path
    )
    assert "cannot migrate" in one_line_error(unreachable)


def test_db_derived_checks_and_repairs_the_kept_figures(tmp_path: Path) -> None:
    import sqlite3

    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert run("db", "upgrade", "--database-url", url, cwd=tmp_path).returncode == 0
    fine = run("db", "derived", "--database-url", url, cwd=tmp_path)
    assert fine.returncode == 0, fine.stderr
    assert "match" in fine.stdout
    # a count that no label supports (as a hand-made SQL change would leave)
    with sqlite3.connect(tmp_path / "r.db") as conn:
        conn.execute(
            "INSERT INTO current_counts VALUES ('1', 'text-classification', 'inference', '', "
            "'cpu-x86-64', 'FR', 3, 2)"
        )
    off = run("db", "derived", "--database-url", url, cwd=tmp_path)
    assert off.returncode != 0
    assert "current_counts" in one_line_error(off)
    assert "--repair" in one_line_error(off)
    repaired = run("db", "derived", "--repair", "--database-url", url, cwd=tmp_path)
    assert repaired.returncode == 0, repaired.stderr
    assert "current_counts" in repaired.stdout
    assert run("db", "derived", "--database-url", url, cwd=tmp_path).returncode == 0


def test_serve_refuses_without_admin_token(tmp_path: Path) -> None:
    result = run("serve", "--database-url", f"sqlite:///{tmp_path / 'r.db'}", cwd=tmp_path)
    assert "CARBONLABEL_ADMIN_TOKEN" in one_line_error(result)


def test_register_key_submit_and_resubmit(keys: Path) -> None:
    cwd = keys.parent
    url = f"sqlite:///{cwd / 'r.db'}"
    run("db", "upgrade", "--database-url", url, cwd=cwd)
    token = run("vendor", "create", "acme", "--database-url", url, cwd=cwd).stdout.strip()
    with running_server(url, ADMIN_TOKEN) as base:
        env = {"CARBONLABEL_REGISTRY": base, "CARBONLABEL_TOKEN": token}
        registered = run("key", "register", "acme", "--key", "key.pem", cwd=cwd, env=env)
        assert registered.returncode == 0, registered.stderr
        label = make_label(vendor="acme", model="m", registry=base)
        (cwd / "label.json").write_text(json.dumps(label))
        run("sign", "label.json", "--key", "key.pem", cwd=cwd)
        first = run("submit", "label.dsse.json", cwd=cwd, env=env)
        assert first.returncode == 0, first.stderr
        assert first.stdout.startswith("stored: " + label["label_id"])
        second = run("submit", "label.dsse.json", cwd=cwd, env=env)
        assert second.stdout.startswith("already stored")
        refused = run("submit", "label.json", cwd=cwd, env=env)
        assert "malformed-envelope" in one_line_error(refused)
        wrong_token = run(
            "submit", "label.dsse.json", cwd=cwd, env=env | {"CARBONLABEL_TOKEN": "x"}
        )
        assert "401" in one_line_error(wrong_token)
    down = run(
        "submit",
        "label.dsse.json",
        "--registry",
        f"http://127.0.0.1:{free_port()}",
        cwd=cwd,
        env={"CARBONLABEL_TOKEN": token},
    )
    assert "cannot reach" in one_line_error(down)
