"""The stop/extend decision racing a concurrent submit, with real commits and the interleaving
forced: each submit, once its vote is stored, is held just before it reads the pair's slots,
until the other submit has either reached the same point or is waiting for a lock. Exactly
one of them decides: one slot opens when the votes disagree, none when they agree. (Without
the pair lock both read before either commits, neither sees the other's vote, and the pair is
left with every slot judged and nothing decided.)"""

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.judgments import service as judgments_service
from pickwise.judgments.schemas import JudgmentIn
from pickwise.models import User
from pickwise.overlap import repository as overlap_repository
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


@pytest.mark.parametrize(("first", "second", "slots"), [("tie", "left", 3), ("tie", "tie", 2)])
async def test_two_last_votes_at_once_decide_exactly_once(
    live_app: Any, monkeypatch: pytest.MonkeyPatch, first: str, second: str, slots: int
) -> None:
    made = await committed_pair(2)
    rater_ids = made.rater_ids
    leases = [await made.lease(index) for index in range(2)]

    readers, go_on = 0, asyncio.Event()
    unpaused = overlap_repository.pair_state

    async def held_before_reading(session: AsyncSession, pair: int) -> Any:
        nonlocal readers
        readers += 1
        await go_on.wait()
        return await unpaused(session, pair)

    monkeypatch.setattr(overlap_repository, "pair_state", held_before_reading)

    def submit(index: int, choice: str) -> Any:
        async def work(session: AsyncSession) -> None:
            rater = await session.get(User, rater_ids[index])
            assert rater is not None
            body = JudgmentIn(choice=choice)  # type: ignore[arg-type]
            await judgments_service.submit(session, leases[index], rater, body)

        return committed(work)

    submits = [asyncio.create_task(submit(0, first))]
    try:
        started = time.monotonic()
        while readers < 1:
            assert time.monotonic() - started < HANG_GUARD_SECONDS, "the first never read"
            await asyncio.sleep(0.01)
        submits.append(asyncio.create_task(submit(1, second)))
        # The second submit stores its vote, then either waits for the first's pair row, or
        # (were there no lock) reaches the read too.
        while readers < 2 and not await someone_waits_for_a_lock():
            assert time.monotonic() - started < HANG_GUARD_SECONDS, "the second never got far"
            await asyncio.sleep(0.01)
    finally:
        go_on.set()
        await asyncio.wait_for(asyncio.gather(*submits), HANG_GUARD_SECONDS)

    assert await made.slots() == ["done", "done"] + ["open"] * (slots - 2)
