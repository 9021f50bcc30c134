"""Building the package prints no packaging warning, and the wheel carries every data file the
code reads (issue 12, item 7: an install on a fresh machine is quiet)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "carbonlabel",
    "schemas",
    "registry",
    "bench_runner",
)


def test_the_wheel_builds_without_warnings_and_carries_the_data(tmp_path: Path) -> None:
    tree = tmp_path / "src"  # a copy: no build/ or egg-info left in the checkout
    tree.mkdir()
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, tree / name)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    result = subprocess.run(
        [*pip, "--disable-pip-version-check", "-w", str(tmp_path / "dist"), str(tree)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "absent from the `packages` configuration" not in output, output
    assert "BuildBackendWarning" not in output, output
    (wheel,) = (tmp_path / "dist").glob("carbonlabel-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "registry/data",
        "bench_runner/data/suite-v2/gsm8k",
        "bench_runner/data/suite-v2/banking77",
        "schemas/examples/valid",
        "schemas/examples/invalid",
    ):
        assert any(n.startswith(expected + "/") for n in names), expected
    shipped = {n for n in names if n.startswith("registry/data/")}
    on_disk = {f"registry/data/{p.name}" for p in (ROOT / "registry/data").glob("*.json")}
    assert on_disk <= shipped


def test_the_set_up_says_how_to_run_carbonlabel_and_what_torch_brings() -> None:
    demo = (ROOT / "scripts" / "demo").read_text()
    readme = (ROOT / "README.md").read_text()
    # after scripts/demo, how to get `carbonlabel` on PATH: printed and in the README
    assert ".venv/bin/activate" in demo
    assert "source .venv/bin/activate" in readme
    # the torch line says what a plain PyPI install brings, and how to get the CPU build
    setup = (ROOT / "scripts" / "setup").read_text()
    assert '--index-url "$CARBONLABEL_TORCH_INDEX_URL"' in setup
    assert "CARBONLABEL_TORCH_INDEX_URL" in readme
    assert "nvidia-*" in readme
    assert "(CPU build; on a GPU host" not in readme  # the old, wrong claim
