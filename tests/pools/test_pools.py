"""Rater pools: entry links, participant accounts, the quota in the rater loop, completion."""

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.service import next_lease
from pickwise.auth import service as auth_service
from pickwise.auth.deps import SESSION_COOKIE
from pickwise.judgments import service as judgments
from pickwise.judgments.schemas import JudgmentIn
from pickwise.models import PoolParticipant, Project, ProjectMember, User
from pickwise.pools.quota import quota_reached
from pickwise.pools.service import participant_email
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user


async def make_pool(
    client: AsyncClient, app: FastAPI, headers: dict[str, str], project: Project, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        app.url_path_for("create_pool", project_id=str(project.id)),
        json={"name": "Prolific wave 1", "quota": 2, **body},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def join_path(link: dict[str, Any]) -> str:
    """The path part of the entry URL (the test client has its own base URL)."""
    return "/join/" + str(link["entry_url"]).rsplit("/join/", 1)[1]


async def judge(session: AsyncSession, project: Project, user: User) -> bool:
    assignment = await next_lease(session, project, user)
    if assignment is None:
        return False
    await judgments.submit(session, assignment.assignment_id, user, JudgmentIn(choice="left"))
    return True


async def test_entry_link_makes_a_rater_and_logs_them_in(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    project = await make_project(session)
    admin = await make_user(session, role="admin")
    link = await make_pool(client, app, await bearer_headers(session, admin), project)
    assert link["prolific_url"] == link["entry_url"] + "?PROLIFIC_PID={{%PROLIFIC_PID%}}"
    assert link["pool"]["token_prefix"] in link["entry_url"]

    response = await client.get(
        join_path(link), params={"PROLIFIC_PID": "5f1c9e", "STUDY_ID": "s1"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/rate/{project.id}"
    assert SESSION_COOKIE in response.cookies

    user = await session.scalar(
        select(User).where(User.email == participant_email(link["pool"]["id"], "5f1c9e"))
    )
    assert user is not None and user.role == "rater" and user.password_hash is None
    assert user.display_name == "5f1c9e"
    assert await session.get(ProjectMember, (project.id, user.id)) is not None
    # The cookie is a rater session of a member of the project.
    work = await client.get(app.url_path_for("next_pair", project_id=str(project.id)))
    assert work.status_code == 200 and work.json()["assignment_id"] is None

    # Coming back (same browser or another): the same account, never a second one.
    client.cookies.clear()
    again = await client.get(join_path(link), params={"participant_id": "5f1c9e"})
    assert again.status_code == 303
    count = await session.scalar(select(func.count()).select_from(PoolParticipant))
    assert count == 1


async def test_bad_links_and_ids_get_clear_pages(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    project = await make_project(session)
    admin = await make_user(session, role="admin")
    headers = await bearer_headers(session, admin)
    project_id = str(project.id)  # Error answers roll back, which expires loaded objects.
    link = await make_pool(client, app, headers, project, max_participants=1)
    path = join_path(link)

    missing = await client.get(path)
    assert missing.status_code == 422 and "participant id" in missing.text
    bad = await client.get(path, params={"PROLIFIC_PID": "<script>"})
    assert bad.status_code == 422 and "<script>" not in bad.text
    assert (await client.get("/join/not-a-token", params={"PROLIFIC_PID": "a"})).status_code == 404

    assert (await client.get(path, params={"PROLIFIC_PID": "first"})).status_code == 303
    client.cookies.clear()
    full = await client.get(path, params={"PROLIFIC_PID": "second"})
    assert full.status_code == 403 and "all the participants" in full.text
    # The limit is on new participants: the first one may come back.
    assert (await client.get(path, params={"PROLIFIC_PID": "first"})).status_code == 303

    client.cookies.clear()
    closed = await client.patch(
        app.url_path_for("update_pool", project_id=project_id, pool_id=str(link["pool"]["id"])),
        json={"is_active": False},
        headers=headers,
    )
    assert closed.status_code == 200 and closed.json()["is_active"] is False
    assert (await client.get(path, params={"PROLIFIC_PID": "first"})).status_code == 403


async def test_someone_else_logged_in_is_not_switched_silently(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    project = await make_project(session)
    admin = await make_user(session, role="admin")
    link = await make_pool(client, app, await bearer_headers(session, admin), project)
    token, _ = await auth_service.start_session(session, admin)
    client.cookies.set(SESSION_COOKIE, token)
    response = await client.get(join_path(link), params={"PROLIFIC_PID": "p1"})
    assert response.status_code == 409
    assert "Log out first" in response.text
    assert await session.scalar(select(func.count()).select_from(PoolParticipant)) == 0


async def test_quota_stops_the_rater_loop_and_shows_the_completion_code(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    project = await make_project(session, raters_per_pair=2)
    await make_pairs(session, project, 5)
    admin = await make_user(session, role="admin")
    link = await make_pool(
        client,
        app,
        await bearer_headers(session, admin),
        project,
        quota=2,
        completion_code="C0DE42",
        completion_url="https://app.prolific.com/submissions/complete?cc=C0DE42",
    )
    assert (await client.get(join_path(link), params={"PROLIFIC_PID": "p1"})).status_code == 303
    participant = await session.scalar(select(User).where(User.display_name == "p1"))
    assert participant is not None
    done_path = app.url_path_for("participant_done", project_id=str(project.id))
    # The participant's completion page, before any judgment: their progress, no code yet.
    halfway = await client.get(done_path)
    assert halfway.status_code == 200 and "0 of 2" in halfway.text
    assert "C0DE42" not in halfway.text

    assert await judge(session, project, participant)
    assert not await quota_reached(session, project, participant)
    assert await judge(session, project, participant)
    assert await quota_reached(session, project, participant)
    assert await next_lease(session, project, participant) is None

    page = await client.get(done_path)
    assert page.status_code == 200
    assert 'id="completion-code">C0DE42<' in page.text
    assert "https://app.prolific.com/submissions/complete?cc=C0DE42" in page.text
    # Back through the link after finishing: straight to the completion page.
    client.cookies.clear()
    back = await client.get(join_path(link), params={"PROLIFIC_PID": "p1"})
    assert back.headers["location"] == done_path

    # Raters who did not come through a pool have no quota.
    regular = await make_user(session)
    await add_member(session, project, regular)
    for _ in range(3):
        assert await judge(session, project, regular)
    assert not await quota_reached(session, project, regular)
    # Nor a completion page (the refusal rolls back the test's objects: keep this last).
    not_a_participant = await client.get(done_path, headers=await bearer_headers(session, regular))
    assert not_a_participant.status_code == 404


async def test_admin_sees_pools_and_participants_and_can_rotate_the_link(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    project = await make_project(session)
    await make_pairs(session, project, 3)
    admin = await make_user(session, role="admin")
    headers = await bearer_headers(session, admin)
    project_id = str(project.id)  # Error answers roll back, which expires loaded objects.
    link = await make_pool(client, app, headers, project, quota=1)
    pool_id = str(link["pool"]["id"])
    assert (await client.get(join_path(link), params={"PROLIFIC_PID": "p1"})).status_code == 303
    participant = await session.scalar(select(User).where(User.display_name == "p1"))
    assert participant is not None
    assert await judge(session, project, participant)
    await client.get(app.url_path_for("participant_done", project_id=str(project.id)))

    pools = await client.get(
        app.url_path_for("list_pools", project_id=str(project.id)), headers=headers
    )
    assert [(p["participants"], p["completed"]) for p in pools.json()] == [(1, 1)]
    rows = await client.get(
        app.url_path_for("list_participants", project_id=str(project.id), pool_id=pool_id),
        headers=headers,
    )
    [row] = rows.json()
    assert row["external_id"] == "p1" and row["judgments"] == 1 and row["quota"] == 1
    assert row["completed_at"] is not None and row["excluded"] is False

    rotated = await client.post(
        app.url_path_for("rotate_link", project_id=project_id, pool_id=pool_id),
        headers=headers,
    )
    assert rotated.status_code == 200
    client.cookies.clear()
    old = await client.get(join_path(link), params={"PROLIFIC_PID": "p1"})
    assert old.status_code == 404
    new = await client.get(join_path(rotated.json()), params={"PROLIFIC_PID": "p1"})
    assert new.status_code == 303

    blank = await client.post(
        app.url_path_for("create_pool", project_id=project_id),
        json={"name": "   ", "quota": 5},
        headers=headers,
    )
    assert blank.status_code == 422 and "name" in blank.json()["detail"]

    rater = await make_user(session)
    refused = await client.get(
        app.url_path_for("list_pools", project_id=project_id),
        headers=await bearer_headers(session, rater),
    )
    assert refused.status_code == 403


async def test_quota_also_stops_gold_pairs(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    # gold_rate 1: every next pair tries a gold pair first, a path that checks the quota itself
    # (the regular claim checks it inside its statement).
    project = await make_project(session, raters_per_pair=2, gold_rate=1.0)
    await make_pairs(session, project, 6, gold=3)
    admin = await make_user(session, role="admin")
    link = await make_pool(client, app, await bearer_headers(session, admin), project, quota=1)
    assert (await client.get(join_path(link), params={"PROLIFIC_PID": "g1"})).status_code == 303
    participant = await session.scalar(select(User).where(User.display_name == "g1"))
    assert participant is not None

    first = await next_lease(session, project, participant)
    assert first is not None and first.is_gold
    await judgments.submit(session, first.assignment_id, participant, JudgmentIn(choice="left"))
    assert await quota_reached(session, project, participant)
    assert await next_lease(session, project, participant) is None
