"""docs/security.md names, for each threat, the test that shows the defence: those tests exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "security.md"
THREATS = ("Forged labels", "Replay", "Stolen keys", "dishonest operator", "injection", "Denial")


def test_every_threat_has_a_section() -> None:
    text = DOC.read_text()
    for threat in THREATS:
        assert re.search(rf"^## \d+\. .*{threat}", text, re.MULTILINE | re.IGNORECASE), threat


def test_every_named_test_exists() -> None:
    text = DOC.read_text()
    named = re.findall(r"`([\w/]+\.py)((?:::\w+)?)`", text)
    assert len(named) > 30
    current = None
    for path, test in named:
        file = ROOT / "tests" / path
        if path.startswith(("registry/", "bench/")):
            file = ROOT / path
        assert file.is_file(), path
        current = file
        if test:
            assert f"def {test[2:]}(" in current.read_text(), f"{path}{test}"
    for test in re.findall(r"`::(\w+)`", text):
        assert any(f"def {test}(" in p.read_text() for p in (ROOT / "tests").rglob("*.py")), test
