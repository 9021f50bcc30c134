"""Where a Hugging Face model's files are: a local directory, or the local Hub cache. Never the
network: a model that is not on this machine is one clear error saying how to download it.

The label names the model by its files: ``model.files`` lists every regular file of the model
directory (weights, config, tokenizer) with its size and sha256, and the statement subject digest
is ``schemas.suites.files_digest`` of that list.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_runner.workloads.base import WorkloadError

MAX_FILES = 512  # the label schema's limit on model.files
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class ModelSource:
    """A model on this machine: its directory, and its Hub id and commit when it came from the
    Hub cache."""

    spec: str
    path: Path
    hub_id: str | None = None
    hub_revision: str | None = None


def hub_cache_dir() -> Path:
    """The Hub cache as huggingface_hub finds it, read from the environment now (HF_HUB_CACHE,
    else HF_HOME/hub, else huggingface_hub's default)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE).expanduser()


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", ".", "~")) or spec.count("/") > 1 or "\\" in spec


def _from_cache_layout(path: Path) -> tuple[str | None, str | None]:
    """(hub id, commit) when ``path`` is ``.../models--org--name/snapshots/<commit>``."""
    parts = path.resolve().parts
    if len(parts) >= 3 and parts[-2] == "snapshots" and parts[-3].startswith("models--"):
        hub_id = parts[-3].removeprefix("models--").replace("--", "/")
        commit = parts[-1]
        if _HUB_ID.match(hub_id) and _COMMIT.match(commit):
            return hub_id, commit
    return None, None


def resolve_model(spec: str, revision: str | None = None) -> ModelSource:
    """The model directory for ``hf:SPEC``: SPEC is a local directory, or a Hub repository id
    looked up in the local Hub cache only (at ``revision``, default ``main``)."""
    if not spec:
        raise WorkloadError("--model hf: needs a local directory or a Hub model id")
    local = Path(spec).expanduser()
    if local.exists():
        if not local.is_dir():
            raise WorkloadError(f"--model hf:{spec} is a file; give the model's directory")
        hub_id, commit = _from_cache_layout(local)
        return ModelSource(spec, local, hub_id, commit)
    if _looks_like_path(spec) or not _HUB_ID.match(spec):
        raise WorkloadError(f"model directory {spec} does not exist")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    wanted = revision or "main"
    cache = hub_cache_dir()
    try:
        found = Path(
            snapshot_download(spec, revision=wanted, cache_dir=cache, local_files_only=True)
        )
    except (OSError, HFValidationError):
        raise WorkloadError(
            f"model {spec!r} is not in the local Hugging Face cache ({cache}); download it "
            f"first: hf download {spec} --revision {wanted} (or pass a local directory)"
        ) from None
    return ModelSource(spec, found, spec, found.name)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def file_manifest(path: Path) -> list[dict[str, Any]]:
    """Every regular file of the model directory (symbolic links followed, as in the Hub
    cache's snapshots; hidden folders such as ``.cache`` and ``.git`` skipped), sorted by path."""
    files: list[dict[str, Any]] = []
    for file in sorted(path.rglob("*")):
        rel = file.relative_to(path)
        if any(part.startswith(".") for part in rel.parts[:-1]) or not file.is_file():
            continue
        files.append(
            {"path": rel.as_posix(), "size_bytes": file.stat().st_size, "sha256": _sha256(file)}
        )
        if len(files) > MAX_FILES:
            raise WorkloadError(
                f"{path} holds more than {MAX_FILES} files; give a directory with only the "
                "model's weights, config and tokenizer"
            )
    if not files:
        raise WorkloadError(f"model directory {path} holds no files")
    return sorted(files, key=lambda f: str(f["path"]))
