"""One adaptive pair and its raters made with real commits, for the tests that race
transactions against each other (the test's own rolled-back connection cannot)."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.service import next_lease
from pickwise.core.db import get_engine, session_factory
from pickwise.models import PairSlot, Project, User
from tests.factories import add_member, make_pairs, make_user
from tests.overlap.crowd import adaptive_project


async def committed(work: Any) -> Any:
    """``work(session)`` in a transaction of its own, committed."""
    async with session_factory(get_engine())() as session, session.begin():
        return await work(session)


@dataclass(frozen=True)
class CommittedPair:
    project_id: int
    pair_id: int
    rater_ids: list[int]

    async def lease(self, rater: int) -> int:
        """The ``rater``-th rater leases the pair (committed); returns the assignment."""

        async def work(session: AsyncSession) -> int:
            project = await session.get(Project, self.project_id)
            user = await session.get(User, self.rater_ids[rater])
            assert project is not None and user is not None
            held = await next_lease(session, project, user)
            assert held is not None and held.pair_id == self.pair_id
            return held.assignment_id

        assignment_id: int = await committed(work)
        return assignment_id

    async def slots(self) -> list[str]:
        states = await committed(
            lambda session: session.scalars(
                select(PairSlot.state)
                .where(PairSlot.pair_id == self.pair_id)
                .order_by(PairSlot.slot_no)
            )
        )
        return list(states)


async def committed_pair(raters: int, **settings: Any) -> CommittedPair:
    """An adaptive project (the default rule unless ``settings`` say) with one pair and
    ``raters`` raters."""

    async def setup(session: AsyncSession) -> CommittedPair:
        project = await adaptive_project(session, **settings)
        [pair] = await make_pairs(session, project, 1)
        rater_ids = []
        for _ in range(raters):
            rater = await make_user(session)
            await add_member(session, project, rater)
            rater_ids.append(rater.id)
        return CommittedPair(project.id, pair.id, rater_ids)

    made: CommittedPair = await committed(setup)
    return made
