"""Whether the rater's last decision may still change (`changes.changeable`), which the rating
page asks on every page it does not know it for (the page after each summary, the change
page) and the API's last-decision: one statement, with the rules of the change itself."""

from datetime import timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core import clock
from pickwise.judgments import changes
from pickwise.models import Assignment, Judgment, Project, User
from tests.factories import make_pairs, make_project
from tests.judgments.test_changes import change, judge, lease, rater_in, skip


async def found(
    session: AsyncSession, project_id: int, rater: User, statements: list[str]
) -> tuple[int | None, int | None, str | None]:
    """(assignment id, judgment id, until) of `changeable`, checking it reads in one
    statement (none when the project allows no change)."""
    project = await session.get(Project, project_id)
    assert project is not None
    statements.clear()
    result = await changes.changeable(session, project, rater)
    allows = project.undo_seconds > 0
    assert len(statements) == (1 if allows else 0), "\n".join(statements)
    if result is None:
        return None, None, None
    judgment_id = None if result.judgment is None else result.judgment.id
    return result.assignment.id, judgment_id, result.until.isoformat()


async def judgment_id_of(session: AsyncSession, assignment_id: int) -> int:
    judgment = await session.scalar(
        select(Judgment.id).where(Judgment.assignment_id == assignment_id)
    )
    assert judgment is not None
    return judgment


async def test_a_choice_and_a_skip_may_change_in_their_window_a_flag_never(
    client: AsyncClient, session: AsyncSession, statements: list[str]
) -> None:
    project = await make_project(session, undo_seconds=60)
    project_id = project.id
    await make_pairs(session, project, 5)
    rater, headers = await rater_in(session, project_id)
    assert await found(session, project_id, rater, statements) == (None, None, None)
    clock.freeze()
    until = (clock.utcnow() + timedelta(seconds=60)).isoformat()

    first = await judge(client, project_id, headers, choice="left")
    judged = await judgment_id_of(session, first["assignment_id"])
    assert await found(session, project_id, rater, statements) == (
        first["assignment_id"],
        judged,
        until,
    )
    # The loaded judgment is the row as it is now (what the change page shows again).
    again = await changes.changeable(session, project, rater)
    assert again is not None and again.judgment is not None
    assert changes.shown_choice(again.judgment) == "left"

    # Withdrawn into a skip: a skip, with no judgment, and it may change again.
    assert (
        await change(client, first["assignment_id"], headers, "skip", reason="cant_judge")
    ).is_success
    assert await found(session, project_id, rater, statements) == (
        first["assignment_id"],
        None,
        until,
    )

    skipped = await skip(client, project_id, headers)
    assert await found(session, project_id, rater, statements) == (
        skipped["assignment_id"],
        None,
        until,
    )
    # A pair leased but not decided is not the last decision.
    await lease(client, project_id, headers)
    assert (await found(session, project_id, rater, statements))[0] == skipped["assignment_id"]

    clock.advance(timedelta(seconds=60))
    assert await found(session, project_id, rater, statements) == (None, None, None)

    flagged = await lease(client, project_id, headers)
    answer = await client.post(
        f"/api/v1/assignments/{flagged['assignment_id']}/flag",
        json={"reason": "harmful"},
        headers=headers,
    )
    assert answer.is_success, answer.text
    assert await found(session, project_id, rater, statements) == (None, None, None)


async def test_only_the_raters_own_last_decision_in_the_project(
    client: AsyncClient, session: AsyncSession, statements: list[str]
) -> None:
    project = await make_project(session)
    other_project = await make_project(session)
    project_id, other_id = project.id, other_project.id
    await make_pairs(session, project, 3)
    await make_pairs(session, other_project, 3)
    rater, headers = await rater_in(session, project_id)
    other, other_headers = await rater_in(session, project_id)
    mine = await judge(client, project_id, headers, choice="tie")
    await judge(client, project_id, other_headers, choice="both_bad")
    assert (await found(session, project_id, rater, statements))[0] == mine["assignment_id"]
    assert (await found(session, other_id, rater, statements))[0] is None
    assert (await found(session, project_id, other, statements))[0] != mine["assignment_id"]


async def test_none_in_a_project_without_undo_and_nothing_read(
    client: AsyncClient, session: AsyncSession, statements: list[str]
) -> None:
    project = await make_project(session, undo_seconds=0)
    project_id = project.id
    await make_pairs(session, project, 1)
    rater, headers = await rater_in(session, project_id)
    await judge(client, project_id, headers, choice="left")
    assert await found(session, project_id, rater, statements) == (None, None, None)


@pytest.mark.parametrize(
    ("feedback", "picks_expected", "may_change"),
    [(True, False, False), (True, True, True), (False, False, True)],
)
async def test_a_check_pair_stays_only_when_its_expected_answer_was_shown(
    client: AsyncClient,
    session: AsyncSession,
    statements: list[str],
    feedback: bool,
    picks_expected: bool,
    may_change: bool,
) -> None:
    project = await make_project(session, gold_rate=1.0, gold_feedback=feedback)
    project_id = project.id
    await make_pairs(session, project, 2, gold=1)
    rater, headers = await rater_in(session, project_id)
    gold = await lease(client, project_id, headers)
    row = await session.scalar(select(Assignment).where(Assignment.id == gold["assignment_id"]))
    assert row is not None and row.is_gold
    # Response A is the gold pair's expected answer.
    expected = "left" if row.left_side == "a" else "right"
    other = "right" if expected == "left" else "left"
    answer = await client.post(
        f"/api/v1/assignments/{gold['assignment_id']}/judgment",
        json={"choice": expected if picks_expected else other},
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    assert bool(answer.json()["gold_feedback"]) == (feedback and not picks_expected)
    assignment_id, judgment_id, _ = await found(session, project_id, rater, statements)
    assert (assignment_id == gold["assignment_id"]) == may_change
    assert (judgment_id is not None) == may_change
    # The change itself follows the same rule.
    changed = await change(client, gold["assignment_id"], headers, choice="tie")
    assert changed.is_success == may_change, changed.text
