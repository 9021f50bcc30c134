"""Label kinds: benchmark labels, whole training runs and operational (production) periods.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

A label's ``kind`` (docs/label.md) is ``benchmark`` (every label before this revision: the server
default), ``training-run`` (a whole run measured by ``carbonlabel.track``) or ``operational`` (a
period of a deployed model, from ``carbonlabel watch``). Only benchmark labels are graded, current,
ranked or counted among peers, so:

- ``ix_labels_model_newest`` (the current-label refresh finds the newest benchmark label of a
  group) becomes partial, ``WHERE kind = 'benchmark'``: a model watched every hour gains thousands
  of operational labels, and the backward scan must not walk through them;
- ``ix_labels_model_kind_created`` serves a model's series per kind in time order (the production
  time series and the figures across revisions).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEWEST = ["model_id", "suite", "task", "phase", "hardware_class", "created_at", "id"]
BENCHMARK_ONLY = "kind = 'benchmark'"


def upgrade() -> None:
    with op.batch_alter_table("labels") as batch:
        batch.add_column(
            sa.Column(
                "kind",
                sa.String(length=16),
                nullable=False,
                server_default="benchmark",
            )
        )
    op.drop_index("ix_labels_model_newest", table_name="labels")
    op.create_index(
        "ix_labels_model_newest",
        "labels",
        NEWEST,
        postgresql_where=sa.text(BENCHMARK_ONLY),
        sqlite_where=sa.text(BENCHMARK_ONLY),
    )
    op.create_index(
        "ix_labels_model_kind_created", "labels", ["model_id", "kind", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_labels_model_kind_created", table_name="labels")
    op.drop_index("ix_labels_model_newest", table_name="labels")
    # the other kinds have no place in the older schema, and logged labels are never deleted
    others = op.get_bind().execute(sa.text("SELECT count(*) FROM labels WHERE kind <> 'benchmark'"))
    if others.scalar_one():
        raise RuntimeError(
            "cannot downgrade below 0008: the database holds training-run or operational labels"
        )
    op.create_index("ix_labels_model_newest", "labels", NEWEST)
    with op.batch_alter_table("labels") as batch:
        batch.drop_column("kind")
