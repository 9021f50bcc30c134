"""Transparency log, label standing and audit tier, auditors, shared rate limits.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

The log is three tables: ``log_entries`` (leaf bytes per index), ``log_nodes`` (the hash of every
perfect subtree, so proofs read O(log n) rows) and ``log_head`` (one row: size and root). The
database itself refuses to change history: triggers abort any UPDATE or DELETE (and TRUNCATE on
PostgreSQL) of entries and nodes, and any shrinking of the head.

Labels and keys stored before this revision are appended to the log here, in the order they were
received, so the log covers every label from the start.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("log_entries", "log_nodes")

PG_FUNCTIONS = """
CREATE FUNCTION carbonlabel_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the transparency log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE FUNCTION carbonlabel_log_head_grows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'UPDATE' OR NEW.tree_size < OLD.tree_size THEN
    RAISE EXCEPTION 'the transparency log cannot shrink: % on log_head refused', TG_OP
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
"""


def _utc(value: object) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def upgrade() -> None:
    timestamp = sa.DateTime(timezone=True)
    op.create_table(
        "log_entries",
        sa.Column("idx", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.Column("logged_at", timestamp, nullable=False),
        sa.Column("label_id", sa.String(length=36), nullable=True),
        sa.Column("keyid", sa.String(length=64), nullable=True),
    )
    op.create_index("ix_log_entries_label_id", "log_entries", ["label_id"])
    op.create_index("ix_log_entries_keyid", "log_entries", ["keyid"])
    op.create_table(
        "log_nodes",
        sa.Column("level", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "log_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(), nullable=False),
        # the hashes of merkle.frontier_keys(tree_size), concatenated: an append reads only this row
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", timestamp, nullable=False),
    )
    with op.batch_alter_table("labels") as batch:
        batch.add_column(sa.Column("log_index", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("standing", sa.String(length=24), nullable=False, server_default="ok")
        )
        batch.add_column(
            sa.Column("tier", sa.String(length=16), nullable=False, server_default="self-reported")
        )
    with op.batch_alter_table("labels") as batch:
        batch.alter_column("standing", server_default=None)
        batch.alter_column("tier", server_default=None)
    op.create_table(
        "auditors",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("slug", sa.String(length=64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("keyid", sa.String(length=64), nullable=False, unique=True),
        sa.Column("public_key_b64", sa.String(length=64), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False, unique=True),
        sa.Column("created_at", timestamp, nullable=False),
    )
    op.create_table(
        "attestations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("label_id", sa.String(length=36), sa.ForeignKey("labels.id"), nullable=False),
        sa.Column("auditor_id", sa.Integer(), sa.ForeignKey("auditors.id"), nullable=False),
        sa.Column("payload_sha256", sa.String(length=64), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column(
            "figures",
            sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("agrees", sa.Boolean(), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.Column("created_at", timestamp, nullable=False),
        sa.UniqueConstraint("label_id", "auditor_id", name="uq_attestations_label_auditor"),
    )
    op.create_table(
        "rate_limits",
        sa.Column("bucket", sa.String(length=96), primary_key=True),
        sa.Column("tat_s", sa.Float(), nullable=False),
        prefixes=["UNLOGGED"] if op.get_bind().dialect.name == "postgresql" else [],
    )
    _backfill()
    _append_only_triggers()


def _backfill() -> None:
    """Append the labels and key registrations stored so far, oldest first, and set the head."""
    from schemas import merkle
    from schemas.tlog import encode_leaf

    bind = op.get_bind()
    events: list[tuple[datetime, int, dict[str, object]]] = []
    keys = bind.execute(
        sa.text(
            "SELECT k.keyid, k.public_key_b64, k.created_at, k.status, k.revoked_at, "
            "k.compromised_since, v.slug FROM public_keys k JOIN vendors v ON v.id = k.vendor_id"
        )
    ).all()
    for key in keys:
        created = _utc(key.created_at)
        add = {"vendor": key.slug, "keyid": key.keyid, "public_key": key.public_key_b64}
        events.append((created, 0, {"kind": "key-add", **add}))
        if key.status == "retired" and key.revoked_at is not None:
            retire = {"vendor": key.slug, "keyid": key.keyid}
            events.append((_utc(key.revoked_at), 2, {"kind": "key-retire", **retire}))
        elif key.status == "compromised" and key.revoked_at is not None:
            since = _utc(key.compromised_since or key.revoked_at)
            revoke = {
                "vendor": key.slug,
                "keyid": key.keyid,
                "reason": "compromised",
                "compromised_since": since.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
            events.append((_utc(key.revoked_at), 2, {"kind": "key-revoke", **revoke}))
    labels = bind.execute(
        sa.text(
            "SELECT l.id, l.keyid, l.payload_sha256, l.envelope, l.received_at, v.slug "
            "FROM labels l JOIN vendors v ON v.id = l.vendor_id"
        )
    ).all()
    import hashlib

    for label in labels:
        events.append(
            (
                _utc(label.received_at),
                1,
                {
                    "kind": "label",
                    "label_id": label.id,
                    "vendor": label.slug,
                    "keyid": label.keyid,
                    "payload_sha256": label.payload_sha256,
                    "envelope_sha256": hashlib.sha256(bytes(label.envelope)).hexdigest(),
                },
            )
        )
    events.sort(key=lambda e: (e[0], e[1], str(e[2].get("label_id") or e[2].get("keyid"))))
    nodes: dict[tuple[int, int], bytes] = {}
    entries = sa.table(
        "log_entries",
        sa.column("idx"),
        sa.column("kind"),
        sa.column("leaf"),
        sa.column("leaf_hash"),
        sa.column("logged_at"),
        sa.column("label_id"),
        sa.column("keyid"),
    )
    for index, (logged_at, _, fields) in enumerate(events):
        kind = str(fields.pop("kind"))
        leaf = encode_leaf(kind, logged_at, **fields)  # type: ignore[arg-type]
        hashed = merkle.leaf_hash(leaf)
        nodes.update(merkle.append_nodes(index, hashed, nodes))
        bind.execute(
            entries.insert().values(
                idx=index,
                kind=kind,
                leaf=leaf,
                leaf_hash=hashed,
                logged_at=logged_at,
                label_id=fields.get("label_id"),
                keyid=fields.get("keyid"),
            )
        )
        if kind == "label":
            bind.execute(
                sa.text("UPDATE labels SET log_index = :i WHERE id = :id"),
                {"i": index, "id": fields["label_id"]},
            )
    node_table = sa.table("log_nodes", sa.column("level"), sa.column("idx"), sa.column("hash"))
    if nodes:
        bind.execute(
            node_table.insert(),
            [{"level": level, "idx": idx, "hash": h} for (level, idx), h in sorted(nodes.items())],
        )
    size = len(events)
    head = sa.table(
        "log_head",
        sa.column("id"),
        sa.column("tree_size"),
        sa.column("root_hash"),
        sa.column("frontier"),
        sa.column("updated_at"),
    )
    bind.execute(
        head.insert().values(
            id=1,
            tree_size=size,
            root_hash=merkle.root_from(size, nodes),
            frontier=merkle.pack_frontier(size, nodes),
            updated_at=datetime.now(UTC),
        )
    )
    # Labels whose key was compromised before they were logged lose their standing.
    bind.execute(
        sa.text(
            "UPDATE labels SET standing = 'key-compromised', current = :false WHERE keyid IN ("
            "SELECT keyid FROM public_keys WHERE status = 'compromised' "
            "AND compromised_since IS NOT NULL AND compromised_since <= labels.received_at)"
        ),
        {"false": False},
    )


def _append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTIONS)
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION carbonlabel_log_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION carbonlabel_log_append_only()"
            )
        op.execute(
            "CREATE TRIGGER log_head_grows BEFORE UPDATE OR DELETE ON log_head "
            "FOR EACH ROW EXECUTE FUNCTION carbonlabel_log_head_grows()"
        )
        op.execute(
            "CREATE TRIGGER log_head_no_truncate BEFORE TRUNCATE ON log_head "
            "FOR EACH STATEMENT EXECUTE FUNCTION carbonlabel_log_append_only()"
        )
        return
    message = "'the transparency log is append-only'"
    for table in APPEND_ONLY:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, {message}); END"
            )
    op.execute(
        "CREATE TRIGGER log_head_grows BEFORE UPDATE ON log_head "
        "WHEN NEW.tree_size < OLD.tree_size "
        "BEGIN SELECT RAISE(ABORT, 'the transparency log cannot shrink'); END"
    )
    op.execute(
        "CREATE TRIGGER log_head_no_delete BEFORE DELETE ON log_head "
        "BEGIN SELECT RAISE(ABORT, 'the transparency log cannot shrink'); END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP TRIGGER IF EXISTS log_head_grows ON log_head")
        op.execute("DROP TRIGGER IF EXISTS log_head_no_truncate ON log_head")
        op.execute("DROP FUNCTION IF EXISTS carbonlabel_log_append_only()")
        op.execute("DROP FUNCTION IF EXISTS carbonlabel_log_head_grows()")
    op.drop_table("rate_limits")
    op.drop_table("attestations")
    op.drop_table("auditors")
    with op.batch_alter_table("labels") as batch:
        batch.drop_column("tier")
        batch.drop_column("standing")
        batch.drop_column("log_index")
    op.drop_table("log_head")
    op.drop_table("log_nodes")
    op.drop_table("log_entries")
