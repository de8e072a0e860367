"""Analytics reads: SQL in, numpy arrays out.

Per-judgment reads go through a server-side (named) cursor and become arrays block by block,
so Python row objects never pile up. What SQL can count, it counts: battles per
(model A, model B, outcome), votes per (pair, choice), judgments per day.

Which votes count for agreement, the leaderboard and the preferences is the export's rule
(``exports.selection.Selection``): no gold pairs, no removed pairs, no excluded raters.
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pickwise.analytics.arrays import FloatArray, IntArray, as_float_array, as_int_array
from pickwise.analytics.bradley_terry import outcomes_of_choices
from pickwise.analytics.labels import CHOICE_A, CHOICE_B, CHOICE_NAMES, NO_GOLD
from pickwise.core.db import driver_connection
from pickwise.exports.repository import Selection
from pickwise.vocabulary import CanonicalSide, Choice, PairStatus, TurnRole

FETCH_ROWS = 20_000

_CHOICE_CODE = (
    "CASE j.choice "
    + " ".join(f"WHEN '{name}' THEN {code}" for code, name in enumerate(CHOICE_NAMES))
    + " END"
)
_OUTCOME_CODE = (
    "CASE j.choice "
    + " ".join(
        f"WHEN '{name}' THEN {int(outcome)}"
        for name, outcome in zip(
            CHOICE_NAMES, outcomes_of_choices(range(len(CHOICE_NAMES))), strict=True
        )
    )
    + " END"
)


@asynccontextmanager
async def read_only_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection that cannot write, with one snapshot for every query of a report."""
    async with engine.connect() as connection:
        await connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        yield connection


