"""More votes asked for on adaptive pairs (the review's "request votes", issue 17): the pair
gets at least that many raters, the stopping rule still decides beyond them, and the number
asked for raises the maximum too."""

from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import Project
from tests.factories import bearer_headers, make_user
from tests.overlap.crowd import one_pair, slots_of

A, B = "a", "b"
DONE, OPEN = "done", "open"


async def request_votes(
    client: AsyncClient, session: AsyncSession, project: Project, pair_id: int, votes: int
) -> dict[str, Any]:
    admin = await bearer_headers(session, await make_user(session, role="admin"))
    answer = await client.post(
        f"/api/v1/projects/{project.id}/pairs/actions",
        json={"action": "request_votes", "votes": votes, "pair_ids": [pair_id]},
        headers=admin,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_a_settled_pair_asked_for_three_votes_goes_on_by_the_rule(
    client: AsyncClient, session: AsyncSession
) -> None:
    project, pair, crowd, raters = await one_pair(client, session, 5)
    await crowd.vote(raters[0], A)
    await crowd.vote(raters[1], A)
    assert await slots_of(session, pair.id) == [DONE, DONE]  # settled: 2 of 2
    await request_votes(client, session, project, pair.id, 3)
    assert await slots_of(session, pair.id) == [DONE, DONE, OPEN]
    await crowd.vote(raters[2], B)  # a, a, b: not settled, so one more
    assert await slots_of(session, pair.id) == [DONE, DONE, DONE, OPEN]
    await crowd.vote(raters[3], A)  # 3 of 4
    assert await slots_of(session, pair.id) == [DONE] * 4
    assert await crowd.lease(raters[4]) is None


async def test_votes_asked_for_beyond_the_maximum_raise_it(
    client: AsyncClient, session: AsyncSession
) -> None:
    project, pair, crowd, raters = await one_pair(client, session, 7, overlap_max=3)
    for rater in raters[:2]:
        await crowd.vote(rater, A)
    await request_votes(client, session, project, pair.id, 6)
    assert await slots_of(session, pair.id) == [DONE, DONE] + [OPEN] * 4
    # A change of policy (or of a vote) decides the pair again: the six asked for stay.
    admin = await bearer_headers(session, await make_user(session, role="admin"))
    changed = await client.patch(
        f"/api/v1/projects/{project.id}", json={"overlap_stop_share": 0.6}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    assert await slots_of(session, pair.id) == [DONE, DONE] + [OPEN] * 4
    for rater, choice in zip(raters[2:6], (B, B, B, A), strict=True):
        await crowd.vote(rater, choice)
    # a, a, b, b, b, a: split, but six is now the maximum (it was 3): no seventh rater.
    assert await slots_of(session, pair.id) == [DONE] * 6
    assert await crowd.lease(raters[6]) is None


async def test_votes_asked_for_on_an_open_pair_wait_for_its_rule(
    client: AsyncClient, session: AsyncSession
) -> None:
    project, pair, crowd, raters = await one_pair(client, session, 4)
    await crowd.vote(raters[0], A)
    await crowd.vote(raters[1], B)
    assert await slots_of(session, pair.id) == [DONE, DONE, OPEN]
    await request_votes(client, session, project, pair.id, 3)  # it has three slots already
    assert await slots_of(session, pair.id) == [DONE, DONE, OPEN]
    await crowd.vote(raters[2], A)  # a, b, a: the rule wants a fourth, as without the request
    assert await slots_of(session, pair.id) == [DONE, DONE, DONE, OPEN]
