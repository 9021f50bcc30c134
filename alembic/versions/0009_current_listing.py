"""The current labels of a task and phase, newest first: ``GET /v1/labels?task&phase&current=true``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

The label list is read in ``received_at`` order. Without an index of the current labels per
task and phase, its backward scan of ``ix_labels_received`` walks through every newer label that
is not current or of another task: at 1M labels, after 25,000 revisions of one model of another
task (each replaces the current one), the page read 26,675 buffers in 9.3 ms. A partial index
``WHERE current`` (only current labels: about a quarter of the table) gives each task and phase
its own range, read backwards from the newest.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ["task", "phase", "received_at", "id"]


def upgrade() -> None:
    op.create_index(
        "ix_labels_current_received",
        "labels",
        COLUMNS,
        postgresql_where=sa.text("current"),
        sqlite_where=sa.text("current"),
    )


def downgrade() -> None:
    op.drop_index("ix_labels_current_received", table_name="labels")
