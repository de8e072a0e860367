"""The explorer's reads: a page of pair summaries in keyset order, its count, text search, and
what a page shows of each pair besides its summary.

A listing counts the votes up to a watermark (`as_of`, a judgment id). A pair with no later
judgment is read from `pair_summaries` as it is (and walked in an index's order); the few
pairs voted on since are read apart with their counts taken back to the watermark, and the
two are merged. So while votes keep arriving, a listing's pages neither repeat a pair nor
skip one, whatever the sort.
"""

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from pickwise.models.review import AGREEMENT_SQL, MAJORITY_SQL
from pickwise.review.cursor import SORT_KEYS, Cursor
from pickwise.review.sql_filters import SEARCH_FOUND, SEARCH_MATCHES, TSQUERY_OF, Conditions
from pickwise.review.summaries_repository import insert_summaries_sql
from pickwise.vocabulary import Choice, PairSort

# The explorer reads through the request's session; exports through their read connection.
Reader = AsyncSession | AsyncConnection

_COUNTS = ("judgments", "votes", "votes_a", "votes_b", "ties", "both_bad", "rationales")
_FIXED = (
    "pair_id",
    "project_id",
    "batch_id",
    "prompt_id",
    "response_a_id",
    "response_b_id",
    "created_at",
    "model_low",
    "model_high",
    "is_gold",
    "pair_status",
    "excluded",
    "votes_wanted",
    "open_flags",
    "slots",
    "decision",
)
_DERIVED = ("agreement", "majority", "agreement_low", "agreement_high")
COLUMNS = (*_FIXED, *_COUNTS, *_DERIVED)
_SELECT = ", ".join(f"s.{column}" for column in COLUMNS)

_LAST_ID = 2**63 - 1
# Judgments after the watermark, per pair, as the summary counts them.
_RECENT = f"""
recent AS MATERIALIZED (
    SELECT v.pair_id,
           count(*) AS judgments,
           count(*) FILTER (WHERE v.counted) AS votes,
           count(*) FILTER (WHERE v.counted AND v.choice = '{Choice.A}') AS votes_a,
           count(*) FILTER (WHERE v.counted AND v.choice = '{Choice.B}') AS votes_b,
           count(*) FILTER (WHERE v.counted AND v.choice = '{Choice.TIE}') AS ties,
           count(*) FILTER (WHERE v.counted AND v.choice = '{Choice.BOTH_BAD}') AS both_bad,
           count(*) FILTER (WHERE v.counted AND v.with_rationale) AS rationales
    FROM (
        SELECT j.pair_id, j.choice, j.rationale IS NOT NULL AS with_rationale,
               x.user_id IS NULL AS counted
        FROM judgments j
        LEFT JOIN project_rater_exclusions x
               ON x.project_id = j.project_id AND x.user_id = j.rater_id
        -- The project's judgments after the watermark as a range of the (project, id)
        -- index, bounded both ways: "project_id = p AND id > w" lets the planner walk the
        -- primary key instead, through every later project's judgments.
        WHERE (j.project_id, j.id) > (CAST(:project_id AS bigint), CAST(:as_of AS bigint))
          AND (j.project_id, j.id) <= (CAST(:project_id AS bigint), {_LAST_ID})
    ) v
    GROUP BY v.pair_id
)"""
# The summaries of the pairs voted on since the watermark, as they were at the watermark.
_THEN = f"""(
    SELECT b.*, {AGREEMENT_SQL} AS agreement, {MAJORITY_SQL} AS majority,
           coalesce({AGREEMENT_SQL}, 2) AS agreement_low,
           coalesce(-({AGREEMENT_SQL}), 1) AS agreement_high
    FROM (
        SELECT {", ".join(f"s.{column}" for column in _FIXED)},
               {", ".join(f"s.{column} - r.{column} AS {column}" for column in _COUNTS)}
        -- LATERAL: one primary-key probe per pair voted on since, never a scan of them all.
        -- OFFSET 0 keeps it one: the planner cannot tell how few pairs `recent` holds
        -- (usually none) and, free to, joins it by hash to every pair the filter matches.
        FROM recent r CROSS JOIN LATERAL (
            SELECT * FROM pair_summaries WHERE pair_id = r.pair_id OFFSET 0
        ) s
    ) b
) s"""
_NOW = """pair_summaries s
    WHERE s.project_id = :project_id AND s.pair_id NOT IN (SELECT pair_id FROM recent)"""


