"""Importing a batch: one pass over the file that checks each line and writes it, in one
transaction.

All or nothing: a file with any bad line, or any prompt id that already exists with other
content, is rejected whole (ImportRejected, with every problem the pass found) and the
caller's transaction rolls back what was written before the problem showed. Idempotent:
prompts that exist with the same content are counted as unchanged and left alone, and a file
with nothing new adds no batch (the outcome says "nothing new" and has no batch id).
"""

import asyncio
import itertools
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar, cast

from pickwise.assignments import slots_repository
from pickwise.assignments.slots_repository import QueueRules
from pickwise.batches import bulk_repository
from pickwise.batches.bulk_repository import Driver
from pickwise.batches.pairing import generate_pairs
from pickwise.batches.parsing.reader import RecordReader, too_large_report
from pickwise.batches.parsing.records import ParsedPrompt
from pickwise.batches.parsing.report import (
    ErrorLog,
    ImportFormat,
    ImportLimits,
    ImportRejected,
    LineError,
)
from pickwise.core.config import get_settings
from pickwise.overlap.rules import OverlapPolicy
from pickwise.review.summaries_repository import add_batch_summaries
from pickwise.vocabulary import PairingStrategy, PairStatus

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from pickwise.models import Project, User

__all__ = [
    "ImportOutcome",
    "ImportRejected",
    "ImportTarget",
    "import_records",
    "import_stream",
    "limits_from_settings",
]

CHUNK = 2_000
# Name of the thread that reads and shapes the next chunk while one is written.
IMPORT_THREAD_PREFIX = "pickwise-import"
_DONE = object()
T = TypeVar("T")
# Called with (bytes of the file read so far, its size) after each chunk.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImportOutcome:
    batch_id: int | None  # None: nothing was new, so no batch was added
    prompts_new: int
    prompts_unchanged: int
    responses_new: int
    pairs_new: int
    sha256: str

    @property
    def nothing_new(self) -> bool:
        return self.batch_id is None

    @property
    def rows_new(self) -> int:
        return self.prompts_new + self.responses_new + self.pairs_new

    @property
    def summary(self) -> str:
        if self.nothing_new:
            return (
                f"nothing new: all {self.prompts_unchanged} prompts are already in the "
                "project, unchanged; no batch was added"
            )
        return (
            f"{self.prompts_new} new, {self.prompts_unchanged} unchanged prompts; "
            f"{self.responses_new} responses; {self.pairs_new} pairs"
        )


def limits_from_settings() -> ImportLimits:
    settings = get_settings()
    return ImportLimits(
        max_line_bytes=settings.import_max_line_bytes,
        max_file_bytes=settings.import_max_file_bytes,
    )


def _chunks(records: Iterator[ParsedPrompt]) -> Iterator[list[ParsedPrompt]]:
    while chunk := list(itertools.islice(records, CHUNK)):
        yield chunk


@dataclass(frozen=True)
class _PairingRules:
    strategy: PairingStrategy
    pairs_per_prompt: int
    seed: int

    def prepare(self, records: list[ParsedPrompt]) -> "_PreparedChunk":
        return _PreparedChunk([self._prepared(record) for record in records])

    def _prepared(self, record: ParsedPrompt) -> "_PreparedPrompt":
        as_json = bulk_repository.as_json
        position = {response.external_id: index for index, response in enumerate(record.responses)}
        pairs = []
        for first, second in generate_pairs(
            record, self.strategy, self.pairs_per_prompt, self.seed
        ):
            pairs.append((position[first], position[second]))
        return _PreparedPrompt(
            line_no=record.line_no,
            external_id=record.external_id,
            content_hash=record.content_hash,
            prompt=(
                record.external_id,
                record.system,
                as_json([{"role": t.role, "content": t.content} for t in record.turns]),
                record.content_hash,
                as_json(record.metadata),
            ),
            responses=[
                (response.external_id, response.model, response.content, as_json(response.metadata))
                for response in record.responses
            ],
            pairs=pairs,
            winner=position.get(record.gold_winner) if record.gold_winner else None,
        )


@dataclass(frozen=True)
class ImportTarget:
    """What an import needs of its project, as plain values: taken from the ORM object by the
    app, or from a row (`bulk_repository.project_by_slug`) by `pickwise import`, which writes
    without the ORM. Plain values also because the reader thread must not touch the ORM."""

    project_id: int
    kind: str  # a ProjectKind
    rules: _PairingRules
    queue: QueueRules
    initial_slots: int  # the slots each new non-gold pair gets

    @classmethod
    def of(cls, project: Any) -> "ImportTarget":
        """`project`: a Project, or a row with its IMPORT_TARGET_COLUMNS."""
        return cls(
            project_id=project.id,
            kind=project.kind,
            rules=_PairingRules(
                PairingStrategy(project.pairing_strategy),
                project.pairs_per_prompt,
                project.pairing_seed,
            ),
            queue=QueueRules.of(project),
            initial_slots=OverlapPolicy.of(project).initial_slots,
        )


