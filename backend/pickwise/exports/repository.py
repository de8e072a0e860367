"""Reading judgments for export, in the order the writer needs, with `COPY … TO STDOUT`.

COPY streams: Postgres keeps producing rows while Python formats the previous ones (a named
cursor waits for each `FETCH`), and it may use parallel workers. Rows come in binary, decoded
to typed values by psycopg. Memory stays flat: psycopg holds one row at a time.
"""

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from pickwise.batches.parsing.records import Message
from pickwise.core.db import driver_connection
from pickwise.exports.dataset.records import PairVotes, PromptRecord, VoteRecord
from pickwise.vocabulary import PairStatus


@dataclass(frozen=True)
class PairCondition:
    """A condition on the pair summary `s` in psycopg's parameter style (the explorer's
    filter: review.service.export_condition), with its parameters."""

    sql: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Selection:
    """Which judgments an export takes, as options and as SQL. Pairs an admin excluded from
    exports never count; `pairs` narrows the pairs as the explorer's filter does."""

    project_id: int
    batch_ids: tuple[int, ...] = field(default_factory=tuple)
    include_gold: bool = False
    # Votes of raters an admin excluded stay in the database but are left out by default.
    include_excluded_raters: bool = False
    pairs: PairCondition | None = None

    def clauses(self) -> tuple[str, str, dict[str, Any]]:
        """(condition on the pairs `pr`, condition on the judgments `j`, parameters)."""
        pairs = [
            "pr.project_id = %(project_id)s",
            f"pr.status <> '{PairStatus.REMOVED}'",
            "NOT pr.excluded",
        ]
        judgments = ["j.project_id = %(project_id)s"]
        params: dict[str, Any] = {"project_id": self.project_id}
        if not self.include_gold:
            judgments.append("NOT j.is_gold")
        if self.batch_ids:
            pairs.append("pr.batch_id = ANY(%(batch_ids)s)")
            params["batch_ids"] = list(self.batch_ids)
        if not self.include_excluded_raters:
            judgments.append(
                "NOT EXISTS (SELECT 1 FROM project_rater_exclusions x"
                " WHERE x.project_id = j.project_id AND x.user_id = j.rater_id)"
            )
        if self.pairs is not None:
            pairs.append(
                "pr.id IN (SELECT s.pair_id FROM pair_summaries s "
                f"WHERE s.project_id = %(project_id)s AND {self.pairs.sql})"
            )
            params.update(self.pairs.params)
        return " AND ".join(pairs), " AND ".join(judgments), params

    def where(self) -> tuple[str, dict[str, Any]]:
        """Both conditions, for a query that joins judgments `j` to pairs `pr`."""
        pairs, judgments, params = self.clauses()
        return f"{judgments} AND {pairs}", params


# The pair's adjudicated decision, if any: it overrides the votes in every format.
_DECISION = "LEFT JOIN adjudications adj ON adj.pair_id = pr.id AND adj.is_current"

_FROM = """
FROM judgments j
JOIN pairs pr ON pr.id = j.pair_id
JOIN prompts p ON p.id = pr.prompt_id
"""

# One row per judgment (the votes format). COLLATE "C": the writer checks the order with
# Python string comparison, which is bytewise. The JSON columns come as text: turns are
# parsed once per prompt, not once per vote, and an empty criteria object not at all.
_VOTES = f"""
SELECT j.id, j.pair_id, p.id, p.external_id, p.system, p.turns::text,
       ra.id, rb.id, ra.content, rb.content, ra.model, rb.model,
       j.choice, j.strength, j.rationale, j.criteria::text, u.pseudonym, j.left_side,
       j.shown_at, j.submitted_at, j.is_gold, pr.batch_id, adj.decision
{_FROM}
JOIN responses ra ON ra.id = pr.response_a_id
JOIN responses rb ON rb.id = pr.response_b_id
JOIN users u ON u.id = j.rater_id
{_DECISION}
WHERE {{where}}
ORDER BY p.external_id COLLATE "C", j.pair_id, j.id
"""
_VOTE_TYPES = (
    *("int8", "int8", "int8", "text", "text", "text", "int8", "int8"),
    *("text", "text", "text", "text", "text", "int4", "text", "text", "text", "text"),
    *("timestamptz", "timestamptz", "bool", "int8", "text"),
)

