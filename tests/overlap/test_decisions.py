"""The decision inside the submit: one more slot only when the rule wants it, never more than
the maximum, never the same rater twice; skips, expiry and gold pairs as in a fixed project."""

from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core import clock
from pickwise.core.clock import utcnow
from pickwise.models import Judgment, PairSlot, Project, RaterWeight
from pickwise.overlap.rules import prior_confusion
from tests.factories import make_pairs, make_project
from tests.overlap.crowd import Crowd, adaptive_project, one_pair, slots_of

A, B, TIE = "a", "b", "tie"
DONE, OPEN, LEASED = "done", "open", "leased"


async def test_two_agreeing_votes_settle_the_pair(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await adaptive_project(session)
    [pair] = await make_pairs(session, project, 1)
    assert await slots_of(session, pair.id) == [OPEN, OPEN]  # the minimum, not k
    crowd = Crowd(client, session, project)
    first, second, third = await crowd.join(3)
    await crowd.vote(first, A)
    await crowd.vote(second, A)
    assert await slots_of(session, pair.id) == [DONE, DONE]
    assert await crowd.lease(third) is None


async def test_disagreement_opens_one_slot_at_a_time_up_to_the_maximum(
    client: AsyncClient, session: AsyncSession
) -> None:
    _, pair, crowd, raters = await one_pair(client, session, 6)
    steps = [(A, [DONE, OPEN]), (B, [DONE, DONE, OPEN]), (A, [DONE] * 3 + [OPEN])]
    steps += [(B, [DONE] * 4 + [OPEN]), (TIE, [DONE] * 5)]
    for rater, (choice, slots) in zip(raters, steps, strict=False):
        await crowd.vote(rater, choice)
        assert await slots_of(session, pair.id) == slots, choice
    assert await crowd.lease(raters[5]) is None  # five is the maximum


async def test_first_to_three_settles_before_the_maximum(
    client: AsyncClient, session: AsyncSession
) -> None:
    _, pair, crowd, raters = await one_pair(client, session, 5)
    for rater, choice in zip(raters, (A, B, B, B), strict=False):
        await crowd.vote(rater, choice)
    assert await slots_of(session, pair.id) == [DONE] * 4
    assert await crowd.lease(raters[4]) is None


async def test_the_rule_waits_for_a_leased_vote(client: AsyncClient, session: AsyncSession) -> None:
    _, pair, crowd, (slow, fast) = await one_pair(client, session, 2)
    held = await crowd.lease(slow)
    assert held is not None
    await crowd.vote(fast, A)
    assert await slots_of(session, pair.id) == [LEASED, DONE]  # nothing decided yet
    assert (await crowd.submit(slow, held, B)).status_code == 201
    assert await slots_of(session, pair.id) == [DONE, DONE, OPEN]


async def test_the_new_slot_never_goes_to_a_rater_who_voted(
    client: AsyncClient, session: AsyncSession
) -> None:
    _, _, crowd, (first, second, third) = await one_pair(client, session, 3)
    await crowd.vote(first, A)
    await crowd.vote(second, B)
    assert await crowd.lease(first) is None
    assert await crowd.lease(second) is None
    assert await crowd.lease(third) is not None


async def test_a_skip_gives_the_slot_back_and_decides_nothing(
    client: AsyncClient, session: AsyncSession
) -> None:
    _, pair, crowd, (first, second, skipper, last) = await one_pair(client, session, 4)
    await crowd.vote(first, A)
    await crowd.vote(second, B)
    lease = await crowd.lease(skipper)
    assert lease is not None
    await crowd.skip(skipper, lease)
    assert await slots_of(session, pair.id) == [DONE, DONE, OPEN]
    await crowd.vote(last, A)
    assert await slots_of(session, pair.id) == [DONE, DONE, DONE, OPEN]


async def test_an_expired_lease_is_waited_for_until_another_rater_takes_it(
    client: AsyncClient, session: AsyncSession
) -> None:
    _, pair, crowd, (walker, voter, late_comer) = await one_pair(
        client, session, 3, lease_seconds=60
    )
    walked_away = await crowd.lease(walker)
    assert walked_away is not None
    await crowd.vote(voter, A)
    clock.advance(timedelta(seconds=61))
    assert await slots_of(session, pair.id) == [LEASED, DONE]  # expired, still waited for
    await crowd.vote(late_comer, B)  # takes the expired slot over
    assert await slots_of(session, pair.id) == [DONE, DONE, OPEN]
    late = await crowd.submit(walker, walked_away, A)
    assert late.status_code == 409
    assert await slots_of(session, pair.id) == [DONE, DONE, OPEN]


async def test_a_late_vote_nobody_took_over_is_stored_and_decides(
    client: AsyncClient, session: AsyncSession
) -> None:
    _, pair, crowd, (slow, voter) = await one_pair(client, session, 2, lease_seconds=60)
    held = await crowd.lease(slow)
    assert held is not None
    await crowd.vote(voter, A)
    clock.advance(timedelta(minutes=5))
    assert (await crowd.submit(slow, held, A)).status_code == 201
    assert await slots_of(session, pair.id) == [DONE, DONE]


async def test_gold_pairs_keep_their_count_every_rater_sees_them(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await adaptive_project(session, gold_rate=1.0)
    pairs = await make_pairs(session, project, 3, gold=1)
    gold = pairs[-1]
    crowd = Crowd(client, session, project)
    raters = await crowd.join(6)
    for rater in raters:
        await crowd.vote(rater, B)  # the gold pair first (gold_rate 1), wrong on purpose
    gold_votes = await session.scalar(
        select(func.count()).select_from(Judgment).where(Judgment.pair_id == gold.id)
    )
    assert gold_votes == len(raters)
    assert await slots_of(session, gold.id) == []


async def test_a_fixed_project_decides_nothing(client: AsyncClient, session: AsyncSession) -> None:
    project = await make_project(session, raters_per_pair=2, overlap_min=2, overlap_max=5)
    [pair] = await make_pairs(session, project, 1)
    crowd = Crowd(client, session, project)
    first, second, third = await crowd.join(3)
    await crowd.vote(first, A)
    await crowd.vote(second, B)
    assert await slots_of(session, pair.id) == [DONE, DONE]
    assert await crowd.lease(third) is None


async def weigh(session: AsyncSession, project: Project, rater_id: int, accuracy: float) -> None:
    session.add(
        RaterWeight(
            project_id=project.id,
            rater_id=rater_id,
            confusion=list(prior_confusion(accuracy)),
            judgments=100,
            computed_at=utcnow(),
        )
    )
    await session.flush()


async def test_the_posterior_rule_reads_the_rater_weights(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await adaptive_project(session, overlap_rule="posterior", pair_order="file")
    weak_pair, sharp_pair = await make_pairs(session, project, 2)
    crowd = Crowd(client, session, project)
    clicker_1, clicker_2, sharp_1, sharp_2 = await crowd.join(4)
    for clicker in (clicker_1, clicker_2):
        await weigh(session, project, clicker.id, 1 / 3)  # their votes tell nothing
    for sharp in (sharp_1, sharp_2):
        await weigh(session, project, sharp.id, 0.95)
    assert await crowd.vote(clicker_1, A) == weak_pair.id
    assert await crowd.vote(clicker_2, A) == weak_pair.id
    # Two agreeing votes settle nothing when they carry no evidence: one more rater.
    assert await slots_of(session, weak_pair.id) == [DONE, DONE, OPEN]
    assert await crowd.vote(sharp_1, A) == weak_pair.id
    assert await slots_of(session, weak_pair.id) == [DONE, DONE, DONE]
    assert await crowd.vote(sharp_2, B) == sharp_pair.id
    assert await crowd.vote(clicker_1, B) == sharp_pair.id
    assert await slots_of(session, sharp_pair.id) == [DONE, DONE]


async def test_slot_numbers_stay_unique_and_ordered(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await adaptive_project(session)
    [pair] = await make_pairs(session, project, 1)
    crowd = Crowd(client, session, project)
    for rater, choice in zip(await crowd.join(5), (A, B, A, B, A), strict=True):
        await crowd.vote(rater, choice)
    numbers = list(
        await session.scalars(
            select(PairSlot.slot_no).where(PairSlot.pair_id == pair.id).order_by(PairSlot.id)
        )
    )
    assert numbers == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(("second", "slots"), [(B, [DONE, DONE, OPEN]), (A, [DONE, DONE])])
async def test_an_adaptive_vote_waits_on_postgres_as_often_as_a_fixed_one(
    client: AsyncClient, session: AsyncSession, round_trips: list[str], second: str, slots: Any
) -> None:
    # Who asks with the lease's locks; the choice stored, with the counted rule's decision
    # (and the slot it opens) in the same round trip: two waits, as in a fixed project.
    _, pair, crowd, (first, other) = await one_pair(client, session, 2)
    await crowd.vote(first, A)
    lease = await crowd.lease(other)
    assert lease is not None
    shown = await crowd._shown(lease, second)
    round_trips.clear()
    response = await client.post(
        f"/api/v1/assignments/{lease['assignment_id']}/judgment",
        json={"choice": shown},
        headers=other.headers,
    )
    assert response.status_code == 201
    assert len(round_trips) == 2, "\n=====\n".join(round_trips)
    store = round_trips[1].split("\n---\n")
    assert store[0].lstrip().startswith("WITH slot AS") and "INSERT INTO pair_slots" in store[1]
    assert await slots_of(session, pair.id) == slots
