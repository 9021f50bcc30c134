"""Initial schema: vendors, API tokens, public keys, models, labels.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "vendors",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTC_TS, nullable=False),
        sa.UniqueConstraint("slug"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("vendor_id", sa.Integer(), sa.ForeignKey("vendors.id"), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC_TS, nullable=False),
        sa.Column("revoked_at", UTC_TS, nullable=True),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_index("ix_api_tokens_vendor_id", "api_tokens", ["vendor_id"])
    op.create_table(
        "public_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("vendor_id", sa.Integer(), sa.ForeignKey("vendors.id"), nullable=False),
        sa.Column("keyid", sa.String(length=64), nullable=False),
        sa.Column("public_key_b64", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC_TS, nullable=False),
        sa.Column("revoked_at", UTC_TS, nullable=True),
        sa.Column("compromised_since", UTC_TS, nullable=True),
        sa.UniqueConstraint("keyid"),
    )
    op.create_index("ix_public_keys_vendor_id", "public_keys", ["vendor_id"])
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("vendor_id", sa.Integer(), sa.ForeignKey("vendors.id"), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTC_TS, nullable=False),
        sa.UniqueConstraint("vendor_id", "name", name="uq_models_vendor_name"),
    )
    op.create_table(
        "labels",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("vendor_id", sa.Integer(), sa.ForeignKey("vendors.id"), nullable=False),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("models.id"), nullable=False),
        sa.Column("revision", sa.String(length=128), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("hardware_class", sa.String(length=64), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("functional_unit", sa.String(length=16), nullable=False),
        sa.Column("measured", sa.Boolean(), nullable=False),
        sa.Column("energy_per_unit_wh", sa.Float(), nullable=False),
        sa.Column("energy_ci95_high_wh", sa.Float(), nullable=False),
        sa.Column("co2e_per_unit_g", sa.Float(), nullable=False),
        sa.Column("created_at", UTC_TS, nullable=False),
        sa.Column("received_at", UTC_TS, nullable=False),
        sa.Column("keyid", sa.String(length=64), nullable=False),
        sa.Column("payload_sha256", sa.String(length=64), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column(
            "predicate",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
    )
    op.create_index(
        "ix_labels_peer_group",
        "labels",
        ["task", "phase", "hardware_class", "zone", "energy_per_unit_wh"],
    )
    op.create_index("ix_labels_vendor_received", "labels", ["vendor_id", "received_at"])
    op.create_index("ix_labels_model_received", "labels", ["model_id", "received_at"])
    op.create_index("ix_labels_received", "labels", ["received_at", "id"])
    op.create_index("ix_labels_created", "labels", ["created_at", "id"])


def downgrade() -> None:
    op.drop_table("labels")
    op.drop_table("models")
    op.drop_table("public_keys")
    op.drop_table("api_tokens")
    op.drop_table("vendors")