@dataclass(frozen=True)
class Summary:
    """One row of `pair_summaries`, as of a listing's watermark."""

    pair_id: int
    project_id: int
    batch_id: int
    prompt_id: int
    response_a_id: int
    response_b_id: int
    created_at: datetime
    model_low: str
    model_high: str
    is_gold: bool
    pair_status: str
    excluded: bool
    votes_wanted: int | None
    open_flags: int
    slots: int
    decision: str | None
    judgments: int
    votes: int
    votes_a: int
    votes_b: int
    ties: int
    both_bad: int
    rationales: int
    agreement: float | None
    majority: str | None
    agreement_low: float
    agreement_high: float

    def key(self, sort: PairSort) -> Any:
        return getattr(self, SORT_KEYS[sort][0])


def _order(sort: PairSort, backwards: bool, qualified: bool) -> str:
    column, descending = SORT_KEYS[sort]
    direction = "DESC" if descending != backwards else "ASC"
    prefix = "s." if qualified else ""
    return f"{prefix}{column} {direction}, {prefix}pair_id {direction}"


def _keyset(sort: PairSort, cursor: Cursor | None, backwards: bool) -> tuple[str, dict[str, Any]]:
    if cursor is None:
        return "true", {}
    column, descending = SORT_KEYS[sort]
    comparison = "<" if descending != backwards else ">"
    clause = f"(s.{column}, s.pair_id) {comparison} (:cursor_key, :cursor_pair)"
    return clause, {"cursor_key": cursor.key, "cursor_pair": cursor.pair_id}


async def watermark(session: Reader, project_id: int) -> int:
    """The project's last judgment id (0 without judgments)."""
    last = await session.scalar(
        text("SELECT max(id) FROM judgments WHERE project_id = :project_id"),
        {"project_id": project_id},
    )
    return int(last or 0)


async def page(
    session: AsyncSession,
    project_id: int,
    where: Conditions,
    sort: PairSort,
    *,
    cursor: Cursor | None,
    backwards: bool,
    limit: int,
    params: dict[str, Any],
) -> list[Summary]:
    """Up to `limit` summaries after (or, `backwards`, before) the cursor, in listing order
    (backwards: nearest the cursor first)."""
    keyset, keyset_params = _keyset(sort, cursor, backwards)
    statement = text(
        f"""
        WITH {_RECENT}
        SELECT * FROM (
            (SELECT {_SELECT} FROM {_NOW} AND {where.sql} AND {keyset}
             ORDER BY {_order(sort, backwards, True)} LIMIT :limit)
            UNION ALL
            (SELECT {_SELECT} FROM {_THEN} WHERE {where.sql} AND {keyset})
        ) listing
        ORDER BY {_order(sort, backwards, False)}
        LIMIT :limit
        """
    )
    bound = {**params, **where.params, **keyset_params, "limit": limit, "project_id": project_id}
    rows = await session.execute(statement, bound)
    return [Summary(**row._mapping) for row in rows]


async def count_up_to(
    session: AsyncSession,
    project_id: int,
    where: Conditions,
    bound: int,
    params: dict[str, Any],
) -> int:
    """Matching pairs, counted up to `bound` among those not voted on since the watermark
    (plus the few that were)."""
    statement = text(
        f"""
        WITH {_RECENT}
        SELECT (SELECT count(*) FROM (SELECT 1 FROM {_NOW} AND {where.sql} LIMIT :bound) x)
             + (SELECT count(*) FROM {_THEN} WHERE {where.sql})
        """
    )
    bound_params = {**params, **where.params, "bound": bound, "project_id": project_id}
    return int(await session.scalar(statement, bound_params) or 0)


async def estimate(
    session: AsyncSession, project_id: int, where: Conditions, params: dict[str, Any]
) -> int:
    """Postgres's estimate of the matching pairs (its plan's row count)."""
    return await planned_rows(
        session,
        f"SELECT 1 FROM pair_summaries s WHERE s.project_id = :project_id AND {where.sql}",
        {**params, **where.params, "project_id": project_id},
    )


async def planned_rows(session: Reader, statement: str, params: dict[str, Any]) -> int:
    """The rows Postgres expects `statement` to return: its plan's top node, whatever the
    plan's shape. The statement must be the count's own shape, with no LIMIT."""
    plan = await session.scalar(text(f"EXPLAIN (FORMAT JSON) {statement}"), params)
    parsed = json.loads(plan) if isinstance(plan, str) else plan
    return int(parsed[0]["Plan"]["Plan Rows"])


