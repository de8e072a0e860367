"""Importing in many chunks: the next chunk is read in a worker thread while one is written.

A failure in a later chunk, on either side (a bad line the reader meets after earlier chunks
were written, or Postgres refusing a write), must leave nothing written and no thread behind.
"""

import io
import threading
from collections.abc import Iterable
from typing import Any

import psycopg
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.slots_service import create_slots
from pickwise.batches import bulk_repository, service
from pickwise.batches.parsing.report import ImportRejected
from pickwise.core.db import driver_connection
from pickwise.models import Pair, PairSlot, Prompt, Response
from tests.batches.test_import import counts, jsonl, prompt_row
from tests.factories import make_project


class CountedReads(io.BytesIO):
    """Counts the reads made after the test marks the import failed."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads_after_failure = 0
        self.failed = False

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
    data = jsonl(*rows)
    outcome = await service.import_stream(
        session,
        project,
        io.BytesIO(data),
        filename="b.jsonl",
        source="cli",
        user=None,
        progress=lambda read, size: seen.append((read, size)),
    )
    # Bytes read of the file's size: from nothing to all of it, once a chunk (8 of 7 lines).
    assert len(seen) == 1 + 8
    assert seen[0] == (0, len(data)) and seen[-1] == (len(data), len(data))
    assert [read for read, _ in seen] == sorted(read for read, _ in seen)
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
    # Every pair of every chunk has its summary, its slots counted.
    summaries = dict(
        (
            await session.execute(
                text("SELECT pair_id, slots FROM pair_summaries WHERE project_id = :project_id"),
                {"project_id": project.id},
            )
        ).all()
    )
    assert summaries == {pair.id: 0 if pair.is_gold else 2 for pair in pairs_rows}


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
    # Chunks 1 to 6 are written before the reader, a chunk ahead, meets line 46.
    stream = io.BytesIO(jsonl(*good[:45]) + b"{broken\n" + jsonl(*good[45:]))
    with pytest.raises(ImportRejected) as caught:
        async with session.begin_nested():
            await service.import_stream(
                session, project, stream, filename="b.jsonl", source="cli", user=None
            )
    assert caught.value.report.errors[0].line == 46
    assert await counts(session, project) == before
    assert not import_threads()


async def test_database_failure_in_a_later_chunk_stops_the_thread_and_leaves_nothing(
    session: AsyncSession, small_chunks: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = await make_project(session)
    before = await counts(session, project)
    good = [prompt_row(f"p{n}") for n in range(2000)]  # 425 kB: several reads of 64 kB
    data = jsonl(*good)
    stream = CountedReads(data)
    copy_rows = bulk_repository.copy_rows
    copies = 0

    async def fails_at_the_sixth_chunk(
        driver: psycopg.AsyncConnection[Any], table: str, *args: Any
    ) -> None:
        nonlocal copies
        copies += table == "prompts"
        if copies == 6:
            await driver.execute("SELECT 1 / 0")  # Postgres refuses the statement.
        await copy_rows(driver, table, *args)

    monkeypatch.setattr(bulk_repository, "copy_rows", fails_at_the_sixth_chunk)
    with pytest.raises(psycopg.errors.DivisionByZero):
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
    assert stream.tell() < len(data) // 2
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


@pytest.mark.parametrize(
    ("first", "repeat", "same_content"),
    [(3, 5, True), (3, 5, False), (2, 40, True), (2, 40, False)],
    ids=["same chunk", "same chunk, other content", "later chunk", "later chunk, other content"],
)
async def test_an_id_used_twice_rejects_the_file_naming_both_lines(
    session: AsyncSession, small_chunks: int, first: int, repeat: int, same_content: bool
) -> None:
    """The file is written as it is read, so the repeat may reach the writer (as a fresh
    prompt in the same chunk, or as one already written): it must still be the reader's
    verdict that rejects the file, and nothing may stay."""
    project = await make_project(session)
    before = await counts(session, project)
    rows = [prompt_row(f"p{n}") for n in range(50)]
    rows[repeat] = prompt_row(f"p{first}", n=2 if same_content else 3)
    with pytest.raises(ImportRejected) as caught:
        await service.import_stream(
            session, project, io.BytesIO(jsonl(*rows)), filename="b.jsonl", source="cli", user=None
        )
    [error] = caught.value.report.errors
    assert (error.line, error.field) == (repeat + 1, "id")
    assert f"already used on line {first + 1}" in error.message
    assert await counts(session, project) == before
    assert not import_threads()


async def test_a_file_over_the_size_limit_is_refused_before_it_is_read(
    session: AsyncSession,
) -> None:
    """The import writes as it reads: a file it would refuse at the end is not started."""
    from pickwise.batches.parsing.report import ImportLimits

    project = await make_project(session)
    before = await counts(session, project)
    data = jsonl(*(prompt_row(f"p{n}") for n in range(20)))
    stream = CountedReads(data)
    stream.failed = True  # Every read counts.
    with pytest.raises(ImportRejected) as caught:
        await service.import_stream(
            session,
            project,
            stream,
            filename="b.jsonl",
            source="cli",
            user=None,
            limits=ImportLimits(max_file_bytes=len(data) - 1),
        )
    [error] = caught.value.report.errors
    assert error.message == f"the file is larger than the limit of {len(data) - 1:,} bytes"
    assert caught.value.report.byte_count == len(data)
    assert stream.reads_after_failure == 0
    assert await counts(session, project) == before


async def prompt_index_reads(session: AsyncSession) -> dict[str, int]:
    """Index entries of prompts read so far by this transaction, per index."""
    rows = await session.execute(
        text(
            "SELECT i.indexrelid::regclass::text, pg_stat_get_xact_tuples_returned(i.indexrelid) "
            "FROM pg_index i WHERE i.indrelid = 'prompts'::regclass"
        )
    )
    return {name: int(read) for name, read in rows.all()}


async def import_lines(
    session: AsyncSession, project: Any, names: Iterable[str], filename: str
) -> None:
    """Imports a prompt with two answers for each of `names` through the API's path."""
    data = jsonl(*(prompt_row(name, n=2) for name in names))
    await service.import_stream(
        session, project, io.BytesIO(data), filename=filename, source="api", user=None
    )


