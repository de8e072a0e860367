"""A rater changing or withdrawing their last vote (the rating page's undo, issue 18) on a
pair of an adaptive project: the stopping rule runs again on the pair in the same
transaction, so the pair gets the raters its votes now call for."""

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.overlap.crowd import one_pair, slots_of

A, B = "a", "b"
DONE, OPEN = "done", "open"


async def test_a_changed_vote_reopens_a_settled_pair(
    client: AsyncClient, session: AsyncSession
) -> None:
    _, pair, crowd, (first, second, third) = await one_pair(client, session, 3)
    await crowd.vote(first, A)
    last = await crowd.vote_on(second, A)
    assert await slots_of(session, pair.id) == [DONE, DONE]
    assert (await crowd.change(second, last, B)).status_code == 200
    assert await slots_of(session, pair.id) == [DONE, DONE, OPEN]
    await crowd.vote(third, A)
    assert await slots_of(session, pair.id) == [DONE, DONE, DONE, OPEN]  # 2 of 3: one more


async def test_a_changed_vote_drops_the_slot_no_longer_wanted(
    client: AsyncClient, session: AsyncSession
) -> None:
    _, pair, crowd, (first, second, third) = await one_pair(client, session, 3)
    await crowd.vote(first, A)
    last = await crowd.vote_on(second, B)
    assert await slots_of(session, pair.id) == [DONE, DONE, OPEN]
    assert (await crowd.change(second, last, A)).status_code == 200
    assert await slots_of(session, pair.id) == [DONE, DONE]
    assert await crowd.lease(third) is None


async def test_a_withdrawn_vote_leaves_the_pair_its_minimum(
    client: AsyncClient, session: AsyncSession
) -> None:
    _, pair, crowd, (first, second, third, fourth) = await one_pair(client, session, 4)
    await crowd.vote(first, A)
    last = await crowd.vote_on(second, B)
    assert await slots_of(session, pair.id) == [DONE, DONE, OPEN]
    assert (await crowd.withdraw(second, last)).status_code == 200
    # One vote left: the slot given back is the second of the minimum; the third goes.
    assert await slots_of(session, pair.id) == [DONE, OPEN]
    await crowd.vote(third, A)
    assert await slots_of(session, pair.id) == [DONE, DONE]  # a, a: settled
    assert await crowd.lease(fourth) is None


async def test_a_skip_made_a_vote_is_decided_like_a_vote(
    client: AsyncClient, session: AsyncSession
) -> None:
    _, pair, crowd, (first, second, third) = await one_pair(client, session, 3)
    await crowd.vote(first, A)
    skipped = await crowd.lease(second)
    assert skipped is not None
    await crowd.skip(second, skipped)
    assert await slots_of(session, pair.id) == [DONE, OPEN]
    assert (await crowd.change(second, skipped, B)).status_code == 200
    assert await slots_of(session, pair.id) == [DONE, DONE, OPEN]  # a, b: one more
    await crowd.vote(third, B)
    assert await slots_of(session, pair.id) == [DONE, DONE, DONE, OPEN]