async def tsquery(session: Reader, words: str) -> str:
    """The search's words as a text-search query ('' when they hold no word)."""
    return str(await session.scalar(text(TSQUERY_OF), {"q": words}) or "")


async def answers_not_searchable(session: Reader, project_id: int) -> int:
    """The project's imported answers the search catch-up has not reached yet."""
    pending = await session.scalar(
        text(
            "SELECT coalesce(sum(search_pending), 0) FROM batches "
            "WHERE project_id = :project_id AND search_pending > 0"
        ),
        {"project_id": project_id},
    )
    return int(pending or 0)


async def search_estimate(
    session: Reader, project_id: int, query: str, as_of: int, *, scan_unindexed: bool
) -> int:
    """Postgres's estimate of the pairs `search_matches` would find with no cap (from the
    text indexes' statistics; no text is read)."""
    params = {
        "project_id": project_id,
        "tsquery": query,
        "as_of": as_of,
        "scan_unindexed": scan_unindexed,
    }
    return await planned_rows(session, SEARCH_FOUND, params)


_EXPLORER_SETTINGS = text(
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), "
    "set_config('max_parallel_workers_per_gather', '0', true)"
)


async def explorer_settings(session: Reader) -> None:
    """For this transaction: plan each statement with its values (the explorer's filters are
    too uneven for one generic plan: a rare state and a common one want different plans), and
    no parallel workers (starting them costs more than a page of 50 rows takes)."""
    await session.execute(_EXPLORER_SETTINGS)


async def search_matches(
    session: Reader, project_id: int, query: str, as_of: int, cap: int, *, scan_unindexed: bool
) -> list[int]:
    """Pairs whose texts match, found from the text indexes (and, with `scan_unindexed`, by
    reading the answers not indexed yet): at most `cap` rows (a pair may come several
    times)."""
    rows = await session.scalars(
        text(SEARCH_MATCHES),
        {
            "project_id": project_id,
            "tsquery": query,
            "as_of": as_of,
            "cap": cap,
            "scan_unindexed": scan_unindexed,
        },
    )
    return list(rows)


@dataclass(frozen=True)
class RowText:
    """What a listing shows of a pair besides its summary."""

    pair_id: int
    batch_filename: str
    prompt_excerpt: str
    model_a: str
    model_b: str
    median_seconds: float | None


_ROW_TEXT = text(
    """
    SELECT pr.id, b.filename, left(p.turns -> -1 ->> 'content', :excerpt),
           ra.model, rb.model,
           (SELECT percentile_cont(0.5) WITHIN GROUP (
                       ORDER BY extract(epoch FROM j.submitted_at - j.shown_at))
            FROM judgments j
            LEFT JOIN project_rater_exclusions x
                   ON x.project_id = j.project_id AND x.user_id = j.rater_id
            WHERE j.pair_id = pr.id AND j.id <= :as_of AND x.user_id IS NULL)
    FROM pairs pr
    JOIN prompts p ON p.id = pr.prompt_id
    JOIN responses ra ON ra.id = pr.response_a_id
    JOIN responses rb ON rb.id = pr.response_b_id
    JOIN batches b ON b.id = pr.batch_id
    WHERE pr.id = ANY(:pair_ids)
    """
)


async def row_texts(
    session: AsyncSession, pair_ids: Sequence[int], as_of: int, excerpt_chars: int
) -> dict[int, RowText]:
    rows = await session.execute(
        _ROW_TEXT, {"pair_ids": list(pair_ids), "as_of": as_of, "excerpt": excerpt_chars + 1}
    )
    return {
        row[0]: RowText(row[0], row[1], row[2] or "", row[3], row[4], _seconds(row[5]))
        for row in rows
    }


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value)


def _distinct(column: str) -> str:
    """A loose index scan over `column`: one index probe per distinct value."""
    return f"""
    {column}s AS (
        (SELECT {column} AS model FROM pair_summaries
         WHERE project_id = :project_id ORDER BY {column} LIMIT 1)
        UNION ALL
        SELECT (SELECT s.{column} FROM pair_summaries s
                WHERE s.project_id = :project_id AND s.{column} > {column}s.model
                ORDER BY s.{column} LIMIT 1)
        FROM {column}s WHERE {column}s.model IS NOT NULL
    )"""


# However many pairs there are: the models of either side, each found by an index probe.
_MODELS = text(
    f"""
    WITH RECURSIVE {_distinct("model_low")}, {_distinct("model_high")}
    SELECT model FROM model_lows WHERE model IS NOT NULL
    UNION
    SELECT model FROM model_highs WHERE model IS NOT NULL
    ORDER BY 1
    """
)


