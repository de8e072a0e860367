"""The summary's read of a rater's latest choices (`judgments.repository.latest_choices`):
the newest `limit` of their judgments in the project, newest first, with each pair's answers
as A and B, whatever the plan Postgres picks for the pair lookups."""

from datetime import timedelta

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core import clock
from pickwise.judgments import repository
from pickwise.models import Judgment, Pair
from tests.factories import add_member, make_pairs, make_project
from tests.judgments.test_changes import judge, rater_in


async def test_the_newest_choices_of_the_rater_in_the_project_newest_first(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session)
    project_id = project.id
    other_project = await make_project(session)
    other_id = other_project.id
    await make_pairs(session, project, 6)
    await make_pairs(session, other_project, 2)
    rater, headers = await rater_in(session, project_id)
    _, other_headers = await rater_in(session, project_id)
    choices = ["left", "right", "tie", "left", "both_bad"]
    for choice in choices:
        await judge(client, project_id, headers, choice=choice)
        clock.advance(timedelta(seconds=5))
    await judge(client, project_id, other_headers, choice="left")  # another rater's
    await add_member(session, other_project, rater)
    await judge(client, other_id, headers, choice="right")  # another project's

    rows = await repository.latest_choices(session, project_id, rater.id, 3)

    judged = (
        await session.execute(
            select(Judgment, Pair)
            .join(Pair, Pair.id == Judgment.pair_id)
            .where(Judgment.project_id == project_id, Judgment.rater_id == rater.id)
            .order_by(Judgment.submitted_at.desc(), Judgment.id.desc())
        )
    ).all()
    assert len(judged) == len(choices)
    assert rows == [
        (pair.response_a_id, pair.response_b_id, judgment.choice, judgment.left_side)
        for judgment, pair in judged[:3]
    ]
    everything = await repository.latest_choices(session, project_id, rater.id, 500)
    assert len(everything) == len(choices)
