"""Database tables.

Alembic owns the schema: these classes must match the migrations (a test checks).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    Index,
    LargeBinary,
    SmallInteger,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator
from sqlmodel import Column, Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite keeps no zone: restore it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store timezone-aware UTC datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


JSONDocument = JSON().with_variant(JSONB(), "postgresql")


class KeyStatus(StrEnum):
    active = "active"
    retired = "retired"
    compromised = "compromised"


class Standing(StrEnum):
    ok = "ok"
    key_compromised = "key-compromised"


class LabelKind(StrEnum):
    benchmark = "benchmark"
    training_run = "training-run"
    operational = "operational"


class Tier(StrEnum):
    self_reported = "self-reported"
    verified = "verified"


class Vendor(SQLModel, table=True):
    __tablename__ = "vendors"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True)
    display_name: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiToken(SQLModel, table=True):
    """A vendor's API token. Only the SHA-256 of the token is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    vendor_id: int = Field(foreign_key="vendors.id", index=True)
    token_sha256: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PublicKey(SQLModel, table=True):
    __tablename__ = "public_keys"

    id: int | None = Field(default=None, primary_key=True)
    vendor_id: int = Field(foreign_key="vendors.id", index=True)
    keyid: str = Field(max_length=64, unique=True)
    public_key_b64: str = Field(max_length=64)
    status: str = Field(default=KeyStatus.active, max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    compromised_since: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Model(SQLModel, table=True):
    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("vendor_id", "name", name="uq_models_vendor_name"),)

    id: int | None = Field(default=None, primary_key=True)
    vendor_id: int = Field(foreign_key="vendors.id")
    name: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


LEADERBOARD_GROUP = ("task", "phase", "suite")
LEADERBOARD_INCLUDE = ["hardware_class", "zone", "size_class", "measured", "standard_workload"]
LEADERBOARD_SORTS: dict[str, tuple[str, ...]] = {
    # name: the sort's key expressions after the group (services/leaderboard.py SORTS)
    "grade": ("(grade IS NULL)", "energy_ci95_high_wh", "vendor_slug", "model_name", "id"),
    "energy": ("energy_per_unit_wh", "vendor_slug", "model_name", "id"),
    "co2e": ("co2e_per_unit_g", "vendor_slug", "model_name", "id"),
    "model": ("lower(model_name)", "vendor_slug", "hardware_class", "id"),
    "vendor": ("vendor_slug", "lower(model_name)", "hardware_class", "id"),
    "date": ("created_at", "vendor_slug", "model_name", "id"),
    # labels without a quality figure last in both directions: one index per direction
    "quality": ("(quality IS NULL)", "coalesce(quality, 0.0)", "vendor_slug", "model_name", "id"),
    "quality_desc": (
        "(quality IS NOT NULL)",
        "coalesce(quality, 0.0)",
        "vendor_slug",
        "model_name",
        "id",
    ),
}


def leaderboard_indexes() -> list[Index]:
    """The partial indexes (``WHERE current``) behind the leaderboard's sort orders."""
    return [
        Index(
            f"ix_labels_board_{name}",
            *LEADERBOARD_GROUP,
            *(text(key) if "(" in key else key for key in keys),
            postgresql_where=text("current"),
            sqlite_where=text("current"),
            postgresql_include=[c for c in LEADERBOARD_INCLUDE if c not in keys],
        )
        for name, keys in LEADERBOARD_SORTS.items()
    ]


