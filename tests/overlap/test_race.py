"""The stop/extend decision racing a concurrent submit, with real commits and the interleaving
forced: the first submit, once its vote is stored and decided, is held before it commits,
until the second submit has stored its vote and waits for a lock (the pair row). Exactly one
of them decides: one slot opens when the votes disagree, none when they agree.

Under the counted rule the decision is a statement sent in the store's round trip, right
after it; it must run with a snapshot taken once the pair lock is held. Folded into the
store's own statement (one snapshot, taken before the lock wait), or without the pair lock,
neither submit sees the other's vote, and the pair is left with every slot judged and nothing
decided."""

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.judgments import service as judgments_service
from pickwise.judgments.schemas import JudgmentIn
from pickwise.models import User
from tests.overlap.committed import committed, committed_pair

HANG_GUARD_SECONDS = 30


async def someone_waits_for_a_lock() -> bool:
    waiting = await committed(
        lambda session: session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    )
    return bool(waiting)


@pytest.mark.parametrize("rule", ["leader_share", "posterior"])
@pytest.mark.parametrize(("first", "second", "slots"), [("tie", "left", 3), ("tie", "tie", 2)])
async def test_two_last_votes_at_once_decide_exactly_once(
    live_app: Any, rule: str, first: str, second: str, slots: int
) -> None:
    made = await committed_pair(2, overlap_rule=rule)
    rater_ids = made.rater_ids
    leases = [await made.lease(index) for index in range(2)]
    decided, go_on = asyncio.Event(), asyncio.Event()

    def submit(index: int, choice: str) -> Any:
        async def work(session: AsyncSession) -> None:
            rater = await session.get(User, rater_ids[index])
            assert rater is not None
            body = JudgmentIn(choice=choice)  # type: ignore[arg-type]
            await judgments_service.submit(session, leases[index], rater, body)
            if index == 0:  # stored and decided; held before its commit
                decided.set()
                await go_on.wait()

        return committed(work)

    submits = [asyncio.create_task(submit(0, first))]
    try:
        await asyncio.wait_for(decided.wait(), HANG_GUARD_SECONDS)
        submits.append(asyncio.create_task(submit(1, second)))
        # The second submit stores its vote, then waits for the first's pair row.
        started = time.monotonic()
        while not await someone_waits_for_a_lock():
            assert time.monotonic() - started < HANG_GUARD_SECONDS, "the second never waited"
            await asyncio.sleep(0.01)
    finally:
        go_on.set()
        await asyncio.wait_for(asyncio.gather(*submits), HANG_GUARD_SECONDS)

    assert await made.slots() == ["done", "done"] + ["open"] * (slots - 2)
