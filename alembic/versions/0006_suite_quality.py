"""Suite versions, model-size classes and the measured quality of labels.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-12

Labels gain typed columns for suite 2 (docs/methodology.md): ``suite`` (the label's
``benchmark.suite.version``), ``size_class`` (its model-size class, ``""`` where the task has
none), ``quality`` and ``quality_metric`` (the MEASURED quality figure only; declared figures stay
in the JSON) and ``energy_per_output_token_j`` (mean of ``results.energy_per_output_token_j``).

Grades, percentiles, the current flag and the vendor ranking now compare labels of one suite (and,
for peers and grades, one size class), so the indexes behind those queries gain the columns:

- ``ix_labels_current_peers`` (the peer percentile): task, phase, suite, hardware class, size
  class, current, then the graded figure;
- ``ix_labels_peer_group`` (listings of a peer group by energy): suite and size class after phase;
- ``ix_labels_model_newest`` / ``ix_labels_model_current`` (the current-label refresh, migration
  0005): the group is model + suite + task + phase + hardware class;
- ``ix_labels_vendor_ranking`` (``GET /v1/vendors``, migration 0003): suite after phase, and
  ``size_class`` and ``quality`` at the end, so the ranking (which now filters on both and reports
  the median quality) is still answered from the index alone.

Existing labels are suite 1 (the server default). The other columns are filled from the stored
JSON for the labels that carry the figures (none can before this revision, as the schema refused
them; the backfill reads only those rows, found by a JSON query, in batches). A label whose JSON
names another suite is re-graded under that suite and the current flags are recomputed.
"""

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500

OLD_GROUP = ["model_id", "task", "phase", "hardware_class"]
NEW_GROUP = ["model_id", "suite", "task", "phase", "hardware_class"]
OLD_INDEXES: dict[str, list[str]] = {
    "ix_labels_peer_group": ["task", "phase", "hardware_class", "zone", "energy_per_unit_wh"],
    "ix_labels_current_peers": [
        "task",
        "phase",
        "hardware_class",
        "current",
        "energy_ci95_high_wh",
    ],
    "ix_labels_model_newest": [*OLD_GROUP, "created_at", "id"],
    "ix_labels_vendor_ranking": [
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
    ],
}
NEW_INDEXES: dict[str, list[str]] = {
    "ix_labels_peer_group": [
        "task",
        "phase",
        "suite",
        "size_class",
        "hardware_class",
        "zone",
        "energy_per_unit_wh",
    ],
    "ix_labels_current_peers": [
        "task",
        "phase",
        "suite",
        "hardware_class",
        "size_class",
        "standard_workload",
        "current",
        "energy_ci95_high_wh",
    ],
    "ix_labels_model_newest": [*NEW_GROUP, "created_at", "id"],
    "ix_labels_vendor_ranking": [
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
    ],
}


def _create_indexes(indexes: dict[str, list[str]], group: list[str]) -> None:
    for name, columns in indexes.items():
        op.create_index(name, "labels", columns)
    op.create_index(
        "ix_labels_model_current",
        "labels",
        group,
        postgresql_where=sa.text("current"),
        sqlite_where=sa.text("current"),
    )


def _drop_indexes(indexes: dict[str, list[str]]) -> None:
    for name in [*indexes, "ix_labels_model_current"]:
        op.drop_index(name, table_name="labels")


