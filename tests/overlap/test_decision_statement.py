"""The counted rule's decision as Postgres makes it in the submit's round trip
(overlap.repository.decision_by_counts) against the rule as Python states it
(rules.slots_wanted): on every mix of up to six votes over the four choices, with slots open
or leased beside them, votes asked for by an admin, and several policies, the statement opens
exactly the slots the Python rule wants, numbered after the pair's last, in its place in the
queue."""

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from itertools import combinations_with_replacement

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.clock import utcnow
from pickwise.core.db import run_pipelined
from pickwise.models import Pair, Project
from pickwise.overlap import repository
from pickwise.overlap.rules import OverlapPolicy, Vote, slots_wanted
from pickwise.overlap.service import policy_of
from pickwise.vocabulary import Choice, StoppingRule
from tests.factories import add_member, make_pairs, make_user
from tests.overlap.crowd import adaptive_project

CHOICES = (Choice.A, Choice.B, Choice.TIE, Choice.BOTH_BAD)
QUEUE_POS = 17


def policies(default: OverlapPolicy) -> list[OverlapPolicy]:
    return [
        default,  # 2..5, m 2, s 0.75
        replace(default, min_raters=1, max_raters=4, stop_votes=3, stop_share=0.6),
        replace(default, min_raters=3, max_raters=6, stop_votes=2, stop_share=2 / 3),
        replace(default, min_raters=2, max_raters=3, stop_votes=1, stop_share=1.0),
    ]


def states() -> Iterator[tuple[tuple[str, ...], int, int, int]]:
    """(votes, open slots, leased slots, votes asked for)."""
    for n in range(1, 7):
        for votes in combinations_with_replacement(CHOICES, n):
            yield votes, 0, 0, 0
            if n <= 3:
                yield votes, 1, 0, 0
                yield votes, 0, 1, 0
                yield votes, 0, 0, 6


class PairBuilder:
    """Pairs of one project whose slots and votes are written straight into the tables."""

    def __init__(self, session: AsyncSession, project: Project, raters: list[int]) -> None:
        self.session, self.project, self.raters = session, project, raters

    async def pair(self, votes: tuple[str, ...], open_: int, leased: int, wanted: int) -> Pair:
        [pair] = await make_pairs(self.session, self.project, 1)
        pair.votes_wanted = wanted or None
        await self.session.flush()
        await self.session.execute(
            text("DELETE FROM pair_slots WHERE pair_id = :pair"), {"pair": pair.id}
        )
        now = utcnow()
        states = ["done"] * len(votes) + ["leased"] * leased + ["open"] * open_
        for number, state in enumerate(states, start=1):
            slot_id = await self.session.scalar(
                text(
                    "INSERT INTO pair_slots (project_id, pair_id, slot_no, state, queue_pos, "
                    "lease_expires_at) VALUES (:project, :pair, :no, :state, :pos, :expires) "
                    "RETURNING id"
                ),
                {
                    "project": self.project.id,
                    "pair": pair.id,
                    "no": number,
                    "state": state,
                    "pos": QUEUE_POS,
                    "expires": now + timedelta(minutes=5) if state == "leased" else None,
                },
            )
            if state == "open":
                continue
            rater = self.raters[number - 1]
            assignment_id = await self.session.scalar(
                text(
                    "INSERT INTO assignments (project_id, pair_id, rater_id, slot_id, status, "
                    "left_side, is_gold, shown_at, lease_expires_at) "
                    "VALUES (:project, :pair, :rater, :slot, :status, 'a', false, :now, :now) "
                    "RETURNING id"
                ),
                {
                    "project": self.project.id,
                    "pair": pair.id,
                    "rater": rater,
                    "slot": slot_id,
                    "status": "submitted" if state == "done" else "leased",
                    "now": now,
                },
            )
            if state == "done":
                await self.session.execute(
                    text(
                        "INSERT INTO judgments (project_id, pair_id, assignment_id, rater_id, "
                        "slot_id, is_gold, choice, criteria, left_side, shown_at, submitted_at) "
                        "VALUES (:project, "
                        ":pair, :assignment, :rater, :slot, false, :choice, '{}', 'a', :now, :now)"
                    ),
                    {
                        "project": self.project.id,
                        "pair": pair.id,
                        "assignment": assignment_id,
                        "rater": rater,
                        "slot": slot_id,
                        "choice": votes[number - 1],
                        "now": now,
                    },
                )
                self.last_assignment = assignment_id
        return pair


async def opened_by_statement(
    session: AsyncSession, policy: OverlapPolicy, project_id: int, pair_id: int, assignment: int
) -> tuple[int, list[tuple[int, str, int]]]:
    """What the statement opens (rolled back afterwards): its count, and the new slots."""
    call = repository.decision_by_counts(policy, project_id, pair_id, assignment)
    async with session.begin_nested() as savepoint:
        [[(count,)]] = await run_pipelined(session, [call])
        new = await session.execute(
            text(
                "SELECT slot_no, state, queue_pos FROM pair_slots "
                "WHERE pair_id = :pair AND state = 'open' ORDER BY slot_no"
            ),
            {"pair": pair_id},
        )
        rows = [tuple(row) for row in new]
        await savepoint.rollback()
    return int(count), rows  # type: ignore[return-value]


@pytest.fixture
async def builder(session: AsyncSession) -> PairBuilder:
    project = await adaptive_project(session)
    raters = []
    for _ in range(7):
        rater = await make_user(session)
        await add_member(session, project, rater)
        raters.append(rater.id)
    return PairBuilder(session, project, raters)


async def test_the_statement_opens_what_the_rule_wants(
    session: AsyncSession, builder: PairBuilder
) -> None:
    checked = 0
    for votes, open_, leased, wanted in states():
        pair = await builder.pair(votes, open_, leased, wanted)
        slots = len(votes) + open_ + leased
        for policy in policies(policy_of(builder.project)):
            assert policy.rule is StoppingRule.LEADER_SHARE
            python = slots_wanted(policy, [Vote(v) for v in votes], leased, wanted) - slots
            count, new_open = await opened_by_statement(
                session, policy, builder.project.id, pair.id, builder.last_assignment
            )
            case = (votes, open_, leased, wanted, policy)
            assert count == max(python, 0), case
            expected = [(slots + n, "open", QUEUE_POS) for n in range(1, count + 1)]
            assert new_open[open_:] == expected, case
            checked += 1
    assert checked > 1000


async def test_nothing_is_decided_without_the_assignments_judgment(
    session: AsyncSession, builder: PairBuilder
) -> None:
    # A refused store stored nothing (and holds no pair lock): the statement then does nothing.
    pair = await builder.pair((Choice.A, Choice.B), 0, 0, 0)
    policy = policy_of(builder.project)
    count, _ = await opened_by_statement(session, policy, builder.project.id, pair.id, 0)
    assert count == 0
    count, _ = await opened_by_statement(
        session, policy, builder.project.id, pair.id, builder.last_assignment
    )
    assert count == 1
