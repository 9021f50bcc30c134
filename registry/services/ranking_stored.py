"""The vendor ranking's reads of ``vendor_standings`` (maintained on every change,
services/standings.py): a page in rank order from ``ix_vendor_standings_rank`` with its ranks,
or chosen vendors at their ranks in the whole group, and the group's totals from
``ranking_totals``; the cost does not grow with the number of labels (``ranking.ranking_page``
reads here when no filter cuts across the stored groups)."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import String, and_, any_, bindparam, func, or_

# SQLModel's select is typed for at most four columns
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, col

from registry.db import read_mappings
from registry.models import RankingTotal, Vendor, VendorStanding
from registry.services.ranking_rows import VendorRank


@cache
def stored_statements() -> dict[str, Any]:
    """The ranking's reads of ``vendor_standings``, built once (bind parameters: the group, the
    cursor and the page size), each a range of ``ix_vendor_standings_rank`` or its primary key:
    the group's totals come from ``ranking_totals``; only the counts behind a page's first rank
    and position read the index up to that page."""
    standings = VendorStanding.__table__  # type: ignore[attr-defined]
    totals = RankingTotal.__table__  # type: ignore[attr-defined]
    c = standings.c
    in_group = and_(
        c.suite == bindparam("suite"),
        c.task == bindparam("task"),
        c.phase == bindparam("phase"),
        c.hardware_class == bindparam("hardware_class"),
        c.size_class == bindparam("size_class"),
    )
    order = (c.score_wh.asc().nulls_last(), c.vendor_slug)
    group_totals = sa_select(totals.c.vendors, totals.c.scored).where(
        totals.c.suite == bindparam("suite"),
        totals.c.task == bindparam("task"),
        totals.c.phase == bindparam("phase"),
        totals.c.hardware_class == bindparam("hardware_class"),
        totals.c.size_class == bindparam("size_class"),
    )
    # every row carries the group's totals (one primary-key read, done once: the subqueries
    # do not depend on the row), so a page that has rows needs no statement of its own for them
    # only what a row shows (not the group's five columns, nor the vendor's id): a third less
    # for the driver to load and for the rows' mappings
    rows = (
        sa_select(
            c.vendor_slug,
            col(Vendor.display_name),
            c.score_wh,
            c.models,
            c.labels,
            c.measured,
            c.best_grade,
            c.worst_grade,
            c.median_quality,
            group_totals.with_only_columns(totals.c.vendors).scalar_subquery().label("g_vendors"),
            group_totals.with_only_columns(totals.c.scored).scalar_subquery().label("g_scored"),
        )
        .join(Vendor, col(Vendor.id) == c.vendor_id)
        .where(in_group)
    )

    def count(*where: Any) -> Any:
        return sa_select(func.count()).select_from(standings).where(in_group, *where)

    other = standings.alias("other")
    better_than_row = (
        sa_select(func.count())
        .select_from(other)
        .where(
            other.c.suite == c.suite,
            other.c.task == c.task,
            other.c.phase == c.phase,
            other.c.hardware_class == c.hardware_class,
            other.c.size_class == c.size_class,
            other.c.score_wh < c.score_wh,
        )
        .scalar_subquery()
        .label("better")
    )
    chosen = rows.add_columns(better_than_row)

    after_score = or_(
        c.score_wh > bindparam("score"),
        and_(c.score_wh == bindparam("score"), c.vendor_slug > bindparam("slug")),
        c.score_wh.is_(None),
    )
    after_unscored = and_(c.score_wh.is_(None), c.vendor_slug > bindparam("slug"))
    return {
        "first": rows.order_by(*order).limit(bindparam("n")),
        "after_score": rows.where(after_score).order_by(*order).limit(bindparam("n")),
        "after_unscored": rows.where(after_unscored).order_by(*order).limit(bindparam("n")),
        # chosen vendors (found by their unique slug, then the standings' primary key), each
        # with the count of the group's vendors better than it (its rank is one more): on
        # PostgreSQL the slugs as one array (one text, on the driver)
        "chosen": chosen.where(col(Vendor.slug).in_(bindparam("slugs", expanding=True))),
        "chosen_array": chosen.where(
            col(Vendor.slug) == any_(bindparam("slug_array", type_=postgresql.ARRAY(String)))
        ),
        "totals": group_totals,
        # vendors strictly better than a score: the rank is one more
        "better": count(c.score_wh < bindparam("score")),
        # rows before (score, slug) in the ranking order: the position is one more
        "before_score": count(
            or_(
                c.score_wh < bindparam("score"),
                and_(c.score_wh == bindparam("score"), c.vendor_slug < bindparam("slug")),
            )
        ),
        "before_unscored": count(
            or_(
                c.score_wh.is_not(None),
                and_(c.score_wh.is_(None), c.vendor_slug < bindparam("slug")),
            )
        ),
    }


def stored_page(
    session: Session,
    group: tuple[str, str, str, str, str],
    *,
    limit: int,
    after: tuple[float | None, str] | None,
    vendors: list[str] | None,
) -> tuple[list[VendorRank], bool, int]:
    statements = stored_statements()
    connection = session.connection()
    suite, task, phase, hardware_class, size_class = group
    params: dict[str, Any] = {
        "suite": suite,
        "task": task,
        "phase": phase,
        "hardware_class": hardware_class,
        "size_class": size_class,
        "n": limit + 1,
    }

    def scalar(name: str, **extra: Any) -> int:
        return int(connection.execute(statements[name], params | extra).scalar_one())

    def group_totals(rows: list[Any]) -> tuple[int, int]:
        """The group's size and its scored vendors (ranking_totals): from the rows, which carry
        them, or by primary key when there is none."""
        if rows:
            return int(rows[0]["g_vendors"] or 0), int(rows[0]["g_scored"] or 0)
        counted = read_mappings(connection, statements["totals"], params)
        return (int(counted[0]["vendors"]), int(counted[0]["scored"])) if counted else (0, 0)

    ranks: list[int] = []
    if vendors is not None:
        found = (
            read_mappings(connection, statements["chosen_array"], params | {"slug_array": vendors})
            if connection.dialect.name == "postgresql"
            else list(
                connection.execute(statements["chosen"], params | {"slugs": vendors}).mappings()
            )
        )
        rows = sorted(
            found, key=lambda r: (r["score_wh"] is None, r["score_wh"] or 0.0, r["vendor_slug"])
        )[:limit]
        total, scored = group_totals(rows)
        # each at its rank in the whole group: one more than the vendors with a better score
        for r in rows:
            ranks.append(1 + (scored if r["score_wh"] is None else int(r["better"])))
        more = False
    else:
        if after is None:
            fetched = read_mappings(connection, statements["first"], params)
        elif after[0] is None:
            fetched = read_mappings(
                connection, statements["after_unscored"], params | {"slug": after[1]}
            )
        else:
            fetched = read_mappings(
                connection,
                statements["after_score"],
                params | {"score": after[0], "slug": after[1]},
            )
        more = len(fetched) > limit
        rows = fetched[:limit]
        total, scored = group_totals(fetched)
        if rows:
            # the first row's rank and position from two index counts (none on the first page:
            # its first row is the group's first); the others follow
            first = rows[0]
            score = first["score_wh"]
            if after is None:
                rank = position = 1
            elif score is None:
                rank = 1 + scored
                position = 1 + scalar("before_unscored", slug=first["vendor_slug"])
            else:
                rank = 1 + scalar("better", score=score)
                position = 1 + scalar("before_score", score=score, slug=first["vendor_slug"])
            previous = score
            for offset, r in enumerate(rows):
                if offset and r["score_wh"] != previous:  # equal scores share a rank
                    rank = position + offset
                previous = r["score_wh"]
                ranks.append(rank)
    page = []
    for r, rank in zip(rows, ranks, strict=True):
        labels, measured = int(r["labels"]), int(r["measured"])
        page.append(
            VendorRank.of(
                {
                    "rank": rank,
                    "vendor": r["vendor_slug"],
                    "display_name": r["display_name"],
                    "score_wh": r["score_wh"],
                    "models": int(r["models"]),
                    "labels": labels,
                    "measured": measured,
                    "estimated": labels - measured,
                    "measured_share": measured / labels if labels else 0.0,
                    "best_grade": r["best_grade"],
                    "worst_grade": r["worst_grade"],
                    "median_quality": r["median_quality"],
                }
            )
        )
    return page, more, total
