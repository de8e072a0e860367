"""Reading judgments for export: one server-side cursor, in the order the writer needs."""

import json
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from sqlalchemy.ext.asyncio import AsyncConnection

from pickwise.exports.records import Message, PromptRecord, VoteRecord
from pickwise.exports.selection import Selection

FETCH_ROWS = 5_000

_FROM = """
FROM judgments j
JOIN pairs pr ON pr.id = j.pair_id
JOIN prompts p ON p.id = pr.prompt_id
"""

# COLLATE "C": the writer checks the order with Python string comparison, which is bytewise.
# The JSON columns come as text: turns are parsed once per prompt, not once per vote, and an
# empty criteria object not at all (decoding them per row was a sixth of the export's CPU).
_VOTES = f"""
SELECT j.id, j.pair_id, p.id, p.external_id, p.system, p.turns::text,
       ra.id, rb.id, ra.content, rb.content, ra.model, rb.model,
       j.choice, j.strength, j.rationale, j.criteria::text, u.pseudonym, j.left_side,
       j.shown_at, j.submitted_at, j.is_gold, pr.batch_id
{_FROM}
JOIN responses ra ON ra.id = pr.response_a_id
JOIN responses rb ON rb.id = pr.response_b_id
JOIN users u ON u.id = j.rater_id
WHERE {{where}}
ORDER BY p.external_id COLLATE "C", j.pair_id, j.id
"""


async def _driver(connection: AsyncConnection) -> psycopg.AsyncConnection[Any]:
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, psycopg.AsyncConnection)
    return driver


async def stream_votes(
    connection: AsyncConnection, selection: Selection, strength_scale: tuple[str, ...]
) -> AsyncIterator[VoteRecord]:
    """Memory stays flat: rows come from a named (server-side) cursor in batches."""
    where, params = selection.where()
    driver = await _driver(connection)
    prompt: PromptRecord | None = None
    async with driver.cursor(name="pickwise_export") as cursor:
        cursor.itersize = FETCH_ROWS
        await cursor.execute(_VOTES.format(where=where), params)
        async for row in cursor:
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
            ) = row
            if prompt is None or prompt.prompt_id != prompt_id:
                prompt = PromptRecord(
                    prompt_id=prompt_id,
                    external_id=external_id,
                    system=system,
                    turns=tuple(
                        Message(turn["role"], turn["content"]) for turn in json.loads(turns)
                    ),
                )
            yield VoteRecord(
                judgment_id=judgment_id,
                pair_id=pair_id,
                prompt=prompt,
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
            )


async def needs_messages(connection: AsyncConnection, selection: Selection) -> bool:
    """Does any selected prompt have a system prompt or several turns?"""
    where, params = selection.where()
    driver = await _driver(connection)
    async with driver.cursor() as cursor:
        await cursor.execute(
            f"SELECT EXISTS (SELECT 1 {_FROM} WHERE {where} AND "
            "(coalesce(p.system, '') <> '' OR jsonb_array_length(p.turns) > 1))",
            params,
        )
        row = await cursor.fetchone()
    return bool(row and row[0])


async def count_votes(connection: AsyncConnection, selection: Selection) -> int:
    where, params = selection.where()
    driver = await _driver(connection)
    async with driver.cursor() as cursor:
        await cursor.execute(f"SELECT count(*) {_FROM} WHERE {where}", params)
        row = await cursor.fetchone()
    return int(row[0]) if row else 0
