"""Importing in many chunks: the next chunk is read in a worker thread while one is written.

A failure in a later chunk, on either side, must leave nothing written and no thread behind.
"""

import io
import threading
from typing import Any

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.service import create_slots
from pickwise.batches import service
from pickwise.batches.parsing.report import ImportRejected
from pickwise.models import Pair, PairSlot, Prompt, Response
from tests.batches.test_import import counts, jsonl, prompt_row
from tests.factories import make_project


class ChangesAfterFirstRead(io.BytesIO):
    """A file replaced on disk between the check and the import: the second read differs."""

    def __init__(self, first: bytes, second: bytes) -> None:
        super().__init__(first)
        self._second = second
        self.reads_after_failure = 0
        self.failed = False

    def seek(self, offset: int, whence: int = 0) -> int:
        if offset == 0 and whence == 0 and self.tell() > 0:
            position = self.tell()
            self.__init__(self._second, self._second)  # type: ignore[misc]
            assert position > 0
        return super().seek(offset, whence)

    def read(self, size: int | None = -1, /) -> bytes:
        if self.failed:
            self.reads_after_failure += 1
        return super().read(size)


def import_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(service.IMPORT_THREAD_PREFIX)]


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(service, "CHUNK", 7)
    return 7


async def test_many_chunks_write_consistent_rows_and_report_progress(
    session: AsyncSession, small_chunks: int
) -> None:
    project = await make_project(session, raters_per_pair=2)
    rows = [prompt_row(f"p{n}", n=2 + n % 3) for n in range(50)]
    rows[3] = prompt_row("p3", n=3, gold={"winner": "r1"})
    seen: list[tuple[int, int]] = []
    outcome = await service.import_stream(
        session,
        project,
        io.BytesIO(jsonl(*rows)),
        filename="b.jsonl",
        source="cli",
        user=None,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(done, 50) for done in [*range(0, 50, small_chunks), 50]]
    responses = sum(2 + n % 3 for n in range(50)) - 2 + 3  # Row 3 has 3 responses, not 2.
    pairs = sum(k * (k - 1) // 2 for k in (2 + n % 3 for n in range(50))) - 1 + 3
    assert (outcome.prompts_new, outcome.responses_new, outcome.pairs_new) == (50, responses, pairs)
    # Row 3's winner r1 is in 2 of its 3 pairs: those are gold and get no slots.
    assert await counts(session, project) == (50, responses, pairs, 1, 2 * (pairs - 2))
    assert not import_threads()

    # Every response belongs to its prompt, every pair to the prompt of both its responses.
    prompt_of_response = {
        response_id: prompt_id
        for response_id, prompt_id in await session.execute(
            select(Response.id, Response.prompt_id).where(Response.project_id == project.id)
        )
    }
    gold_prompt = await session.scalar(
        select(Prompt.id).where(Prompt.project_id == project.id, Prompt.external_id == "p3")
    )
    winner = await session.scalar(
        select(Response.id).where(Response.prompt_id == gold_prompt, Response.external_id == "r1")
    )
    pairs_rows = list(await session.scalars(select(Pair).where(Pair.project_id == project.id)))
    for pair in pairs_rows:
        assert prompt_of_response[pair.response_a_id] == pair.prompt_id
        assert prompt_of_response[pair.response_b_id] == pair.prompt_id
        assert pair.response_a_id < pair.response_b_id
        assert pair.is_gold == (winner in (pair.response_a_id, pair.response_b_id))
        assert pair.gold_winner_id == (winner if pair.is_gold else None)
    slots = list(await session.scalars(select(PairSlot).where(PairSlot.project_id == project.id)))
    assert sorted((slot.pair_id, slot.slot_no) for slot in slots) == sorted(
        (pair.id, number) for pair in pairs_rows if not pair.is_gold for number in (1, 2)
    )
    assert {slot.state for slot in slots} == {"open"}
    # The import gives every new pair its k slots: create_slots finds none missing.
    assert await create_slots(session, project) == 0


async def test_bad_line_in_a_later_chunk_read_by_the_thread_leaves_nothing(
    session: AsyncSession, small_chunks: int
) -> None:
    project = await make_project(session)
    await service.import_stream(
        session,
        project,
        io.BytesIO(jsonl(prompt_row("keep"))),
        filename="b.jsonl",
        source="cli",
        user=None,
    )
    before = await counts(session, project)
    good = [prompt_row(f"p{n}") for n in range(60)]
    changed = jsonl(*good[:45]) + b"{broken\n" + jsonl(*good[45:])
    stream = ChangesAfterFirstRead(jsonl(*good), changed)
    with pytest.raises(ImportRejected) as caught:
        async with session.begin_nested():
            await service.import_stream(
                session, project, stream, filename="b.jsonl", source="cli", user=None
            )
    assert caught.value.report.errors[0].line == 46
    assert await counts(session, project) == before
    assert not import_threads()


async def test_database_failure_in_a_later_chunk_stops_the_thread_and_leaves_nothing(
    session: AsyncSession, small_chunks: int
) -> None:
    project = await make_project(session)
    before = await counts(session, project)
    good = [prompt_row(f"p{n}") for n in range(2000)]  # 425 kB: several reads of 64 kB
    # The second read repeats an id within chunk 6 (lines 36-42), which the check never saw:
    # Postgres refuses it.
    changed = [*good[:41], prompt_row("p40"), *good[42:]]
    stream = ChangesAfterFirstRead(jsonl(*good), jsonl(*changed))
    with pytest.raises(psycopg.errors.UniqueViolation):
        async with session.begin_nested():
            try:
                await service.import_stream(
                    session, project, stream, filename="b.jsonl", source="cli", user=None
                )
            finally:
                stream.failed = True
    assert not import_threads()
    assert stream.reads_after_failure == 0
    # The thread read at most a chunk ahead, not on to the end of the file.
    assert stream.tell() < len(jsonl(*changed)) // 2
    assert await counts(session, project) == before


def test_rules_prepare_rows_without_ids() -> None:
    rules = service._PairingRules("all", 0, 1)
    [prepared] = rules.prepare([_parsed(prompt_row("p1", n=3, gold={"winner": "r2"}))]).records
    assert prepared.pairs == [(0, 1), (0, 2), (1, 2)]
    assert prepared.winner == 2
    assert [response[0] for response in prepared.responses] == ["r0", "r1", "r2"]


def _parsed(row: dict[str, Any]) -> Any:
    from pickwise.batches.parsing.reader import iter_records

    [record] = iter_records(io.BytesIO(jsonl(row)), filename="b.jsonl")
    return record
