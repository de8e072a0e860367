"""Curation actions over the API: each does what it says to exactly the selected pairs, a
repeat changes nothing, and an action that fails half-way leaves nothing behind."""

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.service import next_lease
from pickwise.judgments import service as judgments
from pickwise.judgments.schemas import JudgmentIn
from pickwise.models import Assignment, Pair, PairFlag, PairSlot, Project
from pickwise.review import actions_repository
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user
from tests.review.helpers import vote


async def act(client: AsyncClient, project: Project, headers: dict[str, str], **body: Any) -> Any:
    answer = await client.post(
        f"/api/v1/projects/{project.id}/pairs/actions", json=body, headers=headers
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def slots_of(session: AsyncSession, pair_id: int) -> list[str]:
    rows = await session.scalars(
        select(PairSlot.state).where(PairSlot.pair_id == pair_id).order_by(PairSlot.slot_no)
    )
    return list(rows)


async def test_exclude_and_include_a_filtered_selection(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, raters_per_pair=1)
    pairs = await make_pairs(session, project, 4)
    rater = await make_user(session)
    await vote(session, pairs[0], rater, "tie")
    await vote(session, pairs[1], rater, "a")
    headers = await bearer_headers(session, await make_user(session, role="admin"))

    done = await act(client, project, headers, action="exclude", filter={"tie": True})
    assert (done["selected"], done["changed"]) == (1, 1)
    assert (await act(client, project, headers, action="exclude", filter={"tie": True}))[
        "changed"
    ] == 0
    excluded = await session.scalars(select(Pair.id).where(Pair.excluded).order_by(Pair.id))
    assert list(excluded) == [pairs[0].id]
    listed = await client.get(
        f"/api/v1/projects/{project.id}/pairs", params={"status": "excluded"}, headers=headers
    )
    assert [row["pair_id"] for row in listed.json()["items"]] == [pairs[0].id]
    done = await act(client, project, headers, action="include", filter={})
    assert (done["selected"], done["changed"]) == (4, 1)


async def test_more_votes_open_slots_and_survive_a_lower_k(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, raters_per_pair=2)
    pairs = await make_pairs(session, project, 3, gold=1)
    rater = await make_user(session)
    await vote(session, pairs[0], rater, "a")
    headers = await bearer_headers(session, await make_user(session, role="admin"))

    done = await act(client, project, headers, action="request_votes", votes=4, filter={})
    assert (done["selected"], done["changed"]) == (3, 2)  # the gold pair has no slots
    assert await slots_of(session, pairs[0].id) == ["done", "open", "open", "open"]
    assert await slots_of(session, pairs[2].id) == []
    again = await act(client, project, headers, action="request_votes", votes=3, filter={})
    assert again["changed"] == 0  # 4 already asked for: fewer is not a change
    assert len(await slots_of(session, pairs[1].id)) == 4

    # k goes down to 1 and back up to 5: the pairs keep their 4 until k passes them.
    for k in (1, 5):
        answer = await client.patch(
            f"/api/v1/projects/{project.id}", json={"raters_per_pair": k}, headers=headers
        )
        assert answer.status_code == 200
        assert len(await slots_of(session, pairs[1].id)) == max(k, 4)


async def test_make_gold_closes_unfilled_slots_and_revokes_their_leases(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, raters_per_pair=3)
    (pair,) = await make_pairs(session, project, 1)
    voter, holder = await make_user(session), await make_user(session)
    for user in (voter, holder):
        await add_member(session, project, user)
    await vote(session, pair, voter, "b")
    lease = await next_lease(session, project, holder)
    assert lease is not None and lease.pair_id == pair.id
    headers = await bearer_headers(session, await make_user(session, role="admin"))

    done = await act(client, project, headers, action="make_gold", answer="b", pair_ids=[pair.id])
    assert done["changed"] == 1
    assert await slots_of(session, pair.id) == ["done"]
    refreshed = await session.scalar(
        select(Pair).where(Pair.id == pair.id).execution_options(populate_existing=True)
    )
    assert refreshed is not None and refreshed.gold_winner_id == pair.response_b_id
    held = await session.get(Assignment, lease.assignment_id, populate_existing=True)
    assert held is not None and held.status == "revoked"
    with pytest.raises(Exception, match="no longer needs"):
        await judgments.submit(session, lease.assignment_id, holder, JudgmentIn(choice="left"))
    repeat = await act(client, project, headers, action="make_gold", answer="b", pair_ids=[pair.id])
    assert repeat["changed"] == 0


async def test_resolve_flags_of_a_selection(client: AsyncClient, session: AsyncSession) -> None:
    project = await make_project(session)
    pairs = await make_pairs(session, project, 3)
    rater = await make_user(session)
    for pair in pairs[:2]:
        pair.status = "flagged"
        session.add(
            PairFlag(project_id=project.id, pair_id=pair.id, rater_id=rater.id, reason="harmful")
        )
    await session.flush()
    headers = await bearer_headers(session, await make_user(session, role="admin"))
    done = await act(
        client,
        project,
        headers,
        action="resolve_flags",
        resolution="removed",
        filter={"flagged": True},
    )
    assert (done["selected"], done["changed"]) == (2, 2)
    statuses = await session.scalars(
        select(Pair.status).order_by(Pair.id).execution_options(populate_existing=True)
    )
    assert list(statuses) == ["removed", "removed", "active"]
    open_flags = await session.scalar(
        select(func.count()).where(PairFlag.project_id == project.id, PairFlag.resolution.is_(None))
    )
    assert open_flags == 0
    again = await act(
        client, project, headers, action="resolve_flags", resolution="removed", filter={}
    )
    assert again["changed"] == 0


async def test_an_action_that_fails_half_way_leaves_nothing(
    app: FastAPI, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Making pairs gold closes their slots, then marks them gold: a failure between the
    two steps undoes the first."""
    project = await make_project(session, raters_per_pair=2)
    pairs = await make_pairs(session, project, 5)
    headers = await bearer_headers(session, await make_user(session, role="admin"))
    # Plain ids: the refused request rolls the session back, which expires loaded objects.
    project_id, slot_count = project.id, 2 * len(pairs)
    await session.commit()  # releases the test's savepoint only; the test is rolled back

    async def broken(*args: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(actions_repository, "make_gold", broken)
    async with AsyncClient(
        transport=ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
    ) as client:
        answer = await client.post(
            f"/api/v1/projects/{project_id}/pairs/actions",
            json={"action": "make_gold", "answer": "a", "filter": {}},
            headers=headers,
        )
    assert answer.status_code == 500
    slots = await session.scalar(select(func.count()).where(PairSlot.project_id == project_id))
    assert slots == slot_count
    gold = await session.scalar(
        select(func.count()).where(Pair.project_id == project_id, Pair.is_gold)
    )
    assert gold == 0


async def test_actions_name_what_is_missing(client: AsyncClient, session: AsyncSession) -> None:
    project = await make_project(session)
    headers = await bearer_headers(session, await make_user(session, role="admin"))
    url = f"/api/v1/projects/{project.id}/pairs/actions"
    await session.commit()  # a refused request rolls back to here, keeping the token
    for body, field in (
        ({"action": "request_votes", "filter": {}}, "votes"),
        ({"action": "make_gold", "pair_ids": [1]}, "answer"),
        ({"action": "exclude"}, "filter"),
        ({"action": "exclude", "filter": {}, "pair_ids": [1]}, "filter"),
        ({"action": "request_votes", "votes": 101, "filter": {}}, "votes"),
    ):
        answer = await client.post(url, json=body, headers=headers)
        assert answer.status_code == 422, body
        assert field in answer.json()["detail"], answer.json()
