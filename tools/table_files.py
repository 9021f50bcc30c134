"""What the table builders in tools/ share: write a generated file, or with ``--check`` say
whether the bundled one is up to date (exit 1 when it would change)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def run(description: str, output: Path, root: Path, render: Callable[[], str]) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="exit 1 if the table would change")
    args = parser.parse_args()
    text = render()
    shown = output.relative_to(root)
    if args.check:
        if output.read_text(encoding="utf-8") != text:
            print(f"{shown} is out of date", file=sys.stderr)
            return 1
        print(f"{shown} is up to date")
        return 0
    output.write_text(text, encoding="utf-8")
    print(f"wrote {shown}")
    return 0
