"""Answers that cost the same at a million labels as at ten thousand.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

- ``labels`` gains ``vendor_slug`` and ``model_name`` (copies of the vendor's slug and the
  model's name, which never change), so the leaderboard's sort orders by vendor and by model are
  read from an index instead of sorting a whole group.
- One partial index (``WHERE current``) per leaderboard sort order, keyed by task, phase and suite
  then the sort's columns, with the filters' columns included (PostgreSQL ``INCLUDE``): a page is
  a keyset range of one index (``models.leaderboard_indexes``).
- ``ix_labels_current_peers`` becomes ``ix_labels_peers``, a partial index of exactly the labels
  that are anyone's peers (``WHERE current AND measured AND standard_workload``), so a peer count
  is an index-only range scan that never visits the table.
- ``vendor_standings``: each vendor's aggregates (models, labels, grades, score, median quality)
  per suite, task, phase, hardware class (or all) and size class (or all), which
  ``GET /v1/vendors`` pages through by score, with ``ranking_totals`` (vendors and scored vendors
  per group); ``current_counts``: current labels and peers per
  suite, task, phase, size class, hardware class and zone, the leaderboard's totals and filter
  options; ``peer_bins``: peers per peer group and bin of the graded figure, from which a peer
  percentile is a sum over at most a few hundred bins plus a count inside one bin. All three are
  maintained in the transaction of every change to a current flag (``services/standings.py``)
  and filled here from the labels already stored.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_PEERS = [
    "task",
    "phase",
    "suite",
    "hardware_class",
    "size_class",
    "standard_workload",
    "current",
    "energy_ci95_high_wh",
]
NEW_PEERS = ["task", "phase", "suite", "hardware_class", "size_class", "energy_ci95_high_wh"]
PEERS_WHERE = "current AND measured AND standard_workload"


def upgrade() -> None:
    with op.batch_alter_table("labels") as batch:
        batch.add_column(
            sa.Column("vendor_slug", sa.String(length=64), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("model_name", sa.String(length=128), nullable=False, server_default="")
        )
    op.execute(
        "UPDATE labels SET "
        "vendor_slug = (SELECT slug FROM vendors WHERE vendors.id = labels.vendor_id), "
        "model_name = (SELECT name FROM models WHERE models.id = labels.model_id)"
    )
    op.drop_index("ix_labels_current_peers", table_name="labels")
    op.create_index(
        "ix_labels_peers",
        "labels",
        NEW_PEERS,
        postgresql_where=sa.text(PEERS_WHERE),
        sqlite_where=sa.text(PEERS_WHERE),
    )
    # the definitions live with the model (one per sort order), so the two cannot drift
    from registry.models import Label

    for index in Label.__table__.indexes:  # type: ignore[attr-defined]
        if index.name.startswith("ix_labels_board_"):
            index.create(op.get_bind())
    op.create_table(
        "vendor_standings",
        sa.Column("suite", sa.String(length=8), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("hardware_class", sa.String(length=64), nullable=False),
        sa.Column("size_class", sa.String(length=24), nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        sa.Column("vendor_slug", sa.String(length=64), nullable=False),
        sa.Column("models", sa.Integer(), nullable=False),
        sa.Column("labels", sa.Integer(), nullable=False),
        sa.Column("measured", sa.Integer(), nullable=False),
        sa.Column("best_grade", sa.String(length=1), nullable=True),
        sa.Column("worst_grade", sa.String(length=1), nullable=True),
        sa.Column("score_wh", sa.Float(), nullable=True),
        sa.Column("median_quality", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendors.id"]),
        sa.PrimaryKeyConstraint(
            "suite", "task", "phase", "hardware_class", "size_class", "vendor_id"
        ),
    )
    op.create_index(
        "ix_vendor_standings_rank",
        "vendor_standings",
        ["suite", "task", "phase", "hardware_class", "size_class", "score_wh", "vendor_slug"],
    )
    op.create_index(
        "ix_vendor_standings_vendor", "vendor_standings", ["vendor_id", "suite", "task", "phase"]
    )
    op.create_table(
        "current_counts",
        sa.Column("suite", sa.String(length=8), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("size_class", sa.String(length=24), nullable=False),
        sa.Column("hardware_class", sa.String(length=64), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("labels", sa.Integer(), nullable=False),
        sa.Column("peers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("suite", "task", "phase", "size_class", "hardware_class", "zone"),
    )
    op.create_table(
        "peer_bins",
        sa.Column("suite", sa.String(length=8), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("hardware_class", sa.String(length=64), nullable=False),
        sa.Column("size_class", sa.String(length=24), nullable=False),
        sa.Column("bin", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("peers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("suite", "task", "phase", "hardware_class", "size_class", "bin"),
    )
    op.create_table(
        "ranking_totals",
        sa.Column("suite", sa.String(length=8), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("hardware_class", sa.String(length=64), nullable=False),
        sa.Column("size_class", sa.String(length=24), nullable=False),
        sa.Column("vendors", sa.Integer(), nullable=False),
        sa.Column("scored", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("suite", "task", "phase", "hardware_class", "size_class"),
    )
    # Filled from the stored labels by the same code that maintains them (as 0002 and 0006 use
    # the grading code: the figures must be the ones ingest would have kept).
    from registry.services.rebuild import rebuild_all

    rebuild_all(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_vendor_standings_rank", table_name="vendor_standings")
    op.drop_index("ix_vendor_standings_vendor", table_name="vendor_standings")
    op.drop_table("vendor_standings")
    op.drop_table("current_counts")
    op.drop_table("peer_bins")
    op.drop_table("ranking_totals")
    for name in (
        "grade",
        "energy",
        "co2e",
        "model",
        "vendor",
        "date",
        "quality",
        "quality_desc",
    ):
        op.drop_index(f"ix_labels_board_{name}", table_name="labels")
    op.drop_index("ix_labels_peers", table_name="labels")
    op.create_index("ix_labels_current_peers", "labels", OLD_PEERS)
    with op.batch_alter_table("labels") as batch:
        batch.drop_column("model_name")
        batch.drop_column("vendor_slug")