async def models(session: AsyncSession, project_id: int) -> list[str]:
    """The models of the project's pairs."""
    return list(await session.scalars(_MODELS, {"project_id": project_id}))


async def rater_choices(
    session: AsyncSession, rater_id: int, pair_ids: Sequence[int]
) -> dict[int, tuple[str, str]]:
    """The rater's (choice, side shown left) on each of these pairs they judged."""
    rows = await session.execute(
        text(
            "SELECT pair_id, choice, left_side FROM judgments "
            "WHERE rater_id = :rater_id AND pair_id = ANY(:pair_ids)"
        ),
        {"rater_id": rater_id, "pair_ids": list(pair_ids)},
    )
    return {row[0]: (row[1], row[2]) for row in rows}


_PSYCOPG = PGDialect_psycopg()  # type: ignore[no-untyped-call]
_DRIVER_PARAM = re.compile(r"%\((\w+)\)s")


def driver_condition(
    where: Conditions, params: dict[str, Any], prefix: str
) -> tuple[str, dict[str, Any]]:
    """`where` as psycopg takes it straight (pyformat, `%` escaped), for a query sent through
    the driver (the exports' COPY); its parameters are renamed with `prefix`, so they never
    meet the caller's own."""
    compiled = text(where.sql).compile(dialect=_PSYCOPG)
    values = {**params, **where.params}
    sql = _DRIVER_PARAM.sub(lambda found: f"%({prefix}{found.group(1)})s", compiled.string)
    return sql, {f"{prefix}{name}": values[name] for name in compiled.binds}


# Every summary of a project counted afresh from what it summarises. For data written with
# triggers off (a bulk load with session_replication_role = replica, such as the benchmarks'):
# the triggers keep the summaries of everything else.
_REBUILD_SUMMARIES = (
    text("DELETE FROM pair_summaries WHERE project_id = :project_id"),
    text(insert_summaries_sql("p.project_id = :project_id")),
    text(
        f"""
        UPDATE pair_summaries s
        SET judgments = c.judgments, votes = c.votes, votes_a = c.votes_a,
            votes_b = c.votes_b, ties = c.ties, both_bad = c.both_bad,
            rationales = c.rationales
        FROM (
            SELECT v.pair_id, count(*) AS judgments,
                   count(*) FILTER (WHERE v.counted) AS votes,
                   count(*) FILTER (WHERE v.counted AND v.choice = '{Choice.A}') AS votes_a,
                   count(*) FILTER (WHERE v.counted AND v.choice = '{Choice.B}') AS votes_b,
                   count(*) FILTER (WHERE v.counted AND v.choice = '{Choice.TIE}') AS ties,
                   count(*) FILTER (WHERE v.counted AND v.choice = '{Choice.BOTH_BAD}')
                       AS both_bad,
                   count(*) FILTER (WHERE v.counted AND v.with_rationale) AS rationales
            FROM (
                SELECT j.pair_id, j.choice, j.rationale IS NOT NULL AS with_rationale,
                       x.user_id IS NULL AS counted
                FROM judgments j
                LEFT JOIN project_rater_exclusions x
                       ON x.project_id = j.project_id AND x.user_id = j.rater_id
                WHERE j.project_id = :project_id
            ) v
            GROUP BY v.pair_id
        ) c
        WHERE s.pair_id = c.pair_id
        """
    ),
    text(
        """
        UPDATE pair_summaries s SET open_flags = f.open
        FROM (
            SELECT pair_id, count(*) AS open FROM pair_flags
            WHERE project_id = :project_id AND resolution IS NULL
            GROUP BY pair_id
        ) f
        WHERE s.pair_id = f.pair_id
        """
    ),
    text(
        """
        UPDATE pair_summaries s SET slots = c.slots
        FROM (
            SELECT pair_id, count(*) AS slots FROM pair_slots
            WHERE project_id = :project_id
            GROUP BY pair_id
        ) c
        WHERE s.pair_id = c.pair_id
        """
    ),
    text(
        """
        UPDATE pair_summaries s SET decision = a.decision
        FROM adjudications a
        WHERE a.project_id = :project_id AND a.is_current AND s.pair_id = a.pair_id
        """
    ),
)


async def rebuild_summaries(session: Reader, project_id: int) -> None:
    """The project's pair summaries counted again from scratch (after a load that bypassed
    the triggers); the caller holds off every other writer of the project meanwhile."""
    for statement in _REBUILD_SUMMARIES:
        await session.execute(statement, {"project_id": project_id})