async def _stream(
    connection: AsyncConnection, sql: str, params: dict[str, Any]
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """Rows in blocks of FETCH_ROWS from a named (server-side) cursor."""
    driver = await driver_connection(connection)
    async with driver.cursor(name="pickwise_analytics") as cursor:
        await cursor.execute(sql, params)
        while rows := await cursor.fetchmany(FETCH_ROWS):
            yield rows


async def _int_matrix(
    connection: AsyncConnection, sql: str, params: dict[str, Any], columns: int
) -> IntArray:
    blocks = [np.asarray(rows, dtype=np.int64) async for rows in _stream(connection, sql, params)]
    if not blocks:
        return np.empty((0, columns), dtype=np.int64)
    return as_int_array(np.concatenate(blocks))


async def fetch_all(
    connection: AsyncConnection, sql: str, params: dict[str, Any]
) -> list[tuple[Any, ...]]:
    """Small results only (aggregates, people, batches)."""
    driver = await driver_connection(connection)
    async with driver.cursor() as cursor:
        await cursor.execute(sql, params)
        return list(await cursor.fetchall())


def kept_votes(
    project_id: int, *, batch_id: int | None = None, rater_id: int | None = None
) -> tuple[str, dict[str, Any]]:
    """WHERE clause over ``judgments j JOIN pairs pr`` for the votes statistics count.

    Asking for one rater includes them even if excluded: the question is about that rater.
    """
    selection = Selection(
        project_id=project_id,
        batch_ids=(batch_id,) if batch_id is not None else (),
        include_excluded_raters=rater_id is not None,
    )
    where, params = selection.where()
    if rater_id is not None:
        where += " AND j.rater_id = %(rater_id)s"
        params["rater_id"] = rater_id
    return where, params


# --- people, batches, counts ------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    user_id: int
    display_name: str
    pseudonym: str
    member: bool
    excluded: bool


async def people(connection: AsyncConnection, project_id: int) -> list[Person]:
    """Members and everyone who judged in the project, in user id order. No emails."""
    rows = await fetch_all(
        connection,
        """
        SELECT u.id, u.display_name, u.pseudonym, m.user_id IS NOT NULL,
               x.user_id IS NOT NULL
        FROM users u
        LEFT JOIN project_members m ON m.user_id = u.id AND m.project_id = %(project_id)s
        LEFT JOIN project_rater_exclusions x
               ON x.user_id = u.id AND x.project_id = %(project_id)s
        WHERE m.user_id IS NOT NULL
           OR EXISTS (SELECT 1 FROM judgments j
                      WHERE j.project_id = %(project_id)s AND j.rater_id = u.id)
        ORDER BY u.id
        """,
        {"project_id": project_id},
    )
    return [Person(*row) for row in rows]


async def batch_names(connection: AsyncConnection, project_id: int) -> dict[int, str]:
    rows = await fetch_all(
        connection,
        "SELECT id, filename FROM batches WHERE project_id = %(project_id)s ORDER BY id",
        {"project_id": project_id},
    )
    return {batch_id: filename for batch_id, filename in rows}


@dataclass(frozen=True)
class JudgmentCounts:
    judgments: int
    gold_judgments: int
    raters_active: int
    models: int


async def judgment_counts(connection: AsyncConnection, project_id: int) -> JudgmentCounts:
    rows = await fetch_all(
        connection,
        """
        SELECT count(*) FILTER (WHERE NOT j.is_gold), count(*) FILTER (WHERE j.is_gold),
               count(DISTINCT j.rater_id),
               (SELECT count(DISTINCT model) FROM responses WHERE project_id = %(project_id)s)
        FROM judgments j WHERE j.project_id = %(project_id)s
        """,
        {"project_id": project_id},
    )
    return JudgmentCounts(*(int(value) for value in rows[0]))


async def judgments_per_day(
    connection: AsyncConnection, project_id: int
) -> list[tuple[date, int, int]]:
    """(UTC day, regular judgments, gold judgments) for days with any judgment."""
    rows = await fetch_all(
        connection,
        """
        SELECT (j.submitted_at AT TIME ZONE 'UTC')::date AS day,
               count(*) FILTER (WHERE NOT j.is_gold), count(*) FILTER (WHERE j.is_gold)
        FROM judgments j WHERE j.project_id = %(project_id)s
        GROUP BY day ORDER BY day
        """,
        {"project_id": project_id},
    )
    return [(day, int(regular), int(gold)) for day, regular, gold in rows]


# --- every judgment, for rater quality and agreement ---------------------------------------


@dataclass(frozen=True)
class JudgmentTable:
    """One entry per judgment on a pair that was not removed, in judgment id order."""

    rater_id: IntArray
    pair_id: IntArray
    batch_id: IntArray
    choice: IntArray  # labels.CHOICE_* codes, relative to canonical A / B
    a_shown_left: npt.NDArray[np.bool_]
    seconds: FloatArray
    gold_choice: IntArray  # CHOICE_A / CHOICE_B on gold judgments, NO_GOLD otherwise
    is_gold: npt.NDArray[np.bool_]
    rater_excluded: npt.NDArray[np.bool_]
    # +1 where answer A has more bytes of text than B, −1 where fewer, 0 where as many.
    a_longer: IntArray

    def __len__(self) -> int:
        return len(self.rater_id)

    def kept(self) -> npt.NDArray[np.bool_]:
        """The votes agreement counts: regular pairs, raters not excluded."""
        return np.asarray(~self.is_gold & ~self.rater_excluded, dtype=np.bool_)


async def judgment_table(connection: AsyncConnection, project_id: int) -> JudgmentTable:
    matrix = await _int_matrix(
        connection,
        f"""
        SELECT j.rater_id, j.pair_id, pr.batch_id, {_CHOICE_CODE},
               (j.left_side = '{CanonicalSide.A}')::int,
               (extract(epoch FROM j.submitted_at - j.shown_at) * 1000000)::bigint,
               CASE WHEN NOT j.is_gold OR pr.gold_winner_id IS NULL THEN {NO_GOLD}
                    WHEN pr.gold_winner_id = pr.response_a_id THEN {CHOICE_A}
                    ELSE {CHOICE_B} END,
               j.is_gold::int,
               (x.user_id IS NOT NULL)::int,
               sign(octet_length(ra.content) - octet_length(rb.content))::int
        FROM judgments j
        JOIN pairs pr ON pr.id = j.pair_id
        JOIN responses ra ON ra.id = pr.response_a_id
        JOIN responses rb ON rb.id = pr.response_b_id
        LEFT JOIN project_rater_exclusions x
               ON x.project_id = j.project_id AND x.user_id = j.rater_id
        WHERE j.project_id = %(project_id)s AND pr.status <> '{PairStatus.REMOVED}'
        ORDER BY j.id
        """,
        {"project_id": project_id},
        columns=10,
    )
    return JudgmentTable(
        rater_id=as_int_array(matrix[:, 0]),
        pair_id=as_int_array(matrix[:, 1]),
        batch_id=as_int_array(matrix[:, 2]),
        choice=as_int_array(matrix[:, 3]),
        a_shown_left=matrix[:, 4].astype(np.bool_),
        seconds=as_float_array(matrix[:, 5] / 1e6),
        gold_choice=as_int_array(matrix[:, 6]),
        is_gold=matrix[:, 7].astype(np.bool_),
        rater_excluded=matrix[:, 8].astype(np.bool_),
        a_longer=as_int_array(matrix[:, 9]),
    )


async def excluded_raters_with_votes(
    connection: AsyncConnection, project_id: int, batch_id: int | None = None
) -> int:
    """How many excluded raters have votes that the statistics leave out."""
    where, params = Selection(
        project_id=project_id,
        batch_ids=(batch_id,) if batch_id is not None else (),
        include_excluded_raters=True,
    ).where()
    rows = await fetch_all(
        connection,
        f"""
        SELECT count(DISTINCT j.rater_id) FROM judgments j JOIN pairs pr ON pr.id = j.pair_id
        JOIN project_rater_exclusions x ON x.project_id = j.project_id AND x.user_id = j.rater_id
        WHERE {where}
        """,
        params,
    )
    return int(rows[0][0])


# --- the leaderboard ---------------------------------------------------------------------

_VOTES_WITH_MODELS = """
FROM judgments j
JOIN pairs pr ON pr.id = j.pair_id
JOIN responses ra ON ra.id = pr.response_a_id
JOIN responses rb ON rb.id = pr.response_b_id
"""


async def project_models(connection: AsyncConnection, project_id: int) -> list[str]:
    """Every model with an answer in the project, in Python's sort order."""
    rows = await fetch_all(
        connection,
        "SELECT DISTINCT model FROM responses WHERE project_id = %(project_id)s",
        {"project_id": project_id},
    )
    return sorted(str(model) for (model,) in rows)


@dataclass(frozen=True)
class PairOutcomes:
    """Counted votes per pair: the leaderboard's only per-vote read."""

    response_a: IntArray
    response_b: IntArray
    model_a: IntArray  # indices into the ``models`` list given to ``pair_outcomes``
    model_b: IntArray
    outcome_counts: IntArray  # pairs × 3: votes per bradley_terry.OUTCOME_* (B won, tie, A won)


async def pair_outcomes(
    connection: AsyncConnection, project_id: int, models: Sequence[str]
) -> PairOutcomes:
    """Every pair with a counted vote, its two answers and models, and its votes per outcome.

    Counted in SQL (one row per pair, not per vote); same-model pairs are included. Models come
    back as indices into ``models`` (which must hold every model of the project).
    """
    where, params = kept_votes(project_id)
    counts = ", ".join(
        f"count(*) FILTER (WHERE {_OUTCOME_CODE} = {outcome})" for outcome in range(3)
    )
    sql = (
        "SELECT pr.response_a_id, pr.response_b_id, "
        "array_position(%(models)s::text[], ra.model) - 1, "
        f"array_position(%(models)s::text[], rb.model) - 1, {counts} "
        f"{_VOTES_WITH_MODELS} WHERE {where} "
        "GROUP BY pr.id, ra.id, rb.id ORDER BY pr.id"
    )
    matrix = await _int_matrix(connection, sql, {**params, "models": list(models)}, columns=7)
    return PairOutcomes(
        response_a=as_int_array(matrix[:, 0]),
        response_b=as_int_array(matrix[:, 1]),
        model_a=as_int_array(matrix[:, 2]),
        model_b=as_int_array(matrix[:, 3]),
        outcome_counts=as_int_array(matrix[:, 4:7]),
    )


async def response_texts(
    connection: AsyncConnection, response_ids: IntArray
) -> AsyncIterator[list[tuple[int, str]]]:
    """(response id, content) of the given answers, in blocks, by id."""
    sql = (
        "SELECT r.id, r.content FROM responses r WHERE r.id = ANY(%(ids)s::bigint[]) ORDER BY r.id"
    )
    # An array literal: psycopg's list adapter costs ~5 µs per element (1 s per 200k ids).
    ids = "{" + ",".join(map(str, response_ids.tolist())) + "}"
    async for rows in _stream(connection, sql, {"ids": ids}):
        yield rows


# --- what the preferences teach ----------------------------------------------------------


@dataclass(frozen=True)
class DecisiveVotes:
    """A-or-B votes in judgment id order."""

    pair_id: IntArray
    chose_a: npt.NDArray[np.bool_]
    a_shown_left: npt.NDArray[np.bool_]


async def decisive_votes(
    connection: AsyncConnection,
    project_id: int,
    *,
    batch_id: int | None = None,
    rater_id: int | None = None,
) -> DecisiveVotes:
    where, params = kept_votes(project_id, batch_id=batch_id, rater_id=rater_id)
    matrix = await _int_matrix(
        connection,
        f"""
        SELECT j.pair_id, (j.choice = '{Choice.A}')::int,
               (j.left_side = '{CanonicalSide.A}')::int
        FROM judgments j JOIN pairs pr ON pr.id = j.pair_id
        WHERE {where} AND j.choice IN ('{Choice.A}', '{Choice.B}')
        ORDER BY j.id
        """,
        params,
        columns=3,
    )
    return DecisiveVotes(
        pair_id=as_int_array(matrix[:, 0]),
        chose_a=matrix[:, 1].astype(np.bool_),
        a_shown_left=matrix[:, 2].astype(np.bool_),
    )


@dataclass(frozen=True)
class PairText:
    pair_id: int
    prompt: str  # the user turns, joined by blank lines
    response_a_id: int
    text_a: str
    response_b_id: int
    text_b: str


def prompt_text(turns: Sequence[dict[str, Any]]) -> str:
    """What the user asked, over all user turns: answers that repeat it ask nothing back."""
    return "\n\n".join(str(turn["content"]) for turn in turns if turn.get("role") == TurnRole.USER)


async def pair_texts(
    connection: AsyncConnection,
    project_id: int,
    *,
    batch_id: int | None = None,
    rater_id: int | None = None,
) -> AsyncIterator[list[PairText]]:
    """Prompt and both answers of every pair with an A-or-B vote, in blocks, by pair id."""
    where, params = kept_votes(project_id, batch_id=batch_id, rater_id=rater_id)
    sql = f"""
        SELECT q.id, p.turns, ra.id, ra.content, rb.id, rb.content
        FROM pairs q
        JOIN prompts p ON p.id = q.prompt_id
        JOIN responses ra ON ra.id = q.response_a_id
        JOIN responses rb ON rb.id = q.response_b_id
        WHERE q.id IN (
            SELECT j.pair_id FROM judgments j JOIN pairs pr ON pr.id = j.pair_id
            WHERE {where} AND j.choice IN ('{Choice.A}', '{Choice.B}')
        )
        ORDER BY q.id
    """
    async for rows in _stream(connection, sql, params):
        yield [
            PairText(pair_id, prompt_text(turns), a_id, text_a, b_id, text_b)
            for pair_id, turns, a_id, text_a, b_id, text_b in rows
        ]