# One row per pair with the choices of its votes (every other format): each pair's texts are
# sent and decoded once, not once per vote. The pairs are sorted before the responses are
# joined (the sort moves narrow rows), and a pair's votes are read by index. A pair an admin
# decided comes even without selected votes: the decision is what it exports.
_PAIRS = f"""
SELECT o.pair_id, o.prompt_id, o.external_id, o.system, o.turns::text,
       ra.content, rb.content, ra.model, rb.model, v.ids, v.choices, v.strengths, o.decision
FROM (
    SELECT pr.id AS pair_id, pr.prompt_id, p.external_id, p.system, p.turns,
           pr.response_a_id, pr.response_b_id, adj.decision
    FROM pairs pr
    JOIN prompts p ON p.id = pr.prompt_id
    {_DECISION}
    WHERE {{pairs}}
    ORDER BY p.external_id COLLATE "C", pr.id
) o
JOIN responses ra ON ra.id = o.response_a_id
JOIN responses rb ON rb.id = o.response_b_id
CROSS JOIN LATERAL (
    SELECT array_agg(j.id ORDER BY j.id) AS ids,
           array_agg(j.choice::text ORDER BY j.id) AS choices,
           array_agg(j.strength ORDER BY j.id) AS strengths
    FROM judgments j
    WHERE j.pair_id = o.pair_id AND {{judgments}}
) v
WHERE v.ids IS NOT NULL OR o.decision IS NOT NULL
ORDER BY o.external_id COLLATE "C", o.pair_id
"""
_PAIR_TYPES = (
    *("int8", "int8", "text", "text", "text", "text", "text", "text", "text"),
    *("int8[]", "text[]", "int4[]", "text"),
)


async def _copy_rows(
    connection: AsyncConnection, query: str, params: dict[str, Any], types: Sequence[str]
) -> AsyncIterator[tuple[Any, ...]]:
    driver = await driver_connection(connection)
    async with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)", params) as copy,
    ):
        copy.set_types(list(types))
        async for row in copy.rows():
            yield row


class _Prompts:
    """The prompt of the current row: its turns are parsed once, not once per pair or vote."""

    def __init__(self) -> None:
        self._last: PromptRecord | None = None

    def get(self, prompt_id: int, external_id: str, system: str | None, turns: str) -> PromptRecord:
        if self._last is None or self._last.prompt_id != prompt_id:
            self._last = PromptRecord(
                prompt_id=prompt_id,
                external_id=external_id,
                system=system,
                turns=tuple(Message(turn["role"], turn["content"]) for turn in json.loads(turns)),
            )
        return self._last


async def stream_votes(
    connection: AsyncConnection,
    selection: Selection,
    strength_scale: tuple[str, ...],
    criteria_names: tuple[str, ...],
) -> AsyncIterator[VoteRecord]:
    """Every selected judgment (the votes format); ``criteria_names`` must hold every
    criterion of the selected judgments (see `criteria_in_votes`)."""
    where, params = selection.where()
    prompts = _Prompts()
    async for row in _copy_rows(connection, _VOTES.format(where=where), params, _VOTE_TYPES):
        (
            judgment_id,
            pair_id,
            prompt_id,
            external_id,
            system,
            turns,
            a_id,
            b_id,
            a_text,
            b_text,
            a_model,
            b_model,
            choice,
            strength,
            rationale,
            criteria,
            pseudonym,
            left_side,
            shown_at,
            submitted_at,
            is_gold,
            batch_id,
            decision,
        ) = row
        yield VoteRecord(
            judgment_id=judgment_id,
            pair_id=pair_id,
            prompt=prompts.get(prompt_id, external_id, system, turns),
            response_a_id=a_id,
            response_b_id=b_id,
            response_a=a_text,
            response_b=b_text,
            model_a=a_model,
            model_b=b_model,
            choice=choice,
            strength=strength if strength_scale else None,
            strength_scale=strength_scale,
            rationale=rationale,
            criteria={} if criteria == "{}" else json.loads(criteria),
            rater_pseudonym=pseudonym,
            shown_left=left_side,
            shown_at=shown_at,
            submitted_at=submitted_at,
            is_gold=is_gold,
            batch_id=batch_id,
            criteria_names=criteria_names,
            adjudication=decision,
        )


