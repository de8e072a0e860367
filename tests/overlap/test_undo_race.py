"""A rater changing their vote while another rater submits on the same adaptive pair, with real
commits: the change first, the submit first, or both at once (several rounds), the pair ends
with the slots the rule wants for the final votes, and no deadlock. The change holds every
slot of the pair and the submit its own, so at once they run one after the other."""

import asyncio
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.judgments import changes
from pickwise.judgments import service as judgments_service
from pickwise.judgments.schemas import JudgmentIn
from pickwise.models import User
from tests.overlap.committed import committed, committed_pair

ROUNDS = 6
HANG_GUARD_SECONDS = 30


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
    made = await committed_pair(3)
    rater_ids = made.rater_ids

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

    await submit(0, await made.lease(0), "tie")
    second = await made.lease(1)
    await submit(1, second, "left")
    held = await made.lease(2)  # the third slot, leased
    if order == "change first":
        await change(1, second, "tie")
        await submit(2, held, third)
    elif order == "submit first":
        await submit(2, held, third)
        await change(1, second, "tie")
    else:
        both = asyncio.gather(change(1, second, "tie"), submit(2, held, third))
        await asyncio.wait_for(both, HANG_GUARD_SECONDS)
    assert await made.slots() == slots
