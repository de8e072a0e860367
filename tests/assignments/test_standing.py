"""A rater removed from a project, deactivated, or whose project was closed: the lease they
hold ends at once (its slot goes back to the pool) and a choice, skip or flag they send for it
later is refused with nothing stored."""

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.standing import AccountDeactivated
from pickwise.judgments import service as judgments
from pickwise.judgments.schemas import JudgmentIn
from pickwise.models import Assignment, Judgment, Pair, PairFlag, PairSlot, Project, User
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user


class World:
    """A project (k = 1, one pair), an admin, and a rater holding the pair's only slot."""

    def __init__(self, project: Project, rater: User, other: User) -> None:
        self.project_id = project.id
        self.rater_id = rater.id
        self.other_id = other.id
        self.headers: dict[str, str] = {}
        self.other_headers: dict[str, str] = {}
        self.admin_headers: dict[str, str] = {}
        self.assignment_id = 0
        self.pair_id = 0


async def world(client: AsyncClient, session: AsyncSession, *, gold: bool = False) -> World:
    project = await make_project(session, raters_per_pair=1)
    await make_pairs(session, project, 1, gold=1 if gold else 0)
    if gold:
        # A gold pair is only shown while regular work remains.
        project.gold_rate = 1.0
        await make_pairs(session, project, 1)
    rater, other = await make_user(session), await make_user(session)
    for user in (rater, other):
        await add_member(session, project, user)
    found = World(project, rater, other)
    found.headers = await bearer_headers(session, rater)
    found.other_headers = await bearer_headers(session, other)
    found.admin_headers = await bearer_headers(session, await make_user(session, role="admin"))
    lease = (await client.get(f"/api/v1/projects/{project.id}/next", headers=found.headers)).json()
    found.assignment_id, found.pair_id = lease["assignment_id"], lease["pair_id"]
    # Only releases the test's savepoint: a refused request keeps the setup.
    await session.commit()
    return found


async def stored(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Judgment)) or 0)


async def assert_lease_ended(session: AsyncSession, w: World) -> None:
    assignment = await session.get(Assignment, w.assignment_id, populate_existing=True)
    assert assignment is not None and assignment.status == "revoked"
    slots = list(
        await session.scalars(
            select(PairSlot)
            .where(PairSlot.pair_id == w.pair_id)
            .execution_options(populate_existing=True)
        )
    )
    assert all(slot.state == "open" and slot.assignment_id is None for slot in slots)


async def assert_other_member_gets_the_pair(client: AsyncClient, w: World) -> None:
    """The slot went back to the pool: another member gets the pair now, not after expiry."""
    lease = await client.get(f"/api/v1/projects/{w.project_id}/next", headers=w.other_headers)
    assert lease.json()["pair_id"] == w.pair_id


async def send_everything(client: AsyncClient, w: World) -> list[tuple[int, str]]:
    """Submit, skip and flag for the lease the rater held: (status, error) of each."""
    base = f"/api/v1/assignments/{w.assignment_id}"
    answers = [
        await client.post(f"{base}/judgment", json={"choice": "left"}, headers=w.headers),
        await client.post(f"{base}/skip", json={"reason": "cant_judge"}, headers=w.headers),
        await client.post(f"{base}/flag", json={"reason": "other"}, headers=w.headers),
    ]
    return [(answer.status_code, answer.json()["error"]) for answer in answers]


async def test_removed_member_cannot_submit_skip_or_flag_the_lease_they_held(
    client: AsyncClient, session: AsyncSession
) -> None:
    w = await world(client, session)

    removed = await client.delete(
        f"/api/v1/projects/{w.project_id}/members/{w.rater_id}", headers=w.admin_headers
    )

    assert removed.status_code == 204
    await assert_lease_ended(session, w)
    assert await send_everything(client, w) == [(403, "NotAMember")] * 3
    assert await stored(session) == 0
    pair = await session.get(Pair, w.pair_id, populate_existing=True)
    assert pair is not None and pair.status == "active"
    assert await session.scalar(select(func.count()).select_from(PairFlag)) == 0
    # The slot went back to the pool: another member gets the pair now, not after expiry.
    await assert_other_member_gets_the_pair(client, w)


async def test_removed_member_is_refused_even_if_the_lease_was_never_ended(
    client: AsyncClient, session: AsyncSession
) -> None:
    # E.g. removed before this release: the membership itself is checked at submit.
    w = await world(client, session)
    from pickwise.models import ProjectMember

    member = await session.get(ProjectMember, (w.project_id, w.rater_id))
    await session.delete(member)
    await session.commit()

    assert await send_everything(client, w) == [(403, "NotAMember")] * 3
    assert await stored(session) == 0


async def test_deactivated_rater_is_refused_and_their_lease_ends(
    client: AsyncClient, session: AsyncSession
) -> None:
    w = await world(client, session)

    answer = await client.patch(
        f"/api/v1/users/{w.rater_id}", json={"is_active": False}, headers=w.admin_headers
    )

    assert answer.status_code == 200 and answer.json()["is_active"] is False
    await assert_lease_ended(session, w)
    # Their API token no longer works at all ...
    statuses = [status for status, _ in await send_everything(client, w)]
    assert statuses == [401, 401, 401]
    # ... and the service refuses them too (a request authenticated just before).
    rater = await session.get(User, w.rater_id, populate_existing=True)
    assert rater is not None
    with pytest.raises(AccountDeactivated):
        await judgments.submit(session, w.assignment_id, rater, JudgmentIn(choice="left"))
    assert await stored(session) == 0
    await assert_other_member_gets_the_pair(client, w)


async def test_closed_project_refuses_choices_and_ends_every_lease(
    client: AsyncClient, session: AsyncSession
) -> None:
    w = await world(client, session)

    closed = await client.patch(
        f"/api/v1/projects/{w.project_id}", json={"is_archived": True}, headers=w.admin_headers
    )

    assert closed.status_code == 200 and closed.json()["is_archived"] is True
    await assert_lease_ended(session, w)
    assert await send_everything(client, w) == [(409, "ProjectClosed")] * 3
    assert await stored(session) == 0
    refused = await client.get(f"/api/v1/projects/{w.project_id}/next", headers=w.other_headers)
    assert refused.status_code == 409 and refused.json()["error"] == "ProjectClosed"
    # Opened again, the pair is back in the pool.
    reopened = await client.patch(
        f"/api/v1/projects/{w.project_id}", json={"is_archived": False}, headers=w.admin_headers
    )
    assert reopened.status_code == 200
    await assert_other_member_gets_the_pair(client, w)


async def test_gold_lease_of_a_removed_member_ends_too(
    client: AsyncClient, session: AsyncSession
) -> None:
    w = await world(client, session, gold=True)
    held = await session.get(Assignment, w.assignment_id)
    assert held is not None and held.is_gold and held.slot_id is None

    await client.delete(
        f"/api/v1/projects/{w.project_id}/members/{w.rater_id}", headers=w.admin_headers
    )

    await session.refresh(held)
    assert held.status == "revoked"
    assert await send_everything(client, w) == [(403, "NotAMember")] * 3
    assert await stored(session) == 0


async def test_members_who_stay_keep_their_leases(
    client: AsyncClient, session: AsyncSession
) -> None:
    w = await world(client, session)

    await client.delete(
        f"/api/v1/projects/{w.project_id}/members/{w.other_id}", headers=w.admin_headers
    )

    answer = await client.post(
        f"/api/v1/assignments/{w.assignment_id}/judgment",
        json={"choice": "left"},
        headers=w.headers,
    )
    assert answer.status_code == 201
    assert await stored(session) == 1