class Label(SQLModel, table=True):
    """One accepted label: the envelope bytes verbatim plus typed columns for queries."""

    __tablename__ = "labels"
    __table_args__ = (
        Index(
            "ix_labels_peer_group",
            "task",
            "phase",
            "suite",
            "size_class",
            "hardware_class",
            "zone",
            "energy_per_unit_wh",
        ),
        Index("ix_labels_vendor_received", "vendor_id", "received_at"),
        Index("ix_labels_model_received", "model_id", "received_at"),
        Index("ix_labels_received", "received_at", "id"),
        # the list of current labels of a task and phase, newest first (migration 0009)
        Index(
            "ix_labels_current_received",
            "task",
            "phase",
            "received_at",
            "id",
            postgresql_where=text("current"),
            sqlite_where=text("current"),
        ),
        Index("ix_labels_created", "created_at", "id"),
        # the peer percentile (queries.peers_of): a label's peers are the current measured labels
        # of its suite's standard workload, task, phase, hardware class and size class; exactly
        # those rows are in this index (migration 0007), so a count never reads the table
        Index(
            "ix_labels_peers",
            "task",
            "phase",
            "suite",
            "hardware_class",
            "size_class",
            "energy_ci95_high_wh",
            postgresql_where=text("current AND measured AND standard_workload"),
            sqlite_where=text("current AND measured AND standard_workload"),
        ),
        # the current-label refresh on ingest: the newest of a group (model, suite, task, phase,
        # hardware class), and its current label (migrations 0005, 0006)
        # only benchmark labels are current (migration 0008)
        Index(
            "ix_labels_model_newest",
            "model_id",
            "suite",
            "task",
            "phase",
            "hardware_class",
            "created_at",
            "id",
            postgresql_where=text("kind = 'benchmark'"),
            sqlite_where=text("kind = 'benchmark'"),
        ),
        # a model's labels of one kind in time order: series across revisions and production
        Index("ix_labels_model_kind_created", "model_id", "kind", "created_at", "id"),
        Index(
            "ix_labels_model_current",
            "model_id",
            "suite",
            "task",
            "phase",
            "hardware_class",
            postgresql_where=text("current"),
            sqlite_where=text("current"),
        ),
        # the leaderboard (services/leaderboard.py, migration 0007): one index per sort order over
        # the current labels of a suite, task and phase, keyset-paginated; the filters' columns
        # are included (PostgreSQL), so a filtered page is read from the index alone
        *leaderboard_indexes(),
        # GET /v1/vendors: per-vendor aggregates and medians from the index alone (migrations
        # 0003, 0006): every column the ranking reads or filters on is here
        Index(
            "ix_labels_vendor_ranking",
            "task",
            "phase",
            "suite",
            "current",
            "vendor_id",
            "model_id",
            "measured",
            "energy_ci95_high_wh",
            "grade",
            "hardware_class",
            "zone",
            "size_class",
            "quality",
            "standard_workload",
        ),
    )

    id: str = Field(primary_key=True, max_length=36)
    vendor_id: int = Field(foreign_key="vendors.id")
    model_id: int = Field(foreign_key="models.id")
    revision: str = Field(max_length=128)
    task: str = Field(max_length=64)
    phase: str = Field(max_length=16)
    hardware_class: str = Field(max_length=64)
    zone: str = Field(max_length=64)
    functional_unit: str = Field(max_length=16)
    measured: bool
    energy_per_unit_wh: float
    energy_ci95_high_wh: float
    co2e_per_unit_g: float
    created_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    grade: str | None = Field(default=None, max_length=1)
    """A-E from the methodology's absolute bands; None for estimated labels."""
    graded_under: str | None = Field(default=None, max_length=16)
    """The grading version (methodology file) the grade was given under."""
    current: bool = True
    """The newest label (by created_at) in good standing of its model for this suite, task, phase
    and hardware class."""
    keyid: str = Field(max_length=64)
    payload_sha256: str = Field(max_length=64)
    envelope: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    predicate: dict[str, Any] = Field(sa_column=Column(JSONDocument, nullable=False))
    brief: dict[str, Any] = Field(sa_column=Column(JSONDocument, nullable=False))
    """The parts of ``predicate`` that lists show (``services.briefs.brief_of``)."""
    log_index: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    """Its entry in the transparency log (set in the transaction that stores it)."""
    standing: str = Field(default=Standing.ok, max_length=24)
    """``ok``, or ``key-compromised`` when logged after its key's ``compromised_since``."""
    tier: str = Field(default=Tier.self_reported, max_length=16)
    """``self-reported``, or ``verified`` once an auditor's figures agree."""
    suite: str = Field(
        default="1", max_length=8, sa_column_kwargs={"server_default": "1", "nullable": False}
    )
    """The label's ``benchmark.suite.version``."""
    size_class: str = Field(
        default="", max_length=24, sa_column_kwargs={"server_default": "", "nullable": False}
    )
    """The model-size class it is graded and ranked in; ``""`` where its task has none."""
    quality: float | None = None
    """The MEASURED quality figure (0..1; ``quality.measured.value``); declared figures are not."""
    quality_metric: str | None = Field(default=None, max_length=32)
    energy_per_output_token_j: float | None = None
    """Mean gross energy per generated token (J), for text generation."""
    standard_workload: bool = Field(
        default=True, sa_column_kwargs={"server_default": text("true"), "nullable": False}
    )
    """False for a shrunk suite-2 run (fewer samples, a lower cap): stored and shown, but neither
    graded nor compared with its peers (percentiles, rankings)."""
    vendor_slug: str = Field(
        default="", max_length=64, sa_column_kwargs={"server_default": "", "nullable": False}
    )
    """The vendor's slug, copied for the leaderboard's sort orders (slugs never change)."""
    model_name: str = Field(
        default="", max_length=128, sa_column_kwargs={"server_default": "", "nullable": False}
    )
    """The model's name within its vendor, copied for the leaderboard's sort orders."""
    kind: str = Field(
        default=LabelKind.benchmark,
        max_length=16,
        sa_column_kwargs={"server_default": "benchmark", "nullable": False},
    )
    """``benchmark``, ``training-run`` (a whole run, measured) or ``operational`` (a period of a
    deployed model). Only benchmark labels are graded, current, ranked or peers (migration 0008)."""


