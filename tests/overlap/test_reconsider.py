"""reconsider_pair: the hook for a vote changed after it was stored (the rating page's undo and
edit) and for more votes asked for on a pair (the review's "request more votes")."""

from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import Judgment
from pickwise.overlap.service import reconsider_pair
from tests.factories import make_pairs, make_project
from tests.overlap.crowd import Crowd, adaptive_project, one_pair, slots_of

A, B = "a", "b"
DONE, OPEN, LEASED = "done", "open", "leased"


async def change_last_vote(session: AsyncSession, pair_id: int, choice: str) -> None:
    """What an edit of the latest vote does to the row (the rating page's undo, issue 18)."""
    last = await session.scalar(
        select(Judgment.id).where(Judgment.pair_id == pair_id).order_by(Judgment.id.desc())
    )
    await session.execute(update(Judgment).where(Judgment.id == last).values(choice=choice))


async def test_a_changed_vote_reopens_a_settled_pair(
    client: AsyncClient, session: AsyncSession
) -> None:
    project, pair, crowd, (first, second, third) = await one_pair(client, session, 3)
    await crowd.vote(first, A)
    await crowd.vote(second, A)
    assert await reconsider_pair(session, project, pair.id) == 0  # nothing changed
    await change_last_vote(session, pair.id, B)
    assert await reconsider_pair(session, project, pair.id) == 1
    assert await slots_of(session, pair.id) == [DONE, DONE, OPEN]
    await crowd.vote(third, A)
    assert await slots_of(session, pair.id) == [DONE, DONE, DONE, OPEN]


async def test_a_changed_vote_drops_the_open_slot_it_no_longer_needs(
    client: AsyncClient, session: AsyncSession
) -> None:
    project, pair, crowd, (first, second, third) = await one_pair(client, session, 3)
    await crowd.vote(first, A)
    await crowd.vote(second, B)
    await change_last_vote(session, pair.id, A)
    assert await reconsider_pair(session, project, pair.id) == -1
    assert await slots_of(session, pair.id) == [DONE, DONE]
    assert await crowd.lease(third) is None


async def test_a_leased_slot_is_left_to_its_rater(
    client: AsyncClient, session: AsyncSession
) -> None:
    project, pair, crowd, (first, second, third) = await one_pair(client, session, 3)
    await crowd.vote(first, A)
    await crowd.vote(second, B)
    held = await crowd.lease(third)
    assert held is not None
    await change_last_vote(session, pair.id, A)
    assert await reconsider_pair(session, project, pair.id) == 0
    assert await slots_of(session, pair.id) == [DONE, DONE, LEASED]
    assert (await crowd.submit(third, held, A)).status_code == 201
    assert await slots_of(session, pair.id) == [DONE, DONE, DONE]  # a, a, a: settled


async def test_more_votes_asked_for_raise_the_minimum_and_the_maximum(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, raters_per_pair=3, overlap_mode="adaptive", overlap_max=3)
    [pair] = await make_pairs(session, project, 1)
    crowd = Crowd(client, session, project)
    raters = await crowd.join(6)
    await crowd.vote(raters[0], A)
    await crowd.vote(raters[1], A)
    assert await reconsider_pair(session, project, pair.id, floor=4) == 2
    assert await slots_of(session, pair.id) == [DONE, DONE, OPEN, OPEN]
    await crowd.vote(raters[2], B)
    await crowd.vote(raters[3], B)  # 2 to 2, at the asked-for 4, above the project's max 3
    assert await slots_of(session, pair.id) == [DONE] * 4
    assert await crowd.lease(raters[4]) is None


async def test_a_fixed_pair_gets_the_votes_asked_for(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, raters_per_pair=2)
    [pair] = await make_pairs(session, project, 1)
    assert await reconsider_pair(session, project, pair.id, floor=3) == 1
    assert await slots_of(session, pair.id) == [OPEN, OPEN, OPEN]


async def test_gold_pairs_have_nothing_to_reconsider(session: AsyncSession) -> None:
    project = await adaptive_project(session)
    [gold] = await make_pairs(session, project, 1, gold=1)
    assert await reconsider_pair(session, project, gold.id, floor=4) == 0
    assert await slots_of(session, gold.id) == []
