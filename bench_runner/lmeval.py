"""Import an lm-evaluation-harness results file as *declared* quality figures.

lm-evaluation-harness (EleutherAI, v0.4.x) writes one JSON object per run:
``results_<timestamp>.json`` (``EvaluationTracker.save_results_aggregated``, v0.4.3 on) or
``results.json`` (the v0.4.0-0.4.2 CLI). The part read here:

- ``results``: ``{task_or_group: {"alias": str, "<metric>,<filter>": number,
  "<metric>_stderr,<filter>": number | "N/A", ...}}``; v0.4.12 on also ``"name"``, ``"sample_len"``
  and, for groups, ``"sample_count"``; some versions mark a group without figures with ``" ": " "``.
  Groups with aggregated figures appear here as well as under ``groups``.
- ``n-shot``: ``{task_or_group: int}``.
- ``n-samples`` (v0.4.3 on): ``{task: {"original": int, "effective": int}}``, leaf tasks only.
- ``lm_eval_version`` (v0.4.9 on): the installed harness version. ``git_hash`` is *not* used: it is
  ``git describe`` of the directory the run started in, which is the user's repository unless the
  run started in a harness checkout.

Every figure becomes one ``quality.declared`` entry of the label (schemas/label.schema.json); the
figures are what the file says, not measured here.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

__all__ = ["MAX_DECLARED", "SOURCE", "LmEvalError", "parse_lm_eval_results"]

SOURCE = "lm-evaluation-harness"
MAX_DECLARED = 32  # the schema's maxItems for quality.declared
MAX_FILE_BYTES = 64 * 1024 * 1024
_MAX_METRIC = 64
_MAX_TASK = 128
_MAX_FILTER = 64
_MAX_VERSION = 64
# the characters the label schema's text pattern rejects (controls, invisible and bidi marks)
_FORBIDDEN = re.compile(
    "[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u206f\ufeff\ufff9-\ufffb]"
)
_VERSION = re.compile(r"^[0-9]+(\.[0-9]+)*[0-9A-Za-z.+!_-]*$")
_STDERR_SUFFIX = "_stderr"


class LmEvalError(ValueError):
    """The file cannot be imported; the message is one line saying why."""


def parse_lm_eval_results(path: Path, *, tasks: list[str] | None = None) -> list[dict[str, Any]]:
    """The file's figures as ``quality.declared`` entries, in file order (or in the order of
    ``tasks``): one per (task, metric, filter), with its stderr when the file gives a number.

    ``tasks`` picks tasks or groups by their name in ``results``; without it every figure in the
    file is returned. Raises ``LmEvalError`` when the file is missing or not an lm-eval results
    file, a requested task is absent, there is no numeric figure, or more than 32 would be needed.
    """
    raw = _read(path)
    doc = _load(raw, path)
    results = doc["results"]
    present = [str(name) for name in results]

    if tasks is None:
        chosen = present
    else:
        chosen = list(dict.fromkeys(tasks))
        if not chosen:
            raise LmEvalError("no tasks requested (tasks=[]); pass None for every task in the file")
        missing = [t for t in chosen if t not in results]
        if missing:
            raise LmEvalError(
                f"{_shown(path.name)}: task(s) {', '.join(map(repr, missing))} not in the file; "
                f"tasks present: {_names(present)}"
            )

    file_sha256 = hashlib.sha256(raw).hexdigest()
    version = _harness_version(doc.get("lm_eval_version"))
    n_shot = _obj(doc.get("n-shot"))
    n_samples = _obj(doc.get("n-samples"))

    entries: list[dict[str, Any]] = []
    for task in chosen:
        figures = results[task]
        if not isinstance(figures, dict):
            raise LmEvalError(f"{_shown(path.name)}: results[{task!r}] is not an object")
        base: dict[str, Any] = {"source": SOURCE, "task": _text(task, "task", _MAX_TASK, path)}
        shots = _int_at_least(n_shot.get(task), 0)
        if shots is not None:
            base["n_shot"] = shots
        effective = _int_at_least(_obj(n_samples.get(task)).get("effective"), 1)
        if effective is not None:
            base["n_samples"] = effective
        if version is not None:
            base["harness_version"] = version
        base["file_sha256"] = file_sha256
        entries.extend(_task_entries(task, figures, base, path))

    if not entries:
        where = "the file" if tasks is None else f"task(s) {', '.join(map(repr, chosen))}"
        raise LmEvalError(
            f"{_shown(path.name)}: no numeric figures in {where} "
            "(lm-eval v0.4 writes them as '<metric>,<filter>': number)"
        )
    if len(entries) > MAX_DECLARED:
        hint = "pass tasks=[...] to choose some" if tasks is None else "choose fewer tasks"
        raise LmEvalError(
            f"{_shown(path.name)}: {len(entries)} figures, a label declares at most "
            f"{MAX_DECLARED}; {hint} (tasks present: {_names(present)})"
        )
    return entries


def _task_entries(
    task: str, figures: dict[str, Any], base: dict[str, Any], path: Path
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key, value in figures.items():
        metric, sep, filter_name = key.partition(",")
        # "alias", "name", "sample_len", "sample_count", " ": not "<metric>,<filter>" figures
        number = _number(value)
        if not sep or metric.endswith(_STDERR_SUFFIX) or number is None:
            continue
        entry: dict[str, Any] = {
            "metric": _text(metric, "metric", _MAX_METRIC, path, task),
            "value": number,
        }
        # "N/A" when the harness had no stderr (one item, or bootstrap_iters=0)
        stderr = _number(figures.get(f"{metric}{_STDERR_SUFFIX},{filter_name}"))
        if stderr is not None and stderr >= 0:
            entry["stderr"] = stderr
        entry["source"] = base["source"]
        entry["task"] = base["task"]
        if filter_name != "none":
            entry["filter"] = _text(filter_name, "filter", _MAX_FILTER, path, task)
        entry.update((k, v) for k, v in base.items() if k not in entry)
        out.append(entry)
    return out


def _read(path: Path) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise LmEvalError(f"lm-eval results file not found: {_shown(str(path))}") from None
    except OSError as exc:
        raise LmEvalError(f"cannot read {_shown(str(path))}: {exc.strerror or exc}") from None
    if not path.is_file():
        raise LmEvalError(f"not a file: {_shown(str(path))}")
    if size > MAX_FILE_BYTES:
        raise LmEvalError(
            f"{_shown(path.name)}: {size} bytes, more than an lm-eval results file should be"
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LmEvalError(f"cannot read {_shown(str(path))}: {exc.strerror or exc}") from None


def _load(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise LmEvalError(f"{_shown(path.name)}: not JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise LmEvalError(
            f"{_shown(path.name)}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer too long to convert
        raise LmEvalError(f"{_shown(path.name)}: not JSON ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), dict):
        raise LmEvalError(
            f"{_shown(path.name)}: not an lm-evaluation-harness results file (no 'results' object)"
        )
    return doc


def _harness_version(value: Any) -> str | None:
    # add_env_info stores str(exception) here when the package metadata is missing
    if isinstance(value, str) and len(value) <= _MAX_VERSION and _VERSION.match(value):
        return value
    return None


def _text(value: str, what: str, limit: int, path: Path, task: str | None = None) -> str:
    where = _shown(path.name) + ": " + (f"task {task!r}: " if task is not None else "")
    if not value:
        raise LmEvalError(f"{where}empty {what} name")
    if len(value) > limit:
        raise LmEvalError(f"{where}{what} name longer than {limit} characters: {value[:40]!r}...")
    if _FORBIDDEN.search(value):
        raise LmEvalError(f"{where}{what} name has control or invisible characters: {value!r}")
    return value


def _number(value: Any) -> int | float | None:
    """A JSON number that a label can hold: not a bool, not NaN or infinite."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return None


def _int_at_least(value: Any, minimum: int) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
        return value
    return None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _shown(name: str) -> str:
    return repr(name) if not name or _FORBIDDEN.search(name) or "," in name else name


def _names(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(_shown(n) for n in names[:limit]) if names else "(none)"
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