async def stream_pairs(
    connection: AsyncConnection, selection: Selection, strength_scale: tuple[str, ...]
) -> AsyncIterator[PairVotes]:
    """Every pair with selected judgments, with their choices (all formats but votes)."""
    pairs, judgments, params = selection.clauses()
    query = _PAIRS.format(pairs=pairs, judgments=judgments)
    prompts = _Prompts()
    async for row in _copy_rows(connection, query, params, _PAIR_TYPES):
        (pair_id, prompt_id, external_id, system, turns, a_text, b_text, a_model, b_model) = row[:9]
        ids, choices, strengths, decision = row[9:]
        ids, choices, strengths = ids or [], choices or [], strengths or []
        yield PairVotes(
            pair_id=pair_id,
            prompt=prompts.get(prompt_id, external_id, system, turns),
            response_a=a_text,
            response_b=b_text,
            model_a=a_model,
            model_b=b_model,
            judgment_ids=tuple(ids),
            choices=tuple(choices),
            strengths=tuple(strengths) if strength_scale else (None,) * len(ids),
            strength_scale=strength_scale,
            adjudication=decision,
        )


# A system prompt, or more than one turn: the rows need message lists.
_NEEDS_MESSAGES = "(coalesce(p.system, '') <> '' OR jsonb_array_length(p.turns) > 1)"


async def needs_messages(connection: AsyncConnection, selection: Selection) -> bool:
    """Does any selected prompt have a system prompt or several turns? (Selected: with a
    selected vote, or on a pair an admin decided.)"""
    where, params = selection.where()
    pairs, _, _ = selection.clauses()
    driver = await driver_connection(connection)
    async with driver.cursor() as cursor:
        await cursor.execute(
            f"SELECT EXISTS (SELECT 1 {_FROM} WHERE {where} AND {_NEEDS_MESSAGES}) "
            "OR EXISTS (SELECT 1 FROM pairs pr JOIN prompts p ON p.id = pr.prompt_id "
            "JOIN adjudications adj ON adj.pair_id = pr.id AND adj.is_current "
            f"WHERE {pairs} AND {_NEEDS_MESSAGES})",
            params,
        )
        row = await cursor.fetchone()
    return bool(row and row[0])


async def criteria_in_votes(connection: AsyncConnection, selection: Selection) -> set[str]:
    """The criteria any selected judgment gave (a project's list of criteria can change)."""
    where, params = selection.where()
    driver = await driver_connection(connection)
    async with driver.cursor() as cursor:
        await cursor.execute(
            f"SELECT DISTINCT jsonb_object_keys(j.criteria) {_FROM} WHERE {where}", params
        )
        return {str(row[0]) for row in await cursor.fetchall()}


async def count_votes_at_most(connection: AsyncConnection, selection: Selection) -> int:
    """The selected judgments before the pair filters (removed pairs, batches): a progress bar's
    total from the judgments alone, without the export query's joins (an extra pass)."""
    _, judgments, params = selection.clauses()
    driver = await driver_connection(connection)
    async with driver.cursor() as cursor:
        await cursor.execute(f"SELECT count(*) FROM judgments j WHERE {judgments}", params)
        row = await cursor.fetchone()
    return int(row[0]) if row else 0
