"""Importing a batch: validate the whole file, then write it in one transaction.

All or nothing: a file with any bad line, or any prompt id that already exists with other
content, is rejected whole and the caller's transaction rolls back. Idempotent: prompts that
exist with the same content are counted as unchanged and left alone.
"""

import asyncio
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import BinaryIO, cast

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.service import create_slots
from pickwise.batches import repository
from pickwise.batches.pairing import PairStrategy, generate_pairs
from pickwise.batches.parsing import iter_records, validate
from pickwise.batches.records import ParsedPrompt
from pickwise.batches.report import (
    ErrorLog,
    ImportFormat,
    ImportLimits,
    ImportRejected,
    LineError,
)
from pickwise.core.config import get_settings
from pickwise.core.metrics import IMPORT_ROWS
from pickwise.models import Batch, Project, User

__all__ = ["ImportOutcome", "ImportRejected", "import_stream", "limits_from_settings"]

CHUNK = 2_000
# Called with (prompts written so far, prompts in the file) after each chunk.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImportOutcome:
    batch_id: int
    prompts_new: int
    prompts_unchanged: int
    responses_new: int
    pairs_new: int
    sha256: str

    @property
    def summary(self) -> str:
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


async def import_stream(
    session: AsyncSession,
    project: Project,
    stream: BinaryIO,
    *,
    filename: str,
    source: str,
    user: User | None,
    file_format: ImportFormat | None = None,
    limits: ImportLimits | None = None,
    progress: Progress | None = None,
) -> ImportOutcome:
    """`stream` must be seekable: it is read twice (validate, then write)."""
    limits = limits or limits_from_settings()
    # Parsing is CPU work: run it off the event loop so other requests keep flowing.
    report = await asyncio.to_thread(
        validate, stream, filename=filename, file_format=file_format, limits=limits
    )
    if not report.valid:
        raise ImportRejected(report)
    stream.seek(0)
    batch = Batch(
        project_id=project.id,
        filename=filename[:500],
        sha256=report.sha256,
        size_bytes=report.byte_count,
        source=source,
        created_by_id=user.id if user else None,
    )
    session.add(batch)
    await session.flush()
    writer = _BatchWriter(session, project, batch)
    records = iter_records(stream, filename=filename, file_format=file_format, limits=limits)
    chunks = _chunks(records)
    done = 0
    if progress:
        progress(done, report.prompt_count)
    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
        await writer.write(chunk)
        done += len(chunk)
        if progress:
            progress(done, report.prompt_count)
    if writer.conflicts.count:
        raise ImportRejected(
            replace(report, errors=tuple(writer.conflicts.kept), error_count=writer.conflicts.count)
        )
    await create_slots(session, project, batch.id)
    IMPORT_ROWS.inc(writer.prompts_new + writer.responses_new + writer.pairs_new)
    batch.prompts_new, batch.prompts_unchanged = writer.prompts_new, writer.prompts_unchanged
    batch.responses_new, batch.pairs_new = writer.responses_new, writer.pairs_new
    await session.flush()
    return ImportOutcome(
        batch_id=batch.id,
        prompts_new=writer.prompts_new,
        prompts_unchanged=writer.prompts_unchanged,
        responses_new=writer.responses_new,
        pairs_new=writer.pairs_new,
        sha256=report.sha256,
    )


class _BatchWriter:
    def __init__(self, session: AsyncSession, project: Project, batch: Batch) -> None:
        self.session, self.project, self.batch = session, project, batch
        self.conflicts = ErrorLog(ImportLimits().max_errors_kept)
        self.prompts_new = self.prompts_unchanged = self.responses_new = self.pairs_new = 0

    async def write(self, chunk: list[ParsedPrompt]) -> None:
        existing = await repository.existing_hashes(
            self.session, self.project.id, [record.external_id for record in chunk]
        )
        fresh = []
        for record in chunk:
            stored_hash = existing.get(record.external_id)
            if stored_hash is None:
                fresh.append(record)
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

    async def _insert(self, records: list[ParsedPrompt]) -> None:
        project, batch = self.project, self.batch
        prompt_ids = await repository.next_ids(self.session, "prompts", len(records))
        response_count = sum(len(record.responses) for record in records)
        response_ids = iter(await repository.next_ids(self.session, "responses", response_count))
        strategy = cast(PairStrategy, project.pairing_strategy)
        seed = project.pairing_seed
        prompt_rows, response_rows, pair_specs = [], [], []
        for prompt_id, record in zip(prompt_ids, records, strict=True):
            prompt_rows.append(
                (
                    prompt_id,
                    project.id,
                    batch.id,
                    record.external_id,
                    record.system,
                    repository.as_json(
                        [{"role": t.role, "content": t.content} for t in record.turns]
                    ),
                    record.content_hash,
                    repository.as_json(record.metadata),
                )
            )
            ids_by_external: dict[str, int] = {}
            for response in record.responses:
                response_id = next(response_ids)
                ids_by_external[response.external_id] = response_id
                response_rows.append(
                    (
                        response_id,
                        project.id,
                        prompt_id,
                        response.external_id,
                        response.model,
                        response.content,
                        repository.as_json(response.metadata),
                    )
                )
            winner = ids_by_external.get(record.gold_winner) if record.gold_winner else None
            for first, second in generate_pairs(record, strategy, project.pairs_per_prompt, seed):
                low, high = sorted((ids_by_external[first], ids_by_external[second]))
                is_gold = winner is not None and winner in (low, high)
                pair_specs.append((prompt_id, low, high, is_gold, winner if is_gold else None))
        pair_ids = await repository.next_ids(self.session, "pairs", len(pair_specs))
        pair_rows = [
            (pair_id, project.id, prompt_id, batch.id, low, high, is_gold, winner, "active")
            for pair_id, (prompt_id, low, high, is_gold, winner) in zip(
                pair_ids, pair_specs, strict=True
            )
        ]
        await repository.copy_rows(
            self.session,
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
            ),
            prompt_rows,
        )
        await repository.copy_rows(
            self.session,
            "responses",
            ("id", "project_id", "prompt_id", "external_id", "model", "content", "metadata"),
            response_rows,
        )
        await repository.copy_rows(
            self.session,
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
