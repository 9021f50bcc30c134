"""An index for the vendor ranking.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

``GET /v1/vendors`` aggregates the current labels of a task and phase per vendor and takes each
vendor's median of ``energy_ci95_high_wh``. This index holds every column those queries read, in
vendor order after the (task, phase, current) prefix, so they can be answered from the index
alone (SQLite does; PostgreSQL with an index-only scan once the table is vacuumed), whether or not
a hardware class or zone is given. Without it, SQLite walked the whole table in vendor order.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = [
    "task",
    "phase",
    "current",
    "vendor_id",
    "model_id",
    "measured",
    "energy_ci95_high_wh",
    "grade",
    "hardware_class",
    "zone",
]


def upgrade() -> None:
    op.create_index("ix_labels_vendor_ranking", "labels", COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_labels_vendor_ranking", table_name="labels")
