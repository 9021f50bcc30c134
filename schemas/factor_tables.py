"""A bundled, versioned factor table (``schemas/embodied.json``, ``schemas/water.json``): a name,
the ``current`` version, and ``versions`` by name. A label names the version it was computed with
and keeps it; a new table is a new version, added beside the old ones."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class FactorTable:
    def __init__(self, path: Path) -> None:
        self.path = path

    @functools.cached_property
    def _document(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        return document

    def name(self) -> str:
        return str(self._document["name"])

    def current_version(self) -> str:
        return str(self._document["current"])

    def version(self, version: str) -> Mapping[str, Any] | None:
        """One version of the table, None when this build does not know it."""
        found = self._document["versions"].get(version)
        return found if isinstance(found, Mapping) else None

    def known(self, version: str) -> Mapping[str, Any]:
        """:meth:`version`, or ValueError naming the table and the version."""
        found = self.version(version)
        if found is None:
            raise ValueError(f"{self.name()} version {version!r} is not known to this build")
        return found

    def reference_issues(self, stated: Any, pointer: str) -> list[tuple[str, Any, Any]]:
        """A label's reference to this table (``{"name", "version"}``) that names another table
        or a version this build does not know: one (pointer, stated, expected) issue."""
        table = stated if isinstance(stated, Mapping) else {}
        if table.get("name") == self.name() and self.version(str(table.get("version"))):
            return []
        return [(pointer, dict(table), {"name": self.name(), "known": True})]