def upgrade() -> None:
    with op.batch_alter_table("labels") as batch:
        batch.add_column(
            sa.Column("suite", sa.String(length=8), nullable=False, server_default="1")
        )
        batch.add_column(
            sa.Column("size_class", sa.String(length=24), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("quality", sa.Float(), nullable=True))
        batch.add_column(sa.Column("quality_metric", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("energy_per_output_token_j", sa.Float(), nullable=True))
        batch.add_column(
            sa.Column("standard_workload", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    _drop_indexes(OLD_INDEXES)
    _backfill()
    _create_indexes(NEW_INDEXES, NEW_GROUP)


def _candidates(bind: sa.Connection) -> sa.TextClause:
    """Labels whose JSON carries a figure of the new columns, or another suite than 1."""
    if bind.dialect.name == "postgresql":
        return sa.text(
            "SELECT id, measured, predicate FROM labels"
            " WHERE id > :after AND ("
            " predicate -> 'quality' IS NOT NULL"
            " OR predicate -> 'results' -> 'energy_per_output_token_j' IS NOT NULL"
            " OR COALESCE(predicate #>> '{benchmark,suite,version}', '1') <> '1'"
            ") ORDER BY id LIMIT :batch"
        )
    return sa.text(
        "SELECT id, measured, predicate FROM labels"
        " WHERE id > :after AND ("
        " json_extract(predicate, '$.quality') IS NOT NULL"
        " OR json_extract(predicate, '$.results.energy_per_output_token_j') IS NOT NULL"
        " OR COALESCE(CAST(json_extract(predicate, '$.benchmark.suite.version') AS TEXT), '1')"
        " <> '1'"
        ") ORDER BY id LIMIT :batch"
    )


def _batches(bind: sa.Connection) -> Iterator[list[Any]]:
    query = _candidates(bind)
    after = ""
    while True:
        rows = bind.execute(query, {"after": after, "batch": BATCH}).all()
        if not rows:
            return
        yield rows
        after = rows[-1].id


def _backfill() -> None:
    import json

    from registry.services.workloads import grade_of, suite_columns

    bind = op.get_bind()
    update = sa.text(
        "UPDATE labels SET suite = :suite, size_class = :size_class, quality = :quality,"
        " quality_metric = :quality_metric,"
        " energy_per_output_token_j = :energy_per_output_token_j,"
        " standard_workload = :standard_workload WHERE id = :id"
    )
    regrade = sa.text(
        "UPDATE labels SET grade = :grade, graded_under = :graded_under WHERE id = :id"
    )
    other_suites = False
    for rows in _batches(bind):
        updates, grades = [], []
        for row in rows:
            label = row.predicate if isinstance(row.predicate, dict) else json.loads(row.predicate)
            try:
                columns = suite_columns(label)
                if columns["suite"] != "1":  # graded under its own suite's bands
                    grade, graded_under = grade_of(
                        label,
                        measured=bool(row.measured),
                        suite=columns["suite"],
                        size_class=columns["size_class"],
                    )
                    grades.append({"id": row.id, "grade": grade, "graded_under": graded_under})
            except (KeyError, TypeError, ValueError):
                continue  # not a label document this revision can read: left as it was
            updates.append({"id": row.id, **columns})
            other_suites = other_suites or columns["suite"] != "1"
        if updates:
            bind.execute(update, updates)
        if grades:
            bind.execute(regrade, grades)
    if other_suites:
        _recompute_current(NEW_GROUP)


def _recompute_current(group: list[str]) -> None:
    """Every label's current flag: the newest in good standing of its group."""
    same_group = " AND ".join(f"newer.{c} = labels.{c}" for c in group)
    op.execute(
        f"""
        UPDATE labels SET current = (
            standing = 'ok' AND id = (
                SELECT newer.id FROM labels AS newer
                WHERE {same_group} AND newer.standing = 'ok'
                ORDER BY newer.created_at DESC, newer.id DESC
                LIMIT 1
            )
        )
        """  # noqa: S608  (column names from the constants above)
    )


def downgrade() -> None:
    bind = op.get_bind()
    _drop_indexes(NEW_INDEXES)
    # Without the suite column a model has one current label per task, phase and hardware class
    # again.
    if bind.execute(sa.text("SELECT 1 FROM labels WHERE suite <> '1' LIMIT 1")).first():
        _recompute_current(OLD_GROUP)
    with op.batch_alter_table("labels") as batch:
        batch.drop_column("standard_workload")
        batch.drop_column("energy_per_output_token_j")
        batch.drop_column("quality_metric")
        batch.drop_column("quality")
        batch.drop_column("size_class")
        batch.drop_column("suite")
    _create_indexes(OLD_INDEXES, OLD_GROUP)
