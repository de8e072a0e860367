"""Exports from the database: the folder (CLI, admin page), the NDJSON stream (API), and a
preview of the counts."""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from pickwise.core.metrics import EXPORT_ROWS
from pickwise.exports import repository
from pickwise.exports.dataset.aggregation import ExportStats
from pickwise.exports.dataset.card import CardInfo
from pickwise.exports.dataset.formats import ExportFormat
from pickwise.exports.dataset.manifest import SelectionRecord
from pickwise.exports.dataset.ndjson import aiter_ndjson
from pickwise.exports.dataset.overlap import OverlapNote
from pickwise.exports.dataset.pipeline import ExportItem, ExportOptions, RowStream
from pickwise.exports.dataset.splits import Split
from pickwise.exports.dataset.writer import ExportResult, ExportWriter
from pickwise.exports.repository import PairCondition, Selection
from pickwise.exports.schemas import ExportQuery
from pickwise.review import service as review

__all__ = ["ExportResult", "Preview", "preview", "stream_ndjson", "write_folder"]
from pickwise.models import Project
from pickwise.overlap.rules import OverlapPolicy


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


def overlap_note(project: Project) -> OverlapNote:
    policy = OverlapPolicy.of(project)
    return OverlapNote(policy.settings(), policy.describe())


async def selection_for(
    connection: AsyncConnection, project: Project, query: ExportQuery
) -> Selection:
    """The judgments the query selects: the explorer's filter (through the pair summaries)
    and the vote options."""
    pairs = query.pair_filter()
    condition = None
    if not pairs.is_empty:
        sql, params = await review.export_condition(connection, project, pairs, "pairs_")
        condition = PairCondition(sql, params)
    return Selection(
        project_id=project.id,
        include_gold=query.include_gold,
        include_excluded_raters=query.include_excluded,
        pairs=condition,
    )


def strength_scale(project: Project) -> tuple[str, ...]:
    return tuple(str(label) for label in project.strength_scale)


async def _read(
    connection: AsyncConnection, project: Project, selection: Selection, options: ExportOptions
) -> AsyncIterator[ExportItem]:
    """Judgments one by one for the votes format; whole pairs (one row each) for the others."""
    scale = strength_scale(project)
    if options.format is not ExportFormat.VOTES:
        async for pair in repository.stream_pairs(connection, selection, scale):
            yield pair
        return
    # Every row gets every criterion: the project's and any an older judgment gave.
    found = await repository.criteria_in_votes(connection, selection)
    names = tuple(sorted(found | {str(name) for name in project.criteria}))
    async for vote in repository.stream_votes(connection, selection, scale, names):
        yield vote


async def write_folder(
    connection: AsyncConnection,
    project: Project,
    selection: Selection,
    options: ExportOptions,
    out_root: Path,
    *,
    command: str | None = None,
    progress: Callable[[int], None] | None = None,
    record: SelectionRecord | None = None,
) -> ExportResult:
    conversational = await repository.needs_messages(connection, selection)
    writer = ExportWriter(
        options,
        out_root=out_root,
        project_slug=project.slug,
        conversational=conversational,
        card=CardInfo(pretty_name=project.name, overlap=overlap_note(project)),
        command=command,
        progress=progress,
        selection=record,
    )
    result = await writer.awrite_all(_read(connection, project, selection, options))
    EXPORT_ROWS.inc(sum(result.stats.rows.values()))
    return result


async def stream_ndjson(
    connection: AsyncConnection,
    project: Project,
    selection: Selection,
    options: ExportOptions,
    split: Split | None = None,
) -> AsyncIterator[bytes]:
    """`connection` must stay open while the chunks are sent (the request's session is
    committed before the body goes out; exports.deps.ReadConnection is not)."""
    conversational = await repository.needs_messages(connection, selection)
    items = _read(connection, project, selection, options)
    rows = RowStream(options, conversational=conversational)
    async for chunk in aiter_ndjson(items, rows, split=split):
        EXPORT_ROWS.inc(chunk.count(b"\n"))
        yield chunk


async def preview(
    connection: AsyncConnection, project: Project, selection: Selection, options: ExportOptions
) -> Preview:
    stats = ExportStats()
    conversational = await repository.needs_messages(connection, selection)
    rows = RowStream(options, conversational=conversational, stats=stats)
    async for item in _read(connection, project, selection, options):
        rows.push(item)
    rows.finish()
    return Preview(
        votes=stats.votes_read,
        kept=stats.kept,
        unit=options.unit,
        dropped=dict(stats.dropped),
        conversational=conversational,
    )