class VendorStanding(SQLModel, table=True):
    """A vendor's place in the ranking of one group: its aggregates over its current labels of a
    suite, task and phase, for one hardware class and size class or all (``*``). Maintained in
    the transaction of each change to a current flag (services/standings.py)."""

    __tablename__ = "vendor_standings"
    __table_args__ = (
        Index(
            "ix_vendor_standings_rank",
            "suite",
            "task",
            "phase",
            "hardware_class",
            "size_class",
            "score_wh",
            "vendor_slug",
        ),
        # a vendor's rows of one suite, task and phase, recomputed on each of its changes
        Index("ix_vendor_standings_vendor", "vendor_id", "suite", "task", "phase"),
    )

    suite: str = Field(primary_key=True, max_length=8)
    task: str = Field(primary_key=True, max_length=64)
    phase: str = Field(primary_key=True, max_length=16)
    hardware_class: str = Field(primary_key=True, max_length=64)
    """A hardware class, or ``*``: all of them."""
    size_class: str = Field(primary_key=True, max_length=24)
    """A size class (``""`` where the task has none), or ``*``: all of them."""
    vendor_id: int = Field(primary_key=True, foreign_key="vendors.id")
    vendor_slug: str = Field(max_length=64)
    models: int
    labels: int
    measured: int
    best_grade: str | None = Field(default=None, max_length=1)
    worst_grade: str | None = Field(default=None, max_length=1)
    score_wh: float | None = None
    median_quality: float | None = None


class PeerBin(SQLModel, table=True):
    """How many peers (current, measured, standard-workload labels) of one peer group have a
    graded figure (``energy_ci95_high_wh``) in one bin: ``bin`` b holds the figures in
    [2**(b/16), 2**((b+1)/16)) (``standings.bin_of``). A percentile sums the bins above a
    label's and counts only inside its own bin. Maintained with ``current_counts``."""

    __tablename__ = "peer_bins"

    suite: str = Field(primary_key=True, max_length=8)
    task: str = Field(primary_key=True, max_length=64)
    phase: str = Field(primary_key=True, max_length=16)
    hardware_class: str = Field(primary_key=True, max_length=64)
    size_class: str = Field(primary_key=True, max_length=24)
    bin: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    peers: int = 0


