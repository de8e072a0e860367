"""Exports from the database: the folder (CLI, admin page), the NDJSON stream (API), and a
preview of the counts."""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from pickwise.core.metrics import EXPORT_ROWS
from pickwise.exports import repository
from pickwise.exports.card import CardInfo
from pickwise.exports.ndjson import aiter_ndjson
from pickwise.exports.pipeline import ExportOptions
from pickwise.exports.selection import Selection
from pickwise.exports.splits import Split
from pickwise.exports.stats import ExportStats
from pickwise.exports.writer import ExportResult, awrite_export

__all__ = ["ExportResult", "Preview", "preview", "stream_ndjson", "write_folder"]
from pickwise.models import Project


@dataclass(frozen=True)
class Preview:
    votes: int
    kept: int
    unit: str
    dropped: dict[str, int]
    conversational: bool

    @property
    def summary(self) -> str:
        parts = [f"{self.kept:,} {self.unit}s"]
        parts += [f"{count:,} left out: {reason}" for reason, count in sorted(self.dropped.items())]
        return "; ".join(parts)


def strength_scale(project: Project) -> tuple[str, ...]:
    return tuple(str(label) for label in project.strength_scale)


async def write_folder(
    engine: AsyncEngine,
    project: Project,
    selection: Selection,
    options: ExportOptions,
    out_root: Path,
    *,
    command: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    async with engine.connect() as connection, connection.begin():
        conversational = await repository.needs_messages(connection, selection)
        votes = repository.stream_votes(connection, selection, strength_scale(project))
        result = await awrite_export(
            votes,
            options,
            out_root=out_root,
            project_slug=project.slug,
            conversational=conversational,
            card=CardInfo(pretty_name=project.name),
            command=command,
            progress=progress,
        )
    EXPORT_ROWS.inc(sum(result.stats.rows.values()))
    return result


async def stream_ndjson(
    engine: AsyncEngine,
    project: Project,
    selection: Selection,
    options: ExportOptions,
    split: Split | None = None,
) -> AsyncIterator[bytes]:
    """Opens its own connection: the response body outlives the request's session."""
    async with engine.connect() as connection, connection.begin():
        conversational = await repository.needs_messages(connection, selection)
        votes = repository.stream_votes(connection, selection, strength_scale(project))
        async for chunk in aiter_ndjson(votes, options, conversational=conversational, split=split):
            EXPORT_ROWS.inc(chunk.count(b"\n"))
            yield chunk


async def preview(
    engine: AsyncEngine, project: Project, selection: Selection, options: ExportOptions
) -> Preview:
    stats = ExportStats()
    async with engine.connect() as connection, connection.begin():
        conversational = await repository.needs_messages(connection, selection)
        votes = repository.stream_votes(connection, selection, strength_scale(project))
        async for _ in aiter_ndjson(votes, options, conversational=conversational, stats=stats):
            pass
    return Preview(
        votes=stats.votes_read,
        kept=stats.kept,
        unit=options.unit,
        dropped=dict(stats.dropped),
        conversational=conversational,
    )
