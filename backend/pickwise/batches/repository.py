"""Batches read and kept up to date through the session: the list of a project's batches, the
search catch-up's walk. (An import's own writes are in bulk_repository.)"""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.batches import bulk_repository
from pickwise.core.db import driver_connection
from pickwise.models import Batch
from pickwise.models.search import text_document


async def existing_hashes(
    session: AsyncSession, project_id: int, external_ids: Sequence[str]
) -> dict[str, str]:
    """The content hash of each of these prompt ids the project already has."""
    return await bulk_repository.existing_hashes(
        await driver_connection(session), project_id, external_ids
    )


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


# The next prompts of the batch (by id, on ix_prompts_batch_id), made searchable (their
# words enter ix_prompts_search), and their answers' words.
# `search_vector IS NULL`: an answer a trigger already gave words keeps them.
_FILL_SEARCH_WORDS = text(
    f"""
    WITH chunk AS (
        SELECT id FROM prompts WHERE batch_id = :batch_id AND id > :after
        ORDER BY id LIMIT :limit
    ), prompts_indexed AS (
        UPDATE prompts p SET searchable = true
        FROM chunk WHERE p.id = chunk.id AND NOT p.searchable
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