class RankingTotal(SQLModel, table=True):
    """How many vendors one ranking group (as ``vendor_standings``) ranks, and how many of them
    have a score: a page's total and the rank of the vendors without a score, read by primary
    key. Maintained with ``vendor_standings``."""

    __tablename__ = "ranking_totals"

    suite: str = Field(primary_key=True, max_length=8)
    task: str = Field(primary_key=True, max_length=64)
    phase: str = Field(primary_key=True, max_length=16)
    hardware_class: str = Field(primary_key=True, max_length=64)
    size_class: str = Field(primary_key=True, max_length=24)
    vendors: int = 0
    scored: int = 0


class CurrentCount(SQLModel, table=True):
    """How many current labels (and of them, comparable peers: measured, standard workload) one
    (suite, task, phase, size class, hardware class, zone) holds: the leaderboard's totals and
    filter options. Maintained in the transaction of each change to a current flag."""

    __tablename__ = "current_counts"

    suite: str = Field(primary_key=True, max_length=8)
    task: str = Field(primary_key=True, max_length=64)
    phase: str = Field(primary_key=True, max_length=16)
    size_class: str = Field(primary_key=True, max_length=24)
    hardware_class: str = Field(primary_key=True, max_length=64)
    zone: str = Field(primary_key=True, max_length=64)
    labels: int = 0
    peers: int = 0


class LogEntry(SQLModel, table=True):
    """One leaf of the transparency log. Append-only: the database refuses UPDATE and DELETE."""

    __tablename__ = "log_entries"

    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    kind: str = Field(max_length=16)
    leaf: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    logged_at: datetime = Field(sa_type=UTCDateTime)
    label_id: str | None = Field(default=None, max_length=36, index=True)
    keyid: str | None = Field(default=None, max_length=64, index=True)


class LogNode(SQLModel, table=True):
    """The hash of the perfect subtree of 2**level leaves starting at leaf idx * 2**level."""

    __tablename__ = "log_nodes"

    level: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class LogHead(SQLModel, table=True):
    """One row (id 1): the log's size and root. Appends lock it, so they take turns."""

    __tablename__ = "log_head"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    tree_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    root_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # the hashes of merkle.frontier_keys(tree_size), concatenated (32 bytes each)
    frontier: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    updated_at: datetime = Field(sa_type=UTCDateTime)


class Auditor(SQLModel, table=True):
    """A third party, registered by the operator, whose attestations can verify labels."""

    __tablename__ = "auditors"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True)
    display_name: str = Field(max_length=200)
    keyid: str = Field(max_length=64, unique=True)
    public_key_b64: str = Field(max_length=64)
    token_sha256: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Attestation(SQLModel, table=True):
    """An auditor's signed statement about a label, with the figures it measured itself."""

    __tablename__ = "attestations"
    __table_args__ = (
        UniqueConstraint("label_id", "auditor_id", name="uq_attestations_label_auditor"),
    )

    id: int | None = Field(default=None, primary_key=True)
    label_id: str = Field(foreign_key="labels.id", max_length=36)
    auditor_id: int = Field(foreign_key="auditors.id")
    payload_sha256: str = Field(max_length=64)
    envelope: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    figures: dict[str, Any] = Field(sa_column=Column(JSONDocument, nullable=False))
    agrees: bool
    log_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RateLimitBucket(SQLModel, table=True):
    """Shared rate-limit state (GCRA): the bucket's theoretical arrival time, epoch seconds."""

    __tablename__ = "rate_limits"

    bucket: str = Field(primary_key=True, max_length=96)
    tat_s: float = Field(sa_column=Column(Float, nullable=False))
