"""Changing the overlap settings mid-project: open pairs follow the new policy, settled pairs
keep their votes, a lease beyond a lowered maximum is revoked; the form and the API refuse a
maximum below the minimum."""

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import Pair, Project, User
from tests.factories import bearer_headers, make_pairs, make_project, make_user
from tests.overlap.crowd import Crowd, Rater, slots_of

A, B = "a", "b"
DONE, OPEN, LEASED = "done", "open", "leased"


async def patch(
    client: AsyncClient, admin: dict[str, str], project: Project, **settings: object
) -> None:
    answer = await client.patch(f"/api/v1/projects/{project.id}", json=settings, headers=admin)
    assert answer.status_code == 200, answer.text


async def admin_headers(session: AsyncSession) -> dict[str, str]:
    admin: User = await make_user(session, role="admin")
    return await bearer_headers(session, admin)


async def vote_on(crowd: Crowd, rater: Rater, pair: Pair, choice: str) -> None:
    assert await crowd.vote(rater, choice) == pair.id


async def test_switching_to_adaptive_applies_to_open_pairs_only(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, raters_per_pair=3, pair_order="file")
    # Raters take the first pair with a slot for them, so the votes go in pair order.
    settled, split, agreed, started, untouched = await make_pairs(session, project, 5)
    crowd = Crowd(client, session, project)
    r1, r2, r3 = await crowd.join(3)
    for rater in (r1, r2, r3):
        await vote_on(crowd, rater, settled, A)  # k = 3 reached
    await vote_on(crowd, r1, split, A)
    await vote_on(crowd, r2, split, B)
    held = await crowd.lease(r3)  # the third vote on `split`, in flight
    assert held is not None and held["pair_id"] == split.id
    await vote_on(crowd, r1, agreed, A)
    await vote_on(crowd, r2, agreed, A)
    await vote_on(crowd, r1, started, A)
    assert await slots_of(session, agreed.id) == [DONE, DONE, OPEN]

    await patch(client, await admin_headers(session), project, overlap_mode="adaptive")

    assert await slots_of(session, settled.id) == [DONE] * 3  # settled: kept
    assert await slots_of(session, split.id) == [DONE, DONE, LEASED]  # waits for the vote
    assert await slots_of(session, agreed.id) == [DONE, DONE]  # 2 of 2: settled now
    assert await slots_of(session, started.id) == [DONE, OPEN]  # down to the minimum
    assert await slots_of(session, untouched.id) == [OPEN, OPEN]
    assert (await crowd.submit(r3, held, A)).status_code == 201
    assert await slots_of(session, split.id) == [DONE, DONE, DONE, OPEN]  # 2 of 3: one more


async def test_a_lower_maximum_revokes_a_lease_beyond_it(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, raters_per_pair=3, overlap_mode="adaptive")
    [pair] = await make_pairs(session, project, 1)
    crowd = Crowd(client, session, project)
    r1, r2, r3, r4 = await crowd.join(4)
    for rater, choice in ((r1, A), (r2, B), (r3, A)):
        await vote_on(crowd, rater, pair, choice)
    held = await crowd.lease(r4)
    assert held is not None
    await patch(client, await admin_headers(session), project, overlap_max=3)
    assert await slots_of(session, pair.id) == [DONE] * 3
    late = await crowd.submit(r4, held, B)
    assert late.status_code == 409
    assert "no longer needs" in late.json()["detail"]


async def test_a_higher_minimum_reaches_open_pairs_but_not_settled_ones(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(
        session, raters_per_pair=3, overlap_mode="adaptive", pair_order="file"
    )
    settled, started = await make_pairs(session, project, 2)
    crowd = Crowd(client, session, project)
    r1, r2, r3 = await crowd.join(3)
    await vote_on(crowd, r1, settled, A)
    await vote_on(crowd, r2, settled, A)
    await vote_on(crowd, r3, started, B)
    await patch(client, await admin_headers(session), project, overlap_min=3)
    assert await slots_of(session, settled.id) == [DONE, DONE]
    assert await slots_of(session, started.id) == [DONE, OPEN, OPEN]


async def test_switching_back_to_fixed_gives_open_pairs_k(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(
        session, raters_per_pair=4, overlap_mode="adaptive", pair_order="file"
    )
    settled, started = await make_pairs(session, project, 2)
    crowd = Crowd(client, session, project)
    r1, r2, r3 = await crowd.join(3)
    await vote_on(crowd, r1, settled, A)
    await vote_on(crowd, r2, settled, A)
    await vote_on(crowd, r3, started, B)
    await patch(client, await admin_headers(session), project, overlap_mode="fixed")
    assert await slots_of(session, settled.id) == [DONE, DONE]
    assert await slots_of(session, started.id) == [DONE, OPEN, OPEN, OPEN]


async def test_changing_k_of_an_adaptive_project_changes_no_slot(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, raters_per_pair=3, overlap_mode="adaptive")
    [pair] = await make_pairs(session, project, 1)
    await patch(client, await admin_headers(session), project, raters_per_pair=7)
    assert await slots_of(session, pair.id) == [OPEN, OPEN]


async def test_the_api_refuses_a_maximum_below_the_minimum(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, overlap_mode="adaptive")
    headers = await admin_headers(session)
    await session.commit()  # a refused request rolls back its own work only
    url = f"/api/v1/projects/{project.id}"
    answer = await client.patch(url, json={"overlap_max": 1}, headers=headers)
    assert answer.status_code == 422
    assert answer.json()["field"] == "overlap_max"
    both = await client.patch(url, json={"overlap_min": 4, "overlap_max": 3}, headers=headers)
    assert both.status_code == 422
    assert "overlap_max" in both.text
    created = await client.post(
        "/api/v1/projects",
        json={"slug": "adaptive-x", "name": "X", "overlap_min": 6, "overlap_max": 5},
        headers=headers,
    )
    assert created.status_code == 422
    assert "overlap_max" in created.text
