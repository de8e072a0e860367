"""Search words after the import: an import stores its answers without words and counts them
as pending; the catch-up fills them a chunk per transaction, resumes where a crash left it,
and leaves alone what other writers (which get words at once) stored."""

import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.batches.search_catchup import Transaction, catch_up, catch_up_chunk
from pickwise.batches.service import import_stream
from pickwise.models import Batch, Project, Response
from tests.factories import make_pairs, make_project


def answers_file(prompts: int, word: str = "answer") -> bytes:
    lines = [
        {
            "id": f"p{index}",
            "prompt": f"Question {index}?",
            "response_a": f"{word} alpha {index}",
            "response_b": f"{word} beta {index}",
            "model_a": "m1",
            "model_b": "m2",
        }
        for index in range(prompts)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


async def imported(session: AsyncSession, project: Project, prompts: int) -> Batch:
    outcome = await import_stream(
        session,
        project,
        io.BytesIO(answers_file(prompts)),
        filename="b.jsonl",
        source="cli",
        user=None,
    )
    batch = await session.get(Batch, outcome.batch_id)
    assert batch is not None
    return batch


def savepoints(session: AsyncSession) -> Transaction:
    """The catch-up's transactions as savepoints of the test's own transaction."""

    @asynccontextmanager
    async def transaction() -> AsyncIterator[AsyncSession]:
        async with session.begin_nested():
            yield session

    return transaction


async def without_words(session: AsyncSession, project: Project) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Response)
            .where(Response.project_id == project.id, Response.search_vector.is_(None))
        )
        or 0
    )


async def words_match_content(session: AsyncSession, project: Project) -> bool:
    wrong = await session.scalar(
        text(
            "SELECT count(*) FROM responses WHERE project_id = :p AND search_vector IS "
            "DISTINCT FROM to_tsvector('simple', content)"
        ),
        {"p": project.id},
    )
    return wrong == 0


async def prompts_not_searchable(session: AsyncSession, project: Project) -> int:
    return int(
        await session.scalar(
            text("SELECT count(*) FROM prompts WHERE project_id = :p AND NOT searchable"),
            {"p": project.id},
        )
        or 0
    )


async def test_an_import_leaves_its_answers_words_to_the_catch_up(session: AsyncSession) -> None:
    project = await make_project(session)
    batch = await imported(session, project, 5)
    await session.refresh(batch)
    assert batch.search_pending == 10 and batch.search_done_through == 0
    assert await without_words(session, project) == 10
    assert await prompts_not_searchable(session, project) == 5
    report = await catch_up(savepoints(session))
    assert (report.prompts, report.answers) == (5, 10)
    await session.refresh(batch)
    assert batch.search_pending == 0
    assert await without_words(session, project) == 0
    assert await prompts_not_searchable(session, project) == 0
    assert await words_match_content(session, project)


async def test_the_catch_up_resumes_from_its_place_after_a_crash(session: AsyncSession) -> None:
    project = await make_project(session)
    batch = await imported(session, project, 7)
    async with session.begin_nested():
        assert await catch_up_chunk(session, 3) == (3, 6)
    await session.refresh(batch)
    assert batch.search_pending == 8 and batch.search_done_through > 0
    done_through = batch.search_done_through
    # A process dies in the middle of its next chunk: that chunk's transaction rolls back.
    with pytest.raises(RuntimeError):
        async with session.begin_nested():
            assert await catch_up_chunk(session, 3) == (3, 6)
            raise RuntimeError("killed")
    await session.refresh(batch)
    assert (batch.search_pending, batch.search_done_through) == (8, done_through)
    assert await without_words(session, project) == 8
    # The prompts up to the place are searchable, the rest not yet.
    assert await prompts_not_searchable(session, project) == 4
    # Restarted, it starts from the place: the first 3 prompts are not walked again.
    report = await catch_up(savepoints(session), chunk_prompts=3)
    assert (report.prompts, report.answers) == (4, 8)
    await session.refresh(batch)
    assert batch.search_pending == 0
    assert await without_words(session, project) == 0
    assert await prompts_not_searchable(session, project) == 0
    assert await words_match_content(session, project)
    assert await catch_up_chunk(session) is None


async def test_answers_written_outside_an_import_get_their_words_at_once(
    session: AsyncSession,
) -> None:
    project = await make_project(session)
    await make_pairs(session, project, 3)
    assert await without_words(session, project) == 0
    assert await words_match_content(session, project)
    # And again when their text changes.
    await session.execute(
        text("UPDATE responses SET content = 'changed words' WHERE project_id = :p"),
        {"p": project.id},
    )
    assert await words_match_content(session, project)


async def test_a_bulk_load_that_skips_triggers_still_stores_words(
    session: AsyncSession,
) -> None:
    """Loads that skip ordinary triggers (session_replication_role = replica, as the bench's
    bulk loads do) still store the words: the trigger is enabled always."""
    project = await make_project(session)
    await session.execute(text("SET LOCAL session_replication_role = replica"))
    await make_pairs(session, project, 2)
    await session.execute(text("SET LOCAL session_replication_role = origin"))
    assert await without_words(session, project) == 0


async def test_the_import_leaves_the_setting_as_it_found_it(session: AsyncSession) -> None:
    project = await make_project(session)
    await imported(session, project, 2)
    later = await session.scalar(text("SELECT current_setting('pickwise.search_later', true)"))
    assert later != "on"
