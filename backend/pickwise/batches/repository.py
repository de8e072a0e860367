"""Bulk writes for imports: ids taken from the sequences up front, rows sent with COPY."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.db import driver_connection
from pickwise.models import Batch
from pickwise.models.search import text_document


async def reserve_ids(session: AsyncSession, counts: dict[str, int]) -> dict[str, list[int]]:
    """`counts[table]` new ids from each table's sequence, in one round trip, increasing.

    Each table's ids come back as one array value, not as a row per id. They need not be
    consecutive (other sessions draw from the same sequences), only unused. They are handed
    out in increasing order because the order is a rule: a prompt's responses get ids in the
    order the file lists them, and a pair's A is the response with the smaller id.
    """
    tables = [table for table, count in counts.items() if count]
    ids: dict[str, list[int]] = {table: [] for table in counts}
    if not tables:
        return ids
    columns = ", ".join(
        f"(SELECT array_agg(nextval(s.seq)) FROM generate_series(1, %s), "
        f"(SELECT pg_get_serial_sequence('{table}', 'id')::regclass AS seq) AS s)"
        for table in tables
    )
    driver = await driver_connection(session)
    async with driver.cursor() as cursor:
        await cursor.execute(f"SELECT {columns}", [counts[table] for table in tables])
        row = await cursor.fetchone()
    assert row is not None
    for table, values in zip(tables, row, strict=True):
        ids[table] = sorted(values)
    return ids


async def existing_hashes(
    session: AsyncSession, project_id: int, external_ids: Sequence[str]
) -> dict[str, str]:
    driver = await driver_connection(session)
    async with driver.cursor() as cursor:
        await cursor.execute(
            "SELECT external_id, content_hash FROM prompts "
            "WHERE project_id = %s AND external_id = ANY(%s)",
            [project_id, list(external_ids)],
        )
        return dict(await cursor.fetchall())


async def copy_rows(
    session: AsyncSession, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    if not rows:
        return
    driver = await driver_connection(session)
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    async with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            await copy.write_row(row)


async def plan_checks_afresh(session: AsyncSession) -> None:
    """Drop the query plans this connection keeps, the foreign-key checks' among them.

    Postgres plans a foreign-key check once per connection and keeps the plan. One planned
    while a project had a few prompts (a small import earlier on a pooled connection) walks
    all the project's prompts for every answer and pair a later import writes: a 10k-task
    import after a 20-line one took 10x as long. Replanned at the import's first check, with
    its first chunk of prompts written, the check finds a prompt by its (id, project_id)
    index, as on a new connection (docs/benchmarks.md, "i24b"). A first chunk of a few
    hundred prompts can still be planned the slow way; that import is small itself."""
    await session.execute(text("DISCARD PLANS"))


async def leave_search_for_later(session: AsyncSession, later: bool) -> None:
    """For the rest of the transaction: responses written get no search words (the search
    catch-up makes them after the commit), or, with `later` False, get them as they are
    written (the `responses_search_words` trigger, which reads this setting)."""
    await _set_local(session, "pickwise.search_later", later)


async def leave_summaries_for_later(session: AsyncSession, later: bool) -> None:
    """For the rest of the transaction: pairs written get no explorer summary (the import
    adds its batch's summaries itself, review.summaries_repository.add_batch_summaries), or, with
    `later` False, get one as they are written (the `review_pairs_inserted` trigger)."""
    await _set_local(session, "pickwise.summaries_later", later)


async def _set_local(session: AsyncSession, setting: str, on: bool) -> None:
    await session.execute(
        text("SELECT set_config(:setting, :value, true)"),
        {"setting": setting, "value": "on" if on else "off"},
    )


# One encoder for the whole import: `json.dumps` with options builds a new one per call, and
# an import encodes four values a task (~9 µs a task of the reader's CPU). Values come from a
# parsed file, so they hold no cycles to look for.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def as_json(value: Any) -> str:
    return _ENCODER.encode(value)


async def list_batches(session: AsyncSession, project_id: int) -> list[Batch]:
    result = await session.execute(
        select(Batch).where(Batch.project_id == project_id).order_by(Batch.id.desc())
    )
    return list(result.scalars())


@dataclass(frozen=True)
class PendingBatch:
    id: int
    done_through: int  # the batch's prompts up to this id have searchable answers


async def lock_pending_batch(session: AsyncSession) -> PendingBatch | None:
    """The oldest batch with answers not searchable yet, locked for this transaction; one
    another process is working on is passed over (SKIP LOCKED), so workers share the work."""
    row = (
        await session.execute(
            text(
                "SELECT id, search_done_through FROM batches WHERE search_pending > 0 "
                "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
            )
        )
    ).first()
    return PendingBatch(row.id, row.search_done_through) if row else None


# The next prompts of the batch (by id, on ix_prompts_batch_id) and their answers' words.
# `search_vector IS NULL`: an answer a trigger already gave words keeps them.
_FILL_SEARCH_WORDS = text(
    f"""
    WITH chunk AS (
        SELECT id FROM prompts WHERE batch_id = :batch_id AND id > :after
        ORDER BY id LIMIT :limit
    ), filled AS (
        UPDATE responses r SET search_vector = {text_document("r.content")}
        FROM chunk WHERE r.prompt_id = chunk.id AND r.search_vector IS NULL
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM chunk) AS prompts, (SELECT max(id) FROM chunk) AS through,
           (SELECT count(*) FROM filled) AS answers
    """
)


async def fill_search_words(
    session: AsyncSession, batch: PendingBatch, prompts: int
) -> tuple[int, int]:
    """Words for the answers of the batch's next `prompts` prompts; records the progress in
    the batch. Returns (prompts walked, answers filled)."""
    row = (
        await session.execute(
            _FILL_SEARCH_WORDS,
            {"batch_id": batch.id, "after": batch.done_through, "limit": prompts},
        )
    ).one()
    finished = row.prompts < prompts
    await session.execute(
        text(
            "UPDATE batches SET search_done_through = :through, search_pending = "
            "CASE WHEN :finished THEN 0 ELSE greatest(search_pending - :answers, 0) END "
            "WHERE id = :batch_id"
        ),
        {
            "batch_id": batch.id,
            "through": row.through or batch.done_through,
            "finished": finished,
            "answers": row.answers,
        },
    )
    return row.prompts, row.answers
