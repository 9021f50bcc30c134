"""Summarise a collapsed-stack profile (``py-spy record --format raw``, as ``ingest.py --py-spy``).

    .venv/bin/python bench/profile_top.py PROFILE [--top 30] [--match registry/,schemas/]

Prints the share of samples in which each function is on the stack (inclusive) and at the top
(self), functions named by ``name (path)`` without line numbers. ``--match`` restricts the
inclusive list to frames whose path contains one of the comma-separated strings.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<name>.*?) \((?P<path>.*?)(?::\d+)?\)$")


def _key(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["path"]
    root = str(Path(__file__).resolve().parent.parent) + "/"
    for marker in ("site-packages/", root, "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['name']} ({path})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--match", default="", help="comma-separated path fragments")
    args = parser.parse_args()

    inclusive: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    total = 0
    for line in args.profile.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_key(f) for f in stack.split(";")]
        # skip the leading "process"/"thread" pseudo-frames py-spy may add
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        self_[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        raise SystemExit("no samples")
    matches = [m for m in args.match.split(",") if m]
    print(f"{total} samples (on-GIL)")
    print(f"\n== inclusive (on stack), top {args.top} ==")
    shown = 0
    for frame, count in inclusive.most_common():
        if matches and not any(m in frame for m in matches):
            continue
        print(f"{100 * count / total:6.1f}%  {frame}")
        shown += 1
        if shown >= args.top:
            break
    print(f"\n== self (top of stack), top {args.top} ==")
    for frame, count in self_.most_common(args.top):
        print(f"{100 * count / total:6.1f}%  {frame}")


if __name__ == "__main__":
    main()
