"""Grades and the current-label flag.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("labels") as batch:
        batch.add_column(sa.Column("grade", sa.String(length=1), nullable=True))
        batch.add_column(sa.Column("graded_under", sa.String(length=16), nullable=True))
        batch.add_column(
            sa.Column("current", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    # Existing rows: only the newest label of each (model, task, phase, hardware class) is current.
    op.execute(
        """
        UPDATE labels SET current = (
            id = (
                SELECT newer.id FROM labels AS newer
                WHERE newer.model_id = labels.model_id AND newer.task = labels.task
                  AND newer.phase = labels.phase AND newer.hardware_class = labels.hardware_class
                ORDER BY newer.created_at DESC, newer.id DESC
                LIMIT 1
            )
        )
        """
    )
    with op.batch_alter_table("labels") as batch:
        batch.alter_column("current", server_default=None)
    _grade_existing()
    op.create_index(
        "ix_labels_current_peers",
        "labels",
        ["task", "phase", "hardware_class", "current", "energy_ci95_high_wh"],
    )
    op.create_index(
        "ix_labels_model_group", "labels", ["model_id", "task", "phase", "hardware_class"]
    )


def _grade_existing() -> None:
    """Grade the labels stored before grades existed, under the methodology shipped now."""
    from schemas.grading import grade_for, grading_version

    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, task, phase, hardware_class, energy_ci95_high_wh, measured FROM labels")
    ).all()
    version = grading_version()
    for row in rows:
        grade = grade_for(
            task=row.task,
            phase=row.phase,
            hardware_class=row.hardware_class,
            energy_ci95_high_wh=row.energy_ci95_high_wh,
            measured=bool(row.measured),
        )
        bind.execute(
            sa.text("UPDATE labels SET grade = :grade, graded_under = :version WHERE id = :id"),
            {"grade": grade, "version": version if grade else None, "id": row.id},
        )


def downgrade() -> None:
    op.drop_index("ix_labels_model_group", table_name="labels")
    op.drop_index("ix_labels_current_peers", table_name="labels")
    with op.batch_alter_table("labels") as batch:
        batch.drop_column("current")
        batch.drop_column("graded_under")
        batch.drop_column("grade")
