"""Changing k while raters submit, against real commits: no deadlock, never more than k.

Resizing deletes slots (and, through the foreign key, clears the assignments' slot ids) while
submits lock the same slots and assignments. With the two taking their locks in opposite
orders Postgres found deadlocks and the clients got 503s; every writer now locks slots before
assignments (assignments.repository).
"""

import asyncio
import uuid
from collections import Counter
from typing import Any

from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select, text

from pickwise.core.db import get_engine, session_factory
from pickwise.models import Judgment, PairSlot, Project
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user

RATERS = 16
PAIRS = 60
HIGH_K, LOW_K = 3, 2


async def deadlocks_so_far() -> int:
    """Deadlocks Postgres detected in the test database (a backend reports its own when it
    goes idle or exits, so the pool is closed first)."""
    engine = get_engine()
    await engine.dispose()
    async with engine.connect() as connection:
        found = await connection.scalar(
            text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        )
    await engine.dispose()
    return int(found or 0)


class Tally:
    def __init__(self) -> None:
        self.acknowledged: list[int] = []
        self.statuses: Counter[int] = Counter()
        self.unexpected: list[str] = []


async def rate(app: Any, headers: dict[str, str], project_id: int, tally: Tally) -> None:
    """Lease and submit until no work is left; a 503 is retried with the same key."""
    async with AsyncClient(
        transport=ASGITransport(app=app), base_url="http://test", headers=headers
    ) as client:
        while True:
            lease = await client.get(f"/api/v1/projects/{project_id}/next")
            tally.statuses[lease.status_code] += 1
            if lease.status_code != 200:
                tally.unexpected.append(f"next: {lease.status_code} {lease.text}")
                await asyncio.sleep(0.05)
                continue
            assignment_id = lease.json()["assignment_id"]
            if assignment_id is None:
                return
            key = uuid.uuid4().hex
            while True:
                answer = await client.post(
                    f"/api/v1/assignments/{assignment_id}/judgment",
                    json={"choice": "left"},
                    headers={"Idempotency-Key": key},
                )
                tally.statuses[answer.status_code] += 1
                if answer.status_code == 201:
                    tally.acknowledged.append(answer.json()["judgment_id"])
                elif answer.status_code == 503:
                    tally.unexpected.append(f"submit: 503 {answer.text}")
                    await asyncio.sleep(0.05)
                    continue
                elif answer.status_code != 409:  # the lease was revoked by a lower k
                    tally.unexpected.append(f"submit: {answer.status_code} {answer.text}")
                break


async def resize_until(
    app: Any, headers: dict[str, str], project_id: int, done: asyncio.Event, tally: Tally
) -> int:
    resizes = 0
    async with AsyncClient(
        transport=ASGITransport(app=app), base_url="http://test", headers=headers
    ) as client:
        while not done.is_set():
            k = LOW_K if resizes % 2 == 0 else HIGH_K
            answer = await client.patch(
                f"/api/v1/projects/{project_id}", json={"raters_per_pair": k}
            )
            tally.statuses[answer.status_code] += 1
            if answer.status_code != 200:
                tally.unexpected.append(f"resize: {answer.status_code} {answer.text}")
            resizes += 1
            await asyncio.sleep(0)
        final = await client.patch(
            f"/api/v1/projects/{project_id}", json={"raters_per_pair": HIGH_K}
        )
        assert final.status_code == 200, final.text
    return resizes


async def test_resizing_while_raters_submit_never_deadlocks(live_app: Any) -> None:
    async with session_factory(get_engine())() as session, session.begin():
        project = await make_project(session, raters_per_pair=HIGH_K)
        pairs = await make_pairs(session, project, PAIRS)
        admin = await make_user(session, role="admin")
        admin_headers = await bearer_headers(session, admin)
        raters = []
        for _ in range(RATERS):
            rater = await make_user(session)
            await add_member(session, project, rater)
            raters.append(await bearer_headers(session, rater))
        project_id = project.id
    deadlocks_before = await deadlocks_so_far()

    tally = Tally()
    done = asyncio.Event()

    async def raters_then_stop() -> None:
        await asyncio.gather(*(rate(live_app, headers, project_id, tally) for headers in raters))
        done.set()

    _, resizes = await asyncio.gather(
        raters_then_stop(), resize_until(live_app, admin_headers, project_id, done, tally)
    )
    # k is back at its high value: new raters finish what the resizes left open (a rater
    # whose lease a resize revoked has seen the pair, and is never shown it again).
    async with session_factory(get_engine())() as session, session.begin():
        project = await session.get(Project, project_id)
        assert project is not None
        finishers = []
        for _ in range(HIGH_K):
            rater = await make_user(session)
            await add_member(session, project, rater)
            finishers.append(await bearer_headers(session, rater))
    await asyncio.gather(*(rate(live_app, headers, project_id, tally) for headers in finishers))

    assert await deadlocks_so_far() == deadlocks_before, "Postgres detected a deadlock"
    assert tally.unexpected == [], tally.unexpected[:5]
    # How many resizes fit in the raters' work depends on the machine's load; the 409s show
    # that resizes did revoke leases raters were holding, which is the race under test.
    assert resizes >= 5 and tally.statuses[409] > 0, (resizes, tally.statuses)
    async with session_factory(get_engine())() as session:
        rows = (await session.execute(select(Judgment.id, Judgment.pair_id))).all()
        slots_per_pair = dict(
            (
                await session.execute(
                    select(PairSlot.pair_id, func.count()).group_by(PairSlot.pair_id)
                )
            ).all()
        )
    assert sorted(row.id for row in rows) == sorted(tally.acknowledged), "lost or extra"
    per_pair = Counter(row.pair_id for row in rows)
    # Exactly k everywhere once k is back at 3: never more, and nothing left short.
    assert per_pair == {pair.id: HIGH_K for pair in pairs}
    assert slots_per_pair == {pair.id: HIGH_K for pair in pairs}
