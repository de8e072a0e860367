"""The database export equals an export built from plain rows read another way.

The project is seeded through the ORM with everything the export query has to get right:
two projects, prompts whose external ids sort differently bytewise and by locale, system
prompts and several turns, pairs with zero to five votes, judgment ids that do not follow
pair order, gold and removed pairs, an excluded rater, two batches, strengths, rationales,
criteria and timestamps with microseconds. The reference reads each table with a plain ORM
query, filters and sorts in Python, and feeds the votes to the in-memory writer; the folder,
the download and the preview from the database must give the same bytes and counts.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pickwise.batches.parsing.records import Message
from pickwise.core.db import get_engine, get_read_engine, session_factory
from pickwise.exports import service
from pickwise.exports.dataset.card import CardInfo
from pickwise.exports.dataset.formats import ExportFormat
from pickwise.exports.dataset.ndjson import iter_ndjson
from pickwise.exports.dataset.pipeline import RowStream
from pickwise.exports.dataset.records import PromptRecord, VoteRecord
from pickwise.exports.dataset.splits import Split
from pickwise.exports.dataset.writer import MANIFEST, README, ExportWriter
from pickwise.exports.repository import Selection
from pickwise.exports.schemas import ExportQuery
from pickwise.models import (
    Assignment,
    Batch,
    Judgment,
    Pair,
    PairSlot,
    Project,
    ProjectMember,
    ProjectRaterExclusion,
    Prompt,
    Response,
    User,
)
from tests.exports.helpers import read_lines

SCALE = ["slightly", "clearly", "much"]
# "tone" was dropped from the project after some votes gave it; "clarity" was never given.
CRITERIA = ["accuracy", "clarity"]
SHOWN = datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=UTC)
# Bytewise ("C") order differs from a locale's: "B" < "a" < "b" < "z" < "é" < "ü".
PLAIN_IDS = ["b-2", "B-1", "a 1", "é", "10", "9", "z", "ü-x", "a-1", "a"]
CONVERSATIONAL_IDS = ["c-sys", "c-turns", "c-both", "A-sys-empty"]


@dataclass
class Seeded:
    project: Project
    plain_batch: int
    conversational_batch: int
    excluded_rater: int


async def seed(rng: random.Random) -> Seeded:
    async with session_factory(get_engine())() as session, session.begin():
        project = Project(
            slug="reference",
            name="Reference",
            raters_per_pair=3,
            strength_scale=SCALE,
            criteria=CRITERIA,
        )
        other = Project(slug="other", name="Other", raters_per_pair=3)
        session.add_all([project, other])
        await session.flush()
        raters = [
            User(
                email=f"rater{n}@example.org",
                display_name=f"Rater {n}",
                pseudonym=f"pseudonym-{n:02d}",
            )
            for n in range(6)
        ]
        session.add_all(raters)
        await session.flush()
        for index, rater in enumerate(raters):
            session.add(ProjectMember(project_id=project.id, user_id=rater.id))
            if index == 5:
                session.add(ProjectRaterExclusion(project_id=project.id, user_id=rater.id))
            session.add(ProjectMember(project_id=other.id, user_id=rater.id))
        batches = [
            Batch(project_id=owner.id, filename=f"{n}.jsonl", sha256="0" * 64, source="cli")
            for n, owner in enumerate([project, project, other])
        ]
        session.add_all(batches)
        await session.flush()
        plain, conversational, other_batch = batches

        prompts: list[tuple[Prompt, Batch]] = []
        for external_id in PLAIN_IDS:
            turns = [{"role": "user", "content": f'Frage «{external_id}»\nmit "Zitat"'}]
            prompts.append((_prompt(project, plain, external_id, None, turns), plain))
        conversations: dict[str, tuple[str | None, list[dict[str, str]]]] = {
            "c-sys": ("Be brief.", [{"role": "user", "content": "Hi"}]),
            "c-turns": (
                None,
                [
                    {"role": "user", "content": "One"},
                    {"role": "assistant", "content": "Two"},
                    {"role": "user", "content": "Three ✓"},
                ],
            ),
            "c-both": (
                "Système",
                [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b"},
                    {"role": "user", "content": "c"},
                ],
            ),
            # An empty system prompt says nothing; the prompt is a plain string.
            "A-sys-empty": ("", [{"role": "user", "content": "plain after all"}]),
        }
        for external_id, (system, turns) in conversations.items():
            prompt = _prompt(project, conversational, external_id, system, turns)
            prompts.append((prompt, conversational))
        prompts.append(
            (
                _prompt(other, other_batch, "b-2", None, [{"role": "user", "content": "x"}]),
                other_batch,
            )
        )
        session.add_all(prompt for prompt, _ in prompts)
        await session.flush()

        pairs: list[tuple[Pair, Project]] = []
        for prompt, batch in prompts:
            owner = project if prompt.project_id == project.id else other
            responses = [
                Response(
                    project_id=owner.id,
                    prompt_id=prompt.id,
                    external_id=str(n),
                    model=f"model-{rng.randrange(4)}",
                    content=f"Réponse {n} à {prompt.external_id}\n\t«{rng.random():.6f}»",
                )
                for n in range(rng.choice([2, 3]))
            ]
            for response in responses:
                session.add(response)
                await session.flush()  # ids in list order: a < b below
            for first in range(len(responses)):
                for second in range(first + 1, len(responses)):
                    is_gold = rng.random() < 0.15
                    a, b = responses[first], responses[second]
                    # A later batch may add pairs to an earlier prompt.
                    pair_batch = (
                        conversational if (batch is plain and rng.random() < 0.1) else batch
                    )
                    pair = Pair(
                        project_id=owner.id,
                        prompt_id=prompt.id,
                        batch_id=pair_batch.id,
                        response_a_id=a.id,
                        response_b_id=b.id,
                        is_gold=is_gold,
                        gold_winner_id=a.id if is_gold else None,
                        status="removed" if rng.random() < 0.1 else "active",
                    )
                    session.add(pair)
                    pairs.append((pair, owner))
        await session.flush()

        votes = [
            (pair, owner, rater)
            for pair, owner in pairs
            for rater in rng.sample(raters, rng.choice([0, 1, 2, 3, 3, 3, 4, 5]))
        ]
        # Judgment ids must not follow pair order: the export sorts them.
        rng.shuffle(votes)
        for number, (pair, owner, rater) in enumerate(votes):
            shown = SHOWN + timedelta(minutes=number, microseconds=rng.randrange(10**6))
            slot = None
            if not pair.is_gold:
                slot = PairSlot(
                    project_id=owner.id,
                    pair_id=pair.id,
                    slot_no=number + 1,
                    state="done",
                    queue_pos=pair.id,
                )
                session.add(slot)
                await session.flush()
            left = rng.choice(["a", "b"])
            assignment = Assignment(
                project_id=owner.id,
                pair_id=pair.id,
                rater_id=rater.id,
                slot_id=slot.id if slot else None,
                status="submitted",
                left_side=left,
                is_gold=pair.is_gold,
                shown_at=shown,
                lease_expires_at=shown + timedelta(minutes=10),
                completed_at=shown + timedelta(seconds=30),
            )
            session.add(assignment)
            await session.flush()
            choice = rng.choice(["a", "a", "b", "b", "tie", "both_bad"])
            session.add(
                Judgment(
                    project_id=owner.id,
                    pair_id=pair.id,
                    assignment_id=assignment.id,
                    rater_id=rater.id,
                    slot_id=slot.id if slot else None,
                    is_gold=pair.is_gold,
                    choice=choice,
                    strength=rng.choice([None, 0, 1, 2]) if choice in ("a", "b") else None,
                    rationale=rng.choice([None, "", "weil «kürzer»\nund \\ klarer", "ok"]),
                    criteria=rng.choice([{}, {"accuracy": "a"}, {"tone": "tie", "accuracy": "b"}]),
                    left_side=left,
                    shown_at=shown,
                    submitted_at=shown + timedelta(seconds=rng.randrange(1, 90)),
                )
            )
        await session.flush()
        return Seeded(project, plain.id, conversational.id, raters[5].id)


def _prompt(
    project: Project, batch: Batch, external_id: str, system: str | None, turns: list[Any]
) -> Prompt:
    return Prompt(
        project_id=project.id,
        batch_id=batch.id,
        external_id=external_id,
        system=system,
        turns=turns,
        content_hash="0" * 64,
    )


async def reference_votes(
    project: Project, selection: Selection, batch_ids: list[int]
) -> list[VoteRecord]:
    """The selected votes read with plain ORM queries, filtered and sorted in Python."""
    async with session_factory(get_engine())() as session:
        judgments = list(
            await session.scalars(select(Judgment).where(Judgment.project_id == project.id))
        )
        pairs = {pair.id: pair for pair in await session.scalars(select(Pair))}
        prompts = {prompt.id: prompt for prompt in await session.scalars(select(Prompt))}
        responses = {item.id: item for item in await session.scalars(select(Response))}
        users = {user.id: user for user in await session.scalars(select(User))}
        excluded = set(
            await session.scalars(
                select(ProjectRaterExclusion.user_id).where(
                    ProjectRaterExclusion.project_id == project.id
                )
            )
        )
    scale = tuple(project.strength_scale)
    selected = [
        judgment
        for judgment in judgments
        if pairs[judgment.pair_id].status != "removed"
        and (selection.include_gold or not judgment.is_gold)
        and (not batch_ids or pairs[judgment.pair_id].batch_id in batch_ids)
        and (selection.include_excluded_raters or judgment.rater_id not in excluded)
    ]
    # Every criterion of the project and of the selected votes, in every row.
    given = {name for judgment in selected for name in judgment.criteria}
    criteria_names = tuple(sorted(given | set(project.criteria)))
    records = []
    for judgment in selected:
        pair = pairs[judgment.pair_id]
        prompt = prompts[pair.prompt_id]
        a, b = responses[pair.response_a_id], responses[pair.response_b_id]
        records.append(
            VoteRecord(
                judgment_id=judgment.id,
                pair_id=pair.id,
                prompt=PromptRecord(
                    prompt_id=prompt.id,
                    external_id=prompt.external_id,
                    system=prompt.system,
                    turns=tuple(Message(t["role"], t["content"]) for t in prompt.turns),
                ),
                response_a_id=a.id,
                response_b_id=b.id,
                response_a=a.content,
                response_b=b.content,
                model_a=a.model,
                model_b=b.model,
                choice=judgment.choice,  # type: ignore[arg-type]
                strength=judgment.strength if scale else None,
                strength_scale=scale,
                rationale=judgment.rationale,
                criteria=judgment.criteria,
                rater_pseudonym=users[judgment.rater_id].pseudonym,
                shown_left=judgment.left_side,  # type: ignore[arg-type]
                shown_at=judgment.shown_at,
                submitted_at=judgment.submitted_at,
                is_gold=judgment.is_gold,
                batch_id=pair.batch_id,
                criteria_names=criteria_names,
            )
        )
    # Python compares str by code point: the order of Postgres' COLLATE "C" on UTF-8.
    records.sort(key=lambda vote: (vote.prompt.external_id, vote.pair_id, vote.judgment_id))
    return records


QUERIES: list[dict[str, Any]] = [
    {"format": "votes"},
    {"format": "votes", "include_gold": True, "include_excluded": True},
    {"format": "trl"},
    {"format": "trl", "aggregation": "unanimous", "include_excluded": True},
    {"format": "trl", "aggregation": "each-vote", "min_agreement": 0.5},
    {"format": "trl", "min_votes": 3, "min_agreement": 0.6, "test_fraction": 0.5, "seed": 7},
    {"format": "kto", "include_gold": True},
    {"format": "openai", "aggregation": "each-vote"},
    {"format": "hh-rlhf", "test_fraction": 0.3},
]


def cases(seeded: Seeded) -> Iterator[tuple[str, ExportQuery]]:
    for query in QUERIES:
        for batches in ([], [seeded.plain_batch], [seeded.conversational_batch]):
            label = f"{query} batches={'plain' if batches == [seeded.plain_batch] else batches}"
            yield label, ExportQuery.model_validate({**query, "batch_id": batches})


def without_time(manifest_text: str) -> dict[str, Any]:
    import json

    manifest: dict[str, Any] = json.loads(manifest_text)
    manifest.pop("exported_at")
    return manifest


@pytest.mark.parametrize("seed_value", [1, 2])
async def test_database_export_equals_the_reference(
    live_app: Any, tmp_path: Path, seed_value: int
) -> None:
    seeded = await seed(random.Random(seed_value))
    project = seeded.project
    async with session_factory(get_engine())() as session:
        project = await session.get_one(Project, project.id)
    kept_rows = 0
    for number, (label, query) in enumerate(cases(seeded)):
        async with get_read_engine().begin() as connection:
            selection = await service.selection_for(connection, project, query)
        options = query.options()
        votes = await reference_votes(project, selection, query.batch_id)
        conversational = any(not vote.prompt.is_single_user_turn for vote in votes)
        expected = ExportWriter(
            options,
            out_root=tmp_path / f"expected-{number}",
            project_slug=project.slug,
            conversational=conversational,
            card=CardInfo(pretty_name=project.name, overlap=service.overlap_note(project)),
        ).write_all(votes)
        async with get_read_engine().begin() as connection:
            folder = await service.write_folder(
                connection, project, selection, options, tmp_path / f"got-{number}"
            )
        for name in [f"{split.value}.jsonl" for split in Split] + [README]:
            got = (folder.path / name).read_bytes()
            assert got == (expected.path / name).read_bytes(), f"{label}: {name} differs"
        if options.format is ExportFormat.VOTES:
            # Criteria are an object with the same keys in every row, including "tone",
            # which the project no longer lists, and "clarity", which no vote gave.
            names = {tuple(row["criteria"]) for row in read_lines(folder.path / "train.jsonl")}
            assert len(names) == 1, label
            assert set(next(iter(names))) >= set(CRITERIA), label
        assert without_time((folder.path / MANIFEST).read_text()) == without_time(
            (expected.path / MANIFEST).read_text()
        ), label

        for split in (None, Split.TEST):
            async with get_read_engine().begin() as connection:
                chunks = service.stream_ndjson(connection, project, selection, options, split)
                download = b"".join([chunk async for chunk in chunks])
            rows = RowStream(options, conversational=conversational)
            reference = b"".join(iter_ndjson(votes, rows, split=split))
            assert download == reference, f"{label}: download ({split}) differs"

        async with get_read_engine().begin() as connection:
            preview = await service.preview(connection, project, selection, options)
        assert preview.votes == expected.stats.votes_read == len(votes), label
        assert preview.kept == expected.stats.kept, label
        assert preview.dropped == dict(expected.stats.dropped), label
        assert preview.conversational == conversational, label
        kept_rows += sum(expected.stats.rows.values())
    # The cases are not vacuous: the seeded data gives rows in every format.
    assert kept_rows > 100
