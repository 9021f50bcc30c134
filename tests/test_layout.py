"""The layout rules: schemas is the leaf, runner and registry never import each other, web holds
no Python, nothing imports upward, and no work happens at import time."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("schemas", "registry", "bench_runner", "carbonlabel")
FORBIDDEN = {
    "schemas": {"registry", "bench_runner", "carbonlabel"},
    "registry": {"bench_runner", "carbonlabel"},
    "bench_runner": {"registry", "carbonlabel"},
}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_forbidden_imports(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
        if imported_roots(path) & FORBIDDEN[package]
    }
    assert offenders == {}


def test_registry_services_do_not_import_routes() -> None:
    for path in (ROOT / "registry" / "services").rglob("*.py"):
        tree = ast.parse(path.read_text())
        modules = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert not {m for m in modules if m.startswith(("registry.api", "registry.main"))}, path


def test_web_holds_no_python() -> None:
    assert not list((ROOT / "web").rglob("*.py"))


def test_importing_the_packages_does_no_work() -> None:
    """Import every module in a fresh interpreter; no engine, settings or NVML at import time."""
    code = (
        "import importlib, pkgutil, sys\n"
        f"for pkg in {PACKAGES!r}:\n"
        "    mod = importlib.import_module(pkg)\n"
        "    for info in pkgutil.walk_packages(mod.__path__, pkg + '.'):\n"
        "        if info.name.endswith('__main__'): continue\n"
        "        importlib.import_module(info.name)\n"
        "import sqlalchemy.pool\n"
        "nvml = sys.modules.get('pynvml')\n"
        "assert nvml is None or nvml.nvmlLib is None, 'NVML was loaded at import time'\n"
        "print('ok')\n"
    )
    env = {"CARBONLABEL_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_packaging_declares_the_console_script_and_layout() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["carbonlabel"] == "carbonlabel.cli:main"
    assert project["project"]["requires-python"] == ">=3.11"
    for folder in ("registry", "bench_runner", "schemas", "web", "tests", "alembic"):
        assert (ROOT / folder).is_dir(), folder
    assert (ROOT / "Dockerfile").is_file()