async def test_a_large_import_after_a_small_one_on_the_same_connection_stays_linear(
    session: AsyncSession,
) -> None:
    # Postgres plans each foreign-key check once per connection and keeps the plan. Planned
    # while the project had a few prompts (a small import earlier on a pooled connection), the
    # check of an answer's prompt walked all the project's prompts (the index on project_id
    # and external_id) for every row: a 10k-task import took 10x as long
    # (bulk_repository.plan_checks_afresh).
    project = await make_project(session)
    await import_lines(session, project, (f"small{n}" for n in range(20)), "small.jsonl")
    before = await prompt_index_reads(session)
    # A chunk's worth and more: planned at the import's first check, with a chunk of prompts
    # written, the check takes the (id, project_id) index, as on a new connection.
    prompts = service.CHUNK + 100
    await import_lines(session, project, (f"p{n}" for n in range(prompts)), "large.jsonl")
    after = await prompt_index_reads(session)
    read = sum(after.values()) - sum(before.values())
    # Each answer and each pair finds its prompt in one index entry (plus the id lookups);
    # walking the project's prompts read ~prompts² / 2 * 3 = 6.6 million.
    assert read < 10 * prompts, {name: after[name] - before.get(name, 0) for name in after}


async def test_a_large_import_into_tables_analyzed_while_nearly_empty_stays_linear(
    session: AsyncSession,
) -> None:
    # Statistics taken when a table's pages held almost no live rows (after a project was
    # deleted, or a large import rolled back) say ~0 rows a page, so a batch's end statements
    # were planned for a row or two: its slots walked the whole prompts index for every pair.
    project = await make_project(session)
    prompts = service.CHUNK + 100
    names = [f"p{n}" for n in range(prompts)]
    async with session.begin_nested() as rolled_back:
        await import_lines(session, project, names, "gone.jsonl")
        await rolled_back.rollback()
    await session.execute(text("ANALYZE prompts, responses, pairs, pair_slots"))
    before = await prompt_index_reads(session)
    await import_lines(session, project, names, "large.jsonl")
    after = await prompt_index_reads(session)
    read = sum(after.values()) - sum(before.values())
    assert read < 10 * prompts, {name: after[name] - before.get(name, 0) for name in after}
    # The statistics now count the batch's rows (this transaction's own).
    estimated = await session.scalar(
        text("SELECT reltuples FROM pg_class WHERE oid = 'prompts'::regclass")
    )
    assert estimated >= prompts


async def test_statistics_are_refreshed_only_for_tables_that_outgrew_them(
    session: AsyncSession,
) -> None:
    project = await make_project(session)
    await import_lines(session, project, (f"small{n}" for n in range(20)), "small.jsonl")
    await session.execute(text("ANALYZE pairs, prompts"))
    estimate = text("SELECT reltuples FROM pg_class WHERE oid = CAST(:table AS regclass)")
    pairs = int(await session.scalar(estimate, {"table": "pairs"}))
    prompts = int(await session.scalar(estimate, {"table": "prompts"}))
    assert pairs >= 20 and prompts >= 20
    driver = await driver_connection(session)
    # No more than the statistics hold: nothing to refresh.
    assert (
        await bulk_repository.refresh_outgrown_statistics(
            driver, {"pairs": pairs, "prompts": prompts}
        )
        == []
    )
    # More written than the table is thought to hold: that table alone.
    written = {"pairs": pairs + 1, "prompts": prompts, "responses": 0}
    assert await bulk_repository.refresh_outgrown_statistics(driver, written) == ["pairs"]
