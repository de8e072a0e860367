"""An import that repeats prompt texts under new ids (as the import docs suggest), voted on
and exported through the export query: no conversation is in both splits, and the manifest
counts the repeated prompts. Issue 13: splitting by id put up to 5 of 8 repeated prompts on
both sides at test_fraction 0.3."""

import io
import json
from collections import defaultdict
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.batches.service import import_stream
from pickwise.exports import repository as export_repository
from pickwise.exports.dataset.formats import ExportFormat
from pickwise.exports.dataset.pipeline import ExportOptions
from pickwise.exports.dataset.records import PairVotes
from pickwise.exports.dataset.splits import Split, normalize_whitespace
from pickwise.exports.dataset.writer import ExportWriter
from pickwise.exports.repository import Selection
from pickwise.models import Pair
from tests.analytics_service.builders import Vote, add_votes
from tests.exports.helpers import read_lines
from tests.factories import make_project, make_user

TEXTS = [f"How do I cook dish number {n}?" for n in range(8)]


def repeated_import() -> bytes:
    """Each of 8 texts under four ids, spaced differently; plus 40 texts seen once."""
    rows = []
    for copy in range(4):
        for number, text in enumerate(TEXTS):
            spaced = text.replace(" ", "  ") if copy % 2 else f" {text}\n"
            rows.append({"id": f"copy{copy}-dish{number}", "prompt": spaced})
    rows += [
        {"id": f"single-{n}", "prompt": f"A question asked once, number {n}."} for n in range(40)
    ]
    lines = []
    for row in rows:
        row["responses"] = [
            {"id": "short", "model": "m1", "content": "Short answer."},
            {"id": "long", "model": "m2", "content": "A longer answer with more words."},
        ]
        lines.append(json.dumps(row))
    return ("\n".join(lines) + "\n").encode()


async def test_repeated_texts_under_new_ids_stay_on_one_side(
    session: AsyncSession, tmp_path: Path
) -> None:
    project = await make_project(session, raters_per_pair=1)
    await import_stream(
        session,
        project,
        io.BytesIO(repeated_import()),
        filename="dishes.jsonl",
        source="cli",
        user=None,
    )
    rater = await make_user(session)
    pairs = list(await session.scalars(select(Pair).where(Pair.project_id == project.id)))
    await add_votes(session, [Vote(pair, rater, "a") for pair in pairs])
    connection = await session.connection()
    items: list[PairVotes] = [
        pair async for pair in export_repository.stream_pairs(connection, Selection(project.id), ())
    ]

    for seed in range(5):
        result = ExportWriter(
            ExportOptions(ExportFormat.TRL, test_fraction=0.3, seed=seed),
            out_root=tmp_path / str(seed),
            project_slug=project.slug,
            conversational=False,
        ).write_all(items)
        sides: dict[str, set[Split]] = defaultdict(set)
        for split in Split:
            for row in read_lines(result.path / f"{split.value}.jsonl"):
                sides[normalize_whitespace(row["prompt"])].add(split)
        assert len(sides) == 48
        assert all(len(found) == 1 for found in sides.values()), seed
        counts = result.manifest["counts"]
        assert isinstance(counts, dict)
        assert counts["prompts"] == 72 and counts["repeated_prompts"] == 32
