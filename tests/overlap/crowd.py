"""Raters that lease and vote through the JSON API, making the canonical choice asked for."""

from dataclasses import dataclass
from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import Assignment, Judgment, Pair, PairSlot, Project
from pickwise.vocabulary import CanonicalSide, SlotState
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user

SHOWN = {CanonicalSide.A: "left", CanonicalSide.B: "right"}


@dataclass
class Rater:
    id: int
    headers: dict[str, str]


class Crowd:
    def __init__(self, client: AsyncClient, session: AsyncSession, project: Project) -> None:
        self.client, self.session, self.project = client, session, project

    async def join(self, count: int) -> list[Rater]:
        raters = []
        for _ in range(count):
            user = await make_user(self.session)
            await add_member(self.session, self.project, user)
            raters.append(Rater(user.id, await bearer_headers(self.session, user)))
        return raters

    async def lease(self, rater: Rater) -> dict[str, Any] | None:
        answer = await self.client.get(
            f"/api/v1/projects/{self.project.id}/next", headers=rater.headers
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return None if body["assignment_id"] is None else body

    async def submit(self, rater: Rater, lease: dict[str, Any], choice: str) -> Response:
        """``choice`` is canonical (a, b, tie, both_bad): sent as the side it was shown on."""
        return await self.client.post(
            f"/api/v1/assignments/{lease['assignment_id']}/judgment",
            json={"choice": await self._shown(lease, choice)},
            headers=rater.headers,
        )

    async def _shown(self, lease: dict[str, Any], choice: str) -> str:
        assignment = await self.session.get(Assignment, lease["assignment_id"])
        assert assignment is not None
        if choice in (CanonicalSide.A, CanonicalSide.B):
            return "left" if assignment.left_side == choice else "right"
        return choice

    async def vote(self, rater: Rater, choice: str) -> int:
        """Lease the next pair and vote ``choice`` on it; returns the pair's id."""
        return int((await self.vote_on(rater, choice))["pair_id"])

    async def vote_on(self, rater: Rater, choice: str) -> dict[str, Any]:
        """Lease the next pair and vote ``choice`` on it; returns the lease."""
        lease = await self.lease(rater)
        assert lease is not None, "no pair left for this rater"
        answer = await self.submit(rater, lease, choice)
        assert answer.status_code == 201, answer.text
        return lease

    async def change(self, rater: Rater, lease: dict[str, Any], choice: str) -> Response:
        """The rater's last vote becomes ``choice`` (canonical), within the undo window."""
        return await self.client.put(
            f"/api/v1/assignments/{lease['assignment_id']}/judgment",
            json={"choice": await self._shown(lease, choice)},
            headers=rater.headers,
        )

    async def withdraw(self, rater: Rater, lease: dict[str, Any]) -> Response:
        """The rater's last vote becomes a skip, within the undo window."""
        return await self.client.put(
            f"/api/v1/assignments/{lease['assignment_id']}/skip",
            json={"reason": "cant_judge"},
            headers=rater.headers,
        )

    async def skip(self, rater: Rater, lease: dict[str, Any]) -> None:
        answer = await self.client.post(
            f"/api/v1/assignments/{lease['assignment_id']}/skip",
            json={"reason": "cant_judge"},
            headers=rater.headers,
        )
        assert answer.status_code == 200, answer.text


async def slots_of(session: AsyncSession, pair_id: int) -> list[str]:
    """The pair's slot states, in slot order."""
    rows = await session.scalars(
        select(PairSlot.state).where(PairSlot.pair_id == pair_id).order_by(PairSlot.slot_no)
    )
    return list(rows)


async def votes_of(session: AsyncSession, pair_id: int) -> list[str]:
    rows = await session.scalars(
        select(Judgment.choice).where(Judgment.pair_id == pair_id).order_by(Judgment.id)
    )
    return list(rows)


def settled(states: list[str]) -> bool:
    return all(state == SlotState.DONE for state in states)


async def adaptive_project(session: AsyncSession, **settings: Any) -> Project:
    """An adaptive project (2 to 5 raters, the default rule unless ``settings`` say), k = 3."""
    return await make_project(session, raters_per_pair=3, overlap_mode="adaptive", **settings)


async def one_pair(
    client: AsyncClient, session: AsyncSession, raters: int, **settings: Any
) -> tuple[Project, Pair, Crowd, list[Rater]]:
    """An adaptive project with one pair and ``raters`` raters."""
    project = await adaptive_project(session, **settings)
    [pair] = await make_pairs(session, project, 1)
    crowd = Crowd(client, session, project)
    return project, pair, crowd, await crowd.join(raters)