async def import_stream(
    session: "AsyncSession",
    project: "Project",
    stream: BinaryIO,
    *,
    filename: str,
    source: str,
    user: "User | None",
    file_format: ImportFormat | None = None,
    limits: ImportLimits | None = None,
    progress: Progress | None = None,
) -> ImportOutcome:
    """`import_records` in the session's transaction, on the psycopg connection under it."""
    # Imported here: `pickwise import` calls import_records without loading SQLAlchemy; a
    # caller with a session has it loaded already.
    from pickwise.core.db import driver_connection

    await session.flush()
    return await import_records(
        await driver_connection(session),
        ImportTarget.of(project),
        stream,
        filename=filename,
        source=source,
        user_id=user.id if user else None,
        file_format=file_format,
        limits=limits,
        progress=progress,
    )


async def import_records(
    driver: Driver,
    target: ImportTarget,
    stream: BinaryIO,
    *,
    filename: str,
    source: str,
    user_id: int | None,
    file_format: ImportFormat | None = None,
    limits: ImportLimits | None = None,
    progress: Progress | None = None,
) -> ImportOutcome:
    """`stream` must be seekable: two same ids are named by reading the file again.

    `driver` must be in a transaction, which the caller commits. The writes happen in a
    savepoint: when the file is rejected, nothing of it stays in the caller's transaction,
    whether or not the caller rolls back.
    """
    limits = limits or limits_from_settings()
    async with bulk_repository.savepoint(driver):
        size = stream.seek(0, 2)
        stream.seek(0)
        if size > limits.max_file_bytes:
            raise ImportRejected(
                too_large_report(size, filename=filename, file_format=file_format, limits=limits)
            )
        # The file's digest and size are known once it is read; the row is needed before that.
        batch_id = await bulk_repository.add_batch(
            driver,
            project_id=target.project_id,
            filename=filename[:500],
            source=source,
            created_by_id=user_id,
        )
        writer = _BatchWriter(driver, target, batch_id)
        reader = RecordReader(stream, filename=filename, file_format=file_format, limits=limits)
        # Parsing is CPU work: it runs in a worker thread, a chunk ahead of the writes.
        prepared = (target.rules.prepare(chunk) for chunk in _chunks(iter(reader)))
        if progress:
            progress(0, size)
        await bulk_repository.plan_checks_afresh(driver)
        # The answers' words are made after the commit, by the search catch-up: inside the
        # import they cost more than the rest of its Postgres work (docs/benchmarks.md). So
        # are the prompts' (written not `searchable`, below).
        await bulk_repository.leave_search_for_later(driver, True)
        # The pairs' summaries are made once their slots exist, each written once.
        await bulk_repository.leave_summaries_for_later(driver, True)
        async with aclosing(_ahead(prepared)) as chunks:
            async for chunk in chunks:
                await writer.write(chunk)
                if progress:
                    progress(reader.bytes_read, size)
        await bulk_repository.leave_search_for_later(driver, False)
        report = reader.report
        assert report is not None  # The pass ended without raising: the file is valid.
        if writer.conflicts.count:
            raise ImportRejected(
                replace(
                    report, errors=tuple(writer.conflicts.kept), error_count=writer.conflicts.count
                )
            )
        # Only new prompts bring responses and pairs: without one, the batch would be empty.
        nothing_new = writer.prompts_new == 0
        if nothing_new:
            await bulk_repository.delete_batch(driver, batch_id)
        else:
            await bulk_repository.refresh_outgrown_statistics(
                driver,
                {
                    "prompts": writer.prompts_new,
                    "responses": writer.responses_new,
                    "pairs": writer.pairs_new,
                },
            )
            # The batch's pairs join the queue together, so the order can mix all their prompts.
            await slots_repository.create_slots(
                driver, target.project_id, target.initial_slots, target.queue, batch_id
            )
            await add_batch_summaries(driver, batch_id)
            await bulk_repository.record_batch(
                driver,
                batch_id,
                sha256=report.sha256,
                size_bytes=report.byte_count,
                prompts_new=writer.prompts_new,
                prompts_unchanged=writer.prompts_unchanged,
                responses_new=writer.responses_new,
                pairs_new=writer.pairs_new,
            )
        await bulk_repository.leave_summaries_for_later(driver, False)
        return ImportOutcome(
            batch_id=None if nothing_new else batch_id,
            prompts_new=writer.prompts_new,
            prompts_unchanged=writer.prompts_unchanged,
            responses_new=writer.responses_new,
            pairs_new=writer.pairs_new,
            sha256=report.sha256,
        )


