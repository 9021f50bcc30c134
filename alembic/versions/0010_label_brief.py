"""The parts of each label's document that lists show, stored beside it: ``labels.brief``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

Lists (the label list, the leaderboard, the vendor, model and compare pages) show four parts of
a label's document: its quality statement, its CI's lower bound and, for chat-serving, its
serving results and workload. They were read out of the document by JSON paths; in PostgreSQL
that decompresses each listed label's whole document (traces included: 1.4 of the 1.9 ms of a
page of 50 at 1M labels). ``brief`` holds those parts at their paths (those absent or null left
out), written with the label (``services.briefs.brief_of``), so a list never reads the document.

The column is added with an empty default, filled from every stored document (PostgreSQL: one
UPDATE in SQL; SQLite: in batches here), and PostgreSQL's default is then dropped (SQLite keeps
it: changing a column there rebuilds the table). Downgrade drops the column.
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500
PATHS = (
    ("quality",),
    ("results", "energy_per_unit_wh", "ci95_low"),
    ("results", "serving"),
    ("benchmark", "workload", "serving"),
)
"""As ``services.briefs.PARTS`` at this revision."""

POSTGRES_FILL = """
UPDATE labels SET brief =
    CASE WHEN p.q IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('quality', p.q) END
    || CASE WHEN p.ci IS NULL AND p.rs IS NULL THEN '{}'::jsonb ELSE jsonb_build_object(
        'results',
        CASE WHEN p.ci IS NULL THEN '{}'::jsonb ELSE jsonb_build_object(
            'energy_per_unit_wh', jsonb_build_object('ci95_low', p.ci)) END
        || CASE WHEN p.rs IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('serving', p.rs) END
    ) END
    || CASE WHEN p.ws IS NULL THEN '{}'::jsonb ELSE jsonb_build_object(
        'benchmark', jsonb_build_object('workload', jsonb_build_object('serving', p.ws))) END
FROM (
    SELECT id,
        NULLIF(predicate -> 'quality', 'null') AS q,
        NULLIF(predicate #> '{results,energy_per_unit_wh,ci95_low}', 'null') AS ci,
        NULLIF(predicate #> '{results,serving}', 'null') AS rs,
        NULLIF(predicate #> '{benchmark,workload,serving}', 'null') AS ws
    FROM labels
) AS p
WHERE labels.id = p.id
"""


def _brief(document: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for path in PATHS:
        value = document
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            target = found
            for key in path[:-1]:
                target = target.setdefault(key, {})
            target[path[-1]] = value
    return found


def upgrade() -> None:
    document = sa.JSON().with_variant(JSONB(), "postgresql")
    op.add_column(
        "labels", sa.Column("brief", document, nullable=False, server_default=sa.text("'{}'"))
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(POSTGRES_FILL)
        op.alter_column("labels", "brief", server_default=None)
        return
    select = sa.text("SELECT id, predicate FROM labels WHERE id > :after ORDER BY id LIMIT :n")
    update = sa.text("UPDATE labels SET brief = :brief WHERE id = :id")
    after = ""
    while rows := bind.execute(select, {"after": after, "n": BATCH}).all():
        changes = []
        for row in rows:
            stored = row.predicate if isinstance(row.predicate, dict) else json.loads(row.predicate)
            changes.append({"id": row.id, "brief": json.dumps(_brief(stored))})
        bind.execute(update, changes)
        after = rows[-1].id


def downgrade() -> None:
    # (SQLite drops a column in place since 3.35: no rebuild of the table and its indexes)
    op.execute("ALTER TABLE labels DROP COLUMN brief")
