"""A rater changing their vote while another rater submits on the same adaptive pair, with real
commits: the change first, the submit first, or both at once (several rounds), the pair ends
with the slots the rule wants for the final votes, and no deadlock. The change holds every
slot of the pair and the submit its own, so at once they run one after the other."""

import asyncio
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.service import next_lease
from pickwise.core.db import get_engine, session_factory
from pickwise.judgments import changes
from pickwise.judgments import service as judgments_service
from pickwise.judgments.schemas import JudgmentIn
from pickwise.models import PairSlot, Project, User
from tests.factories import add_member, make_pairs, make_user
from tests.overlap.crowd import adaptive_project

ROUNDS = 6
HANG_GUARD_SECONDS = 30


async def committed(work: Any) -> Any:
    async with session_factory(get_engine())() as session, session.begin():
        return await work(session)


async def deadlocks() -> int:
    return int(
        await committed(
            lambda session: session.scalar(
                text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            )
        )
    )


def choice(shown: str) -> JudgmentIn:
    return JudgmentIn(choice=shown)  # type: ignore[arg-type]


# tie, then a side; the side's rater changes it to tie while the third rater submits `third`.
# tie, tie, tie settles (3 slots); tie, tie, both bad does not (a fourth opens).
@pytest.mark.parametrize("order", ["change first", "submit first", "at once"])
@pytest.mark.parametrize(
    ("third", "slots"), [("tie", ["done"] * 3), ("both_bad", ["done"] * 3 + ["open"])]
)
async def test_a_change_racing_a_submit_leaves_the_slots_the_rule_wants(
    live_app: Any, order: str, third: str, slots: list[str]
) -> None:
    before = await deadlocks()
    for _ in range(ROUNDS if order == "at once" else 1):
        await one_round(order, third, slots)
    assert await deadlocks() == before


async def one_round(order: str, third: str, slots: list[str]) -> None:
    async def setup(session: AsyncSession) -> tuple[int, int, list[int]]:
        project = await adaptive_project(session)
        [pair] = await make_pairs(session, project, 1)
        raters = []
        for _ in range(3):
            rater = await make_user(session)
            await add_member(session, project, rater)
            raters.append(rater.id)
        return project.id, pair.id, raters

    project_id, pair_id, rater_ids = await committed(setup)

    async def lease(session: AsyncSession, rater_id: int) -> int:
        project, rater = await session.get(Project, project_id), await session.get(User, rater_id)
        assert project is not None and rater is not None
        held = await next_lease(session, project, rater)
        assert held is not None and held.pair_id == pair_id
        return held.assignment_id

    def submit(index: int, assignment_id: int, shown: str) -> Any:
        async def work(session: AsyncSession) -> None:
            rater = await session.get(User, rater_ids[index])
            assert rater is not None
            await judgments_service.submit(session, assignment_id, rater, choice(shown))

        return committed(work)

    def change(index: int, assignment_id: int, shown: str) -> Any:
        async def work(session: AsyncSession) -> None:
            rater = await session.get(User, rater_ids[index])
            assert rater is not None
            await changes.change_judgment(session, assignment_id, rater, choice(shown))

        return committed(work)

    first = await committed(lambda s: lease(s, rater_ids[0]))
    await submit(0, first, "tie")
    second = await committed(lambda s: lease(s, rater_ids[1]))
    await submit(1, second, "left")
    held = await committed(lambda s: lease(s, rater_ids[2]))  # the third slot, leased
    if order == "change first":
        await change(1, second, "tie")
        await submit(2, held, third)
    elif order == "submit first":
        await submit(2, held, third)
        await change(1, second, "tie")
    else:
        both = asyncio.gather(change(1, second, "tie"), submit(2, held, third))
        await asyncio.wait_for(both, HANG_GUARD_SECONDS)
    states = await committed(
        lambda session: session.scalars(
            select(PairSlot.state).where(PairSlot.pair_id == pair_id).order_by(PairSlot.slot_no)
        )
    )
    assert list(states) == slots
