"""Registry-wide figures for ``/metrics``: labels by kind and tier, the log's size and last append.

Read from the database, so every server process (any replica, on any host) reports the same
figures. Two statements, each one round trip in autocommit (``registry.db.single_read``): a
``GROUP BY kind, tier`` over ``labels`` and a primary-key read of ``log_head``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Engine, func, select

from registry.db import single_read
from registry.models import Label, LabelKind, LogHead, Tier


@dataclass(frozen=True)
class RegistryStats:
    labels: dict[tuple[str, str], int]
    """Stored labels by (kind, tier); every known pair is present, 0 when there is none."""
    log_entries: int
    """The transparency log's tree size."""
    log_appended_at: datetime
    """When the log's head last moved (the newest entry's append; aware, UTC). Checkpoints are
    signed on demand over the current head and carry no time of their own, so this is also the
    time of the newest checkpoint."""


@cache
def _statements() -> tuple[Any, Any]:
    labels = Label.__table__  # type: ignore[attr-defined]
    heads = LogHead.__table__  # type: ignore[attr-defined]
    by_kind_and_tier = select(labels.c.kind, labels.c.tier, func.count()).group_by(
        labels.c.kind, labels.c.tier
    )
    head = select(heads.c.tree_size, heads.c.updated_at).where(heads.c.id == 1)
    return by_kind_and_tier, head


def read_stats(engine: Engine) -> RegistryStats:
    """The figures as they stand now (raises SQLAlchemyError when the database fails, and
    RuntimeError when the log has no head: an unmigrated database)."""
    by_kind_and_tier, head = _statements()
    labels = {(str(kind), str(tier)): 0 for kind in LabelKind for tier in Tier}
    with single_read(engine) as connection:
        for kind, tier, count in connection.execute(by_kind_and_tier):
            labels[(str(kind), str(tier))] = int(count)
        row = connection.execute(head).first()
    if row is None:
        raise RuntimeError("log_head has no row: is the database migrated to 0004?")
    return RegistryStats(labels, int(row.tree_size), row.updated_at)