async def _ahead(items: Iterator[T]) -> AsyncGenerator[T, None]:
    """Yields `items`, computing the next one in a worker thread while the caller handles this
    one: reading and shaping chunk n+1 overlaps with writing chunk n.

    The thread is this call's own; when the loop ends, however it ends, the item in progress is
    finished, the iterator closed and the thread joined, so nothing reads on after a failure.
    """
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=IMPORT_THREAD_PREFIX) as executor:
        pending = loop.run_in_executor(executor, next, items, _DONE)
        try:
            while (item := await pending) is not _DONE:
                pending = loop.run_in_executor(executor, next, items, _DONE)
                yield cast(T, item)
        finally:
            # Let the running step finish (it cannot be interrupted) before closing its iterator.
            await asyncio.wait([pending])
            if not pending.cancelled():
                pending.exception()  # The error that ended the loop is the one to report.
            close = getattr(items, "close", None)
            if close is not None:
                close()


@dataclass(frozen=True)
class _PreparedPrompt:
    """One record's rows without their ids, built off the event loop."""

    line_no: int
    external_id: str
    content_hash: str
    # external_id, system, turns, content_hash, metadata
    prompt: tuple[Any, ...]
    # external_id, model, content, metadata
    responses: list[tuple[Any, ...]]
    # Pairs as positions in `responses`, and the gold winner's position.
    pairs: list[tuple[int, int]]
    winner: int | None


@dataclass(frozen=True)
class _PreparedChunk:
    records: list[_PreparedPrompt]


class _BatchWriter:
    def __init__(self, driver: Driver, target: ImportTarget, batch_id: int) -> None:
        self.driver, self.batch_id = driver, batch_id
        self.project_id = target.project_id
        self.conflicts = ErrorLog(ImportLimits().max_errors_kept)
        self.prompts_new = self.prompts_unchanged = self.responses_new = self.pairs_new = 0

    async def write(self, chunk: _PreparedChunk) -> None:
        existing = await bulk_repository.existing_hashes(
            self.driver, self.project_id, [record.external_id for record in chunk.records]
        )
        fresh = []
        fresh_ids: set[str] = set()
        for record in chunk.records:
            stored_hash = existing.get(record.external_id)
            if record.external_id in fresh_ids:
                # The same id twice in the file: the reader rejects the file at the end of its
                # pass (naming both lines); writing both would fail on the unique key first.
                continue
            if stored_hash is None:
                fresh.append(record)
                fresh_ids.add(record.external_id)
            elif stored_hash == record.content_hash:
                self.prompts_unchanged += 1
            else:
                self.conflicts.add(
                    LineError(
                        record.line_no,
                        "id",
                        f"conflict: prompt {record.external_id!r} already exists in this "
                        "project with different content; it was not overwritten (give the "
                        "new version another id)",
                    )
                )
        if fresh and not self.conflicts.count:
            await self._insert(fresh)

    async def _insert(self, records: list[_PreparedPrompt]) -> None:
        project_id, batch_id = self.project_id, self.batch_id
        ids = await bulk_repository.reserve_ids(
            self.driver,
            {
                "prompts": len(records),
                "responses": sum(len(record.responses) for record in records),
                "pairs": sum(len(record.pairs) for record in records),
            },
        )
        response_ids, pair_ids = iter(ids["responses"]), iter(ids["pairs"])
        prompt_rows: list[tuple[Any, ...]] = []
        response_rows: list[tuple[Any, ...]] = []
        pair_rows: list[tuple[Any, ...]] = []
        for prompt_id, record in zip(ids["prompts"], records, strict=True):
            # Not searchable until the search catch-up: the words are not made here.
            prompt_rows.append((prompt_id, project_id, batch_id, *record.prompt, False))
            these = [next(response_ids) for _ in record.responses]
            for response_id, response in zip(these, record.responses, strict=True):
                response_rows.append((response_id, project_id, prompt_id, *response))
            winner = these[record.winner] if record.winner is not None else None
            for first, second in record.pairs:
                # A is the response listed first in the file: ids follow the file's order.
                low, high = sorted((these[first], these[second]))
                is_gold = winner is not None and winner in (low, high)
                pair_id = next(pair_ids)
                pair_rows.append(
                    (
                        pair_id,
                        project_id,
                        prompt_id,
                        batch_id,
                        low,
                        high,
                        is_gold,
                        winner if is_gold else None,
                        PairStatus.ACTIVE,
                    )
                )
        await bulk_repository.copy_rows(
            self.driver,
            "prompts",
            (
                "id",
                "project_id",
                "batch_id",
                "external_id",
                "system",
                "turns",
                "content_hash",
                "metadata",
                "searchable",
            ),
            prompt_rows,
        )
        await bulk_repository.copy_rows(
            self.driver,
            "responses",
            ("id", "project_id", "prompt_id", "external_id", "model", "content", "metadata"),
            response_rows,
        )
        await bulk_repository.copy_rows(
            self.driver,
            "pairs",
            (
                "id",
                "project_id",
                "prompt_id",
                "batch_id",
                "response_a_id",
                "response_b_id",
                "is_gold",
                "gold_winner_id",
                "status",
            ),
            pair_rows,
        )
        self.prompts_new += len(prompt_rows)
        self.responses_new += len(response_rows)
        self.pairs_new += len(pair_rows)
