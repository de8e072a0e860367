"""The rater's summary (`judgments.patterns.rater_choice_patterns`) gives the numbers that
`choice_pattern_summary` gives from their latest judgments as stored: whatever it keeps per
process and however it counts, with ties, "both bad", skips, changed and withdrawn choices,
none at all, and more than it reads."""

from datetime import timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from pickwise.analytics.text_features import (
    ChoiceRecord,
    choice_pattern_summary,
    forget_kept_features,
)
from pickwise.assignments.slots_service import create_slots
from pickwise.core import clock
from pickwise.judgments import patterns
from pickwise.models import Batch, Judgment, Pair
from pickwise.models import Response as Answer
from tests.factories import make_pair, make_project
from tests.judgments.test_changes import change, judge, rater_in, skip

ANSWERS = [
    "Yes.",
    "Yes, and here is a much longer explanation of why.",
    "Options:\n- one\n- two",
    "It might work, I think; perhaps not.",
    "You're right, great question. It works.",
    "# Steps\n1. Install it.\n2. Run it.",
    "It works.",
]


async def reference(
    session: AsyncSession, project_id: int, rater_id: int, limit: int
) -> tuple[int, int, list[tuple[str, int, int]]]:
    """(judged, decisive, lines) from the stored judgments, newest `limit`, the slow way."""
    answer_a, answer_b = aliased(Answer), aliased(Answer)
    rows = (
        await session.execute(
            select(Judgment.choice, Judgment.left_side, answer_a.content, answer_b.content)
            .join(Pair, Pair.id == Judgment.pair_id)
            .join(answer_a, answer_a.id == Pair.response_a_id)
            .join(answer_b, answer_b.id == Pair.response_b_id)
            .where(Judgment.project_id == project_id, Judgment.rater_id == rater_id)
            .order_by(Judgment.submitted_at.desc(), Judgment.id.desc())
            .limit(limit)
        )
    ).all()
    records = [ChoiceRecord("", a, b, choice, left) for choice, left, a, b in rows]
    lines = choice_pattern_summary(records)
    decisive = sum(choice in ("a", "b") for choice, _, _, _ in rows)
    return len(rows), decisive, [(ln.key, ln.chosen_count, ln.eligible_count) for ln in lines]


async def summary(
    session: AsyncSession, project_id: int, rater_id: int
) -> tuple[int, int, list[tuple[str, int, int]]]:
    found = await patterns.rater_choice_patterns(session, project_id, rater_id)
    lines = [(ln.key, ln.chosen_count, ln.eligible_count) for ln in found.lines]
    return found.judged, found.decisive, lines


@pytest.mark.parametrize("kept", [False, True])
async def test_the_summary_counts_what_is_stored(
    client: AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch, kept: bool
) -> None:
    # A cap of 6 stands for the 500: the rater makes more choices than it reads.
    monkeypatch.setattr(patterns, "MAX_JUDGMENTS", 6)
    project = await make_project(session, undo_seconds=3600)
    project_id = project.id
    batch = Batch(project_id=project_id, filename="t.jsonl", sha256="0" * 64, source="cli")
    session.add(batch)
    await session.flush()
    for i in range(12):
        await make_pair(
            session,
            project,
            batch.id,
            external_id=f"p{i}",
            question=f"Question {i}?",
            answers=(("x", ANSWERS[i % 7]), ("y", ANSWERS[(3 * i + 1) % 7])),
        )
    await create_slots(session, project, batch.id)
    rater, headers = await rater_in(session, project_id)
    _, other_headers = await rater_in(session, project_id)
    forget_kept_features()

    async def same() -> None:
        if not kept:
            forget_kept_features()
        expected = await reference(session, project_id, rater.id, 6)
        assert await summary(session, project_id, rater.id) == expected

    assert await summary(session, project_id, rater.id) == (0, 0, await same_lines_empty())
    await same()
    for choice in ["left", "right", "tie", "both_bad", "right"]:
        await judge(client, project_id, headers, choice=choice)
        clock.advance(timedelta(seconds=1))
        await same()
    await judge(client, project_id, other_headers, choice="left")  # another rater's
    skipped = await skip(client, project_id, headers)
    await same()
    # A skip made a choice, a choice changed, a choice withdrawn into a skip.
    assert (await change(client, skipped["assignment_id"], headers, choice="left")).is_success
    await same()
    last = await judge(client, project_id, headers, choice="left")
    assert (await change(client, last["assignment_id"], headers, choice="right")).is_success
    await same()
    clock.advance(timedelta(seconds=1))
    last = await judge(client, project_id, headers, choice="right")
    withdrawn = await change(client, last["assignment_id"], headers, "skip", reason="cant_judge")
    assert withdrawn.is_success
    await same()
    for choice in ["left", "left", "right"]:
        await judge(client, project_id, headers, choice=choice)
        clock.advance(timedelta(seconds=1))
        await same()
    # Read: the newest 6 of more.
    assert (await summary(session, project_id, rater.id))[0] == 6
    assert (await reference(session, project_id, rater.id, 100))[0] > 6


async def same_lines_empty() -> list[tuple[str, int, int]]:
    return [(ln.key, 0, 0) for ln in choice_pattern_summary([])]
