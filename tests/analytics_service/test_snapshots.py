"""Analytics are computed once per change of what they read and served from the snapshot:
same JSON as computed, recomputed when a vote, an exclusion, a flag or a batch comes in, and
not otherwise."""

from datetime import datetime
from typing import Any

from httpx import AsyncClient
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.analytics import service
from pickwise.models import (
    AnalyticsSnapshot,
    Judgment,
    Pair,
    Project,
    ProjectMember,
    ProjectRaterExclusion,
    ReplacedDecision,
    User,
)
from tests.analytics_service.builders import Answer, Vote, add_votes, make_model_pairs
from tests.analytics_service.helpers import Setup, crowd_project


async def computed_at(session: AsyncSession, project_id: int) -> datetime | None:
    return await session.scalar(
        select(AnalyticsSnapshot.computed_at)
        .where(AnalyticsSnapshot.project_id == project_id, AnalyticsSnapshot.key == "report")
        .execution_options(populate_existing=True)
    )


async def leaderboard(client: AsyncClient, setup: Setup, **query: Any) -> dict[str, Any]:
    response = await client.get(setup.url("leaderboard"), headers=setup.admin_headers, params=query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_answers_are_the_computed_json_plus_when(
    client: AsyncClient, session: AsyncSession
) -> None:
    setup = await crowd_project(client, session)
    project = await session.get(Project, setup.project_id)
    assert project is not None
    connection = await session.connection()
    expected = {
        "leaderboard": await service.leaderboard(connection, project.id),
        "raters": await service.raters(connection, project),
        "agreement": await service.agreement(connection, project.id),
        "preferences": await service.preferences(connection, project.id),
        "progress": await service.progress(connection, project),
        "timeline": await service.timeline(connection, project.id),
    }
    for section, model in expected.items():
        for _ in range(2):  # computed, then from the snapshot
            response = await client.get(setup.url(section), headers=setup.admin_headers)
            body = response.json()
            snapshot = body.pop("snapshot")
            assert body == model.model_dump(mode="json"), section
            assert set(snapshot) == {
                "computed_at",
                "compute_seconds",
                "votes_since",
                "fresh",
                "refreshing",
            }
            assert snapshot["fresh"] is True and snapshot["votes_since"] == 0


async def test_computed_once_until_something_it_reads_changes(
    client: AsyncClient, session: AsyncSession
) -> None:
    setup = await crowd_project(client, session)
    first = await leaderboard(client, setup)
    stamp = await computed_at(session, setup.project_id)
    assert stamp is not None

    # Reading again, through any section or the dashboard's report, computes nothing.
    await client.get(setup.url("raters"), headers=setup.admin_headers)
    again = await leaderboard(client, setup)
    assert again["snapshot"]["computed_at"] == first["snapshot"]["computed_at"]
    assert await computed_at(session, setup.project_id) == stamp

    # Each change of an input is seen and recomputed (a small project: in the request).
    changes = [
        update(Pair)
        .where(Pair.id == setup.crowd.pairs[0].id)
        .values(status="removed"),  # a pair out of the queue
        insert(ProjectRaterExclusion).values(
            project_id=setup.project_id, user_id=setup.left_clicker_id
        ),  # an exclusion
        delete(ProjectMember).where(
            ProjectMember.user_id == setup.left_clicker_id
        ),  # the excluded rater removed (still excluded)
        delete(ProjectRaterExclusion).where(
            ProjectRaterExclusion.user_id == setup.left_clicker_id
        ),  # the former member's exclusion lifted
        update(Project)
        .where(Project.id == setup.project_id)
        .values(quality_rules={"min_median_seconds": 3}),  # the quality rules
    ]
    for change in changes:
        await session.execute(change)
        await session.commit()
        answer = await leaderboard(client, setup)
        assert answer["snapshot"]["fresh"] is True
        assert datetime.fromisoformat(answer["snapshot"]["computed_at"]) > stamp, change
        stamp = await computed_at(session, setup.project_id)


async def test_a_new_vote_makes_it_recompute_and_count_the_vote(
    client: AsyncClient, session: AsyncSession
) -> None:
    setup = await crowd_project(client, session)
    before = await leaderboard(client, setup)
    project = await session.get(Project, setup.project_id)
    assert project is not None
    [pair] = await make_model_pairs(
        session, project, [(Answer("alpha", "Yes."), Answer("delta", "No."))], filename="new"
    )
    await add_votes(session, [Vote(pair, await admin_of(session), "a")])
    await session.commit()

    after = await leaderboard(client, setup)

    assert after["votes"] == before["votes"] + 1
    assert after["snapshot"]["computed_at"] > before["snapshot"]["computed_at"]


async def test_other_parameters_are_kept_under_their_own_key(
    client: AsyncClient, session: AsyncSession
) -> None:
    setup = await crowd_project(client, session)
    default = await leaderboard(client, setup)
    other = await leaderboard(client, setup, bootstrap_rounds=150, seed=3)
    assert other["bootstrap_rounds"] == 150 and default["bootstrap_rounds"] == 200
    keys = set(
        await session.scalars(
            select(AnalyticsSnapshot.key).where(AnalyticsSnapshot.project_id == setup.project_id)
        )
    )
    assert keys == {"report", "leaderboard?bootstrap_rounds=150&seed=3"}
    again = await leaderboard(client, setup, bootstrap_rounds=150, seed=3)
    assert again["snapshot"]["computed_at"] == other["snapshot"]["computed_at"]


async def test_a_vote_that_commits_late_with_a_lower_id_is_still_noticed(
    client: AsyncClient, session: AsyncSession
) -> None:
    # Ids are drawn before commit: a submit still in flight when the snapshot was read may
    # commit afterwards with an id below the newest one the snapshot counted.
    setup = await crowd_project(client, session)
    late_id = await session.scalar(
        text("SELECT min(id) FROM judgments WHERE project_id = :p AND NOT is_gold").bindparams(
            p=setup.project_id
        )
    )
    await session.execute(
        text(
            "CREATE TEMP TABLE late ON COMMIT DROP AS SELECT * FROM judgments WHERE id = :id"
        ).bindparams(id=late_id)
    )
    await session.execute(text("DELETE FROM judgments WHERE id = :id").bindparams(id=late_id))
    before = await leaderboard(client, setup)

    await session.execute(text("INSERT INTO judgments SELECT * FROM late"))
    after = await leaderboard(client, setup)

    assert after["votes"] == before["votes"] + 1
    assert after["snapshot"]["computed_at"] > before["snapshot"]["computed_at"]


async def admin_of(session: AsyncSession) -> User:
    admin = await session.scalar(select(User).where(User.role == "admin"))
    assert admin is not None
    return admin


async def test_a_changed_choice_makes_it_recompute(
    client: AsyncClient, session: AsyncSession
) -> None:
    setup = await crowd_project(client, session)
    before = await leaderboard(client, setup)
    # What judgments.changes does: the old choice kept, the judgment turned around in place
    # (no new judgment id, so only the history tells that something changed).
    judgment = await session.scalar(
        select(Judgment).where(Judgment.project_id == setup.project_id, Judgment.choice == "a")
    )
    assert judgment is not None
    session.add(
        ReplacedDecision(
            project_id=judgment.project_id,
            pair_id=judgment.pair_id,
            assignment_id=judgment.assignment_id,
            rater_id=judgment.rater_id,
            kind="judgment",
            choice=judgment.choice,
            criteria={},
            left_side=judgment.left_side,
            decided_at=judgment.submitted_at,
            replaced_at=judgment.submitted_at,
        )
    )
    judgment.choice = "b"
    await session.commit()

    after = await leaderboard(client, setup)

    assert after["snapshot"]["computed_at"] > before["snapshot"]["computed_at"]
    assert after["votes"] == before["votes"]
