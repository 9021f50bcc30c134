"""Indexes that keep the current-label refresh O(log n) per label.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05

Each accepted label re-decides which label of its group (model, task, phase, hardware class) is
current: the newest in good standing. With only ``ix_labels_model_group`` both the search for the
newest and the UPDATE read every label of the group, so each label cost more than the one before.
``ix_labels_model_newest`` (the old index's columns, then ``created_at, id``) finds the newest by
a backward scan of a few entries, and the partial index ``ix_labels_model_current`` (current
labels only: about one per group) with the primary key finds the rows whose flag changes. The
new index's prefix serves every lookup the old one did, so the old one goes.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GROUP = ["model_id", "task", "phase", "hardware_class"]


def upgrade() -> None:
    op.create_index("ix_labels_model_newest", "labels", [*GROUP, "created_at", "id"])
    op.create_index(
        "ix_labels_model_current",
        "labels",
        GROUP,
        postgresql_where=sa.text("current"),
        sqlite_where=sa.text("current"),
    )
    op.drop_index("ix_labels_model_group", table_name="labels")


def downgrade() -> None:
    op.create_index("ix_labels_model_group", "labels", GROUP)
    op.drop_index("ix_labels_model_current", table_name="labels")
    op.drop_index("ix_labels_model_newest", table_name="labels")
