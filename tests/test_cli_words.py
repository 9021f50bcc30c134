"""What the command line says when something is missing or wrong, and how ``bench`` reports its
figures (issue 12, item 6): each message names the option or command that fixes it."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from bench_runner.bench_view import fig
from tests.runner.test_bench_e2e import QUICK
from tests.test_cli import one_line_error, run


def test_figures_have_three_significant_digits() -> None:
    assert [fig(v) for v in (0.000123456, 1.23456, 9.996, 1234.56, 123456.7)] == [
        "0.000123",
        "1.23",
        "10.0",
        "1,230",
        "123,000",
    ]


def test_a_missing_token_names_the_option_and_the_variable(tmp_path: Path) -> None:
    (tmp_path / "e.json").write_text("{}")
    result = run("submit", "e.json", "--registry", "http://127.0.0.1:9", cwd=tmp_path)
    assert result.returncode == 2
    assert one_line_error(result) == (
        "error: missing --token: pass --token or set CARBONLABEL_TOKEN"
    )


def test_key_files_that_are_missing_or_public(tmp_path: Path) -> None:
    register = ["key", "register", "acme", "--registry", "http://127.0.0.1:9", "--token", "t"]
    missing = run(*register, "--key", "nope.pem", cwd=tmp_path)
    assert missing.returncode == 1
    assert "carbonlabel keygen --out nope.pem" in one_line_error(missing)
    assert run("keygen", "--out", "key.pem", cwd=tmp_path).returncode == 0
    public = run(*register, "--key", "key.pem.pub", cwd=tmp_path)
    assert public.returncode == 1
    assert "key.pem.pub is a public key; pass the private key (keygen wrote both" in (
        one_line_error(public)
    )


def test_bench_words(tmp_path: Path) -> None:
    assert run("keygen", "--out", "key.pem", cwd=tmp_path).returncode == 0
    bench = ["bench", "--task", "text-classification", "--model-id", "acme/reference"]
    bench += ["--key", "key.pem", "--registry", "http://127.0.0.1:9", *QUICK]
    unknown = run(*bench, "--zone", "ZZ", cwd=tmp_path)
    assert unknown.returncode == 1
    line = one_line_error(unknown)
    assert "--zone (" in line
    assert "--intensity G_PER_KWH" in line
    assert "--hourly FILE" in line
    done = run(*bench, "--no-quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    err = done.stderr
    # the CI's lower bound may be negative on a busy machine (an estimate's high CV)
    energy = re.search(r"energy: ([\d.,]+) Wh per 1,000 inferences \(95% CI (-?[\d.,]+) to", err)
    assert energy is not None, err
    for figure in energy.groups():  # three significant digits
        assert len(figure.replace(",", "").replace(".", "").lstrip("-0")) <= 3, figure
    envelope = done.stdout.strip()
    assert f"signed envelope (what the registry stores): {envelope}" in err
    assert "label (the unsigned figures): " in err


def test_serve_on_a_port_in_use_says_so_before_printing_tokens(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--demo", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 1
    line = one_line_error(result)
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "--port" in line
    assert "token" not in result.stdout
