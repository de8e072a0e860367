"""What adaptive overlap's decision costs on its own, in CPU: the app's own decision, as the
submit makes it, run again and again in rolled-back transactions on the pairs of an adaptive
project that the rater loop has just rated, against the same transactions without it. The
rater-loop bench holds it against the CPU of a whole loop of a fixed project.

Under the counted rule (the bench's) the decision is one statement
(overlap.service.decision_with_vote), which the submit sends in the store's round trip; here
it goes out on its own, so its round trip is counted in and the figure is an upper bound.
Under the posterior rule it is overlap.service.after_vote.

Two cases, as a vote meets them:
- *settled*: the pair's last vote is in and the rule settles it (lock the pair, read its
  slots and votes, ask the rule);
- *one more*: the rule wants one more rater and a slot opens. At rest no pair is in that
  state (its decision already opened the slot), so before measuring, the open slot of each
  split pair (votes the rule does not settle on, one slot open, none leased) is deleted and
  committed; every measured transaction then opens it again and rolls back.

The baseline transaction locks the pair row as well, which the fixed loop's submit does not
do, so the difference is a lower bound of what the lock costs; the lock is one short
statement beside the read.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from bench.measure import tree_cpu_seconds
from pickwise.core.embedded_pg import to_sqlalchemy_url

_SETTLED = text(
    """
    SELECT pair_id FROM pair_slots WHERE project_id = :project_id
    GROUP BY pair_id HAVING bool_and(state = 'done') AND count(*) >= 2
    ORDER BY pair_id
    """
)
# A vote's assignment on each pair: the decision acts only once that vote is in.
_VOTED = text(
    "SELECT pair_id, max(assignment_id) FROM judgments WHERE pair_id = ANY(:pairs) GROUP BY pair_id"
)
# Pairs with one open slot beyond the minimum (a decision opened it), no lease, and their
# open slot deleted: left with votes the rule does not settle on.
_SPLIT = text(
    """
    WITH split AS (
        SELECT pair_id, max(id) FILTER (WHERE state = 'open') AS slot_id FROM pair_slots
        WHERE project_id = :project_id
        GROUP BY pair_id
        HAVING count(*) FILTER (WHERE state = 'open') = 1
           AND count(*) FILTER (WHERE state = 'leased') = 0
           AND count(*) > :minimum
    ), dropped AS (
        DELETE FROM pair_slots WHERE id IN (SELECT slot_id FROM split) RETURNING pair_id
    )
    SELECT pair_id FROM dropped ORDER BY pair_id
    """
)
_LOCK = text("SELECT id FROM pairs WHERE id = :pair_id FOR NO KEY UPDATE")


@dataclass(frozen=True)
class DecisionCost:
    """CPU ms per decision (this process + Postgres), the transaction's own cost taken off."""

    settled_ms: float
    one_more_ms: float
    baseline_ms: float  # the transaction alone: begin, lock the pair, roll back
    decisions: int  # per case
    pairs: tuple[int, int]  # settled, split pairs measured over


def measure(
    url: str, project_id: int, decisions: int, postgres_pid: int | None
) -> DecisionCost | None:
    """None when the project has no pair of either case (the smallest bench sizes)."""
    return asyncio.run(_measure(url, project_id, decisions, postgres_pid))


async def _measure(
    url: str, project_id: int, decisions: int, postgres_pid: int | None
) -> DecisionCost | None:
    from pickwise.core.db import run_pipelined
    from pickwise.models import Project
    from pickwise.overlap import service as overlap

    engine = create_async_engine(to_sqlalchemy_url(url))
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            project = await session.get(Project, project_id)
            assert project is not None
            session.expunge(project)  # a detached copy: the rollbacks below do not expire it
            params = {"project_id": project_id, "minimum": project.overlap_min}
            settled = list((await session.scalars(_SETTLED, params)).all())
            split = list((await session.scalars(_SPLIT, params)).all())
            voted = dict((await session.execute(_VOTED, {"pairs": settled + split})).all())
            await session.commit()
            if not settled or not split:
                return None

            async def decide(pair_id: int) -> int:
                call = overlap.decision_with_vote(project, pair_id, voted[pair_id])
                if call is None:
                    return await overlap.after_vote(session, project, pair_id)
                [[(opened,)]] = await run_pipelined(session, [call])
                return int(opened)

            async def baseline(number: int) -> None:
                await session.execute(_LOCK, {"pair_id": settled[number % len(settled)]})

            async def settle(number: int) -> None:
                pair_id = settled[number % len(settled)]
                await session.execute(_LOCK, {"pair_id": pair_id})
                assert await decide(pair_id) == 0

            async def one_more(number: int) -> None:
                pair_id = split[number % len(split)]
                await session.execute(_LOCK, {"pair_id": pair_id})
                assert await decide(pair_id) == 1

            async def cpu_ms(work: Callable[[int], Awaitable[None]]) -> float:
                for number in range(min(decisions, 50)):  # warm: statements, caches
                    await work(number)
                    await session.rollback()
                before = _cpu(postgres_pid)
                for number in range(decisions):
                    await work(number)
                    await session.rollback()
                return (_cpu(postgres_pid) - before) * 1000 / decisions

            base = await cpu_ms(baseline)
            return DecisionCost(
                settled_ms=await cpu_ms(settle) - base,
                one_more_ms=await cpu_ms(one_more) - base,
                baseline_ms=base,
                decisions=decisions,
                pairs=(len(settled), len(split)),
            )
    finally:
        await engine.dispose()


def _cpu(postgres_pid: int | None) -> float:
    own = time.process_time()
    return own + (tree_cpu_seconds(postgres_pid) if postgres_pid else 0.0)
