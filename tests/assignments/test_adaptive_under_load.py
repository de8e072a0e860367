"""Adaptive overlap against real commits, many raters at once: pairs take exactly the votes
the rule lets through (never more, never left unsettled), nobody rates a pair twice, every
acknowledged vote is stored once; with walk-aways, leases that run out and late votes; and
with the policy changed back and forth while raters submit, without a deadlock."""

import asyncio
import random
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from pickwise.core import clock
from pickwise.core.clock import utcnow
from pickwise.core.db import get_engine, session_factory
from pickwise.models import Judgment, PairSlot, Project, RaterWeight
from pickwise.overlap.rules import OverlapPolicy, Vote, prior_confusion
from pickwise.vocabulary import SlotState
from tests.assignments.test_resize_under_load import deadlocks_so_far
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user
from tests.overlap.invariants import rule_problems

SHOWN_CHOICES = ("left", "right", "tie")


class Ledger:
    def __init__(self) -> None:
        self.acknowledged: list[int] = []
        self.statuses: Counter[int] = Counter()
        self.unexpected: list[str] = []
        self.walked_away: list[tuple[dict[str, str], int]] = []  # (headers, assignment id)


async def rate(
    app: Any,
    headers: dict[str, str],
    project_id: int,
    ledger: Ledger,
    *,
    seed: int,
    walk_away_rate: float = 0.0,
) -> None:
    """Lease and vote until no pair is left (or, with ``walk_away_rate``, until this rater
    walks away from a leased pair). A 503 is retried with the same key."""
    chance = random.Random(seed)
    async with AsyncClient(
        transport=ASGITransport(app=app), base_url="http://test", headers=headers
    ) as client:
        while True:
            lease = await client.get(f"/api/v1/projects/{project_id}/next")
            ledger.statuses[lease.status_code] += 1
            if lease.status_code != 200:
                ledger.unexpected.append(f"next: {lease.status_code} {lease.text}")
                await asyncio.sleep(0.05)
                continue
            assignment_id = lease.json()["assignment_id"]
            if assignment_id is None:
                return
            if chance.random() < walk_away_rate:
                ledger.walked_away.append((headers, assignment_id))
                return
            await submit(client, assignment_id, chance.choice(SHOWN_CHOICES), ledger)


async def drain(
    app: Any, headers: list[dict[str, str]], project_id: int, ledger: Ledger, *, seed: int
) -> None:
    """Everyone rates until no pair is left for them; again while the last votes opened
    slots after the others had stopped (a rater never gets a pair they voted on)."""
    for round_ in range(10):
        await asyncio.gather(
            *(
                rate(app, h, project_id, ledger, seed=seed + 1000 * round_ + n)
                for n, h in enumerate(headers)
            )
        )
        if not await open_pairs_of(project_id):
            return
    raise AssertionError("slots still open after ten rounds of every rater")


async def open_pairs_of(project_id: int) -> set[int]:
    async with session_factory(get_engine())() as session:
        return set(
            await session.scalars(
                select(PairSlot.pair_id).where(
                    PairSlot.project_id == project_id, PairSlot.state != SlotState.DONE
                )
            )
        )


async def submit(client: AsyncClient, assignment_id: int, choice: str, ledger: Ledger) -> int:
    key = uuid.uuid4().hex
    while True:
        answer = await client.post(
            f"/api/v1/assignments/{assignment_id}/judgment",
            json={"choice": choice},
            headers={"Idempotency-Key": key},
        )
        ledger.statuses[answer.status_code] += 1
        if answer.status_code == 201:
            ledger.acknowledged.append(answer.json()["judgment_id"])
        elif answer.status_code == 503:
            ledger.unexpected.append(f"submit: 503 {answer.text}")
            await asyncio.sleep(0.05)
            continue
        elif answer.status_code != 409:
            ledger.unexpected.append(f"submit: {answer.status_code} {answer.text}")
        return answer.status_code


async def setup(raters: int, pairs: int, **settings: Any) -> tuple[int, list[dict[str, str]]]:
    async with session_factory(get_engine())() as session, session.begin():
        project = await make_project(
            session, raters_per_pair=3, overlap_mode="adaptive", **settings
        )
        await make_pairs(session, project, pairs)
        headers = []
        for index in range(raters):
            rater = await make_user(session)
            await add_member(session, project, rater)
            headers.append(await bearer_headers(session, rater))
            if project.overlap_rule == "posterior":
                # Accuracies from a coin flip to nearly always right, as a refresh would store.
                accuracy = 1 / 3 + (0.97 - 1 / 3) * index / max(raters - 1, 1)
                session.add(
                    RaterWeight(
                        project_id=project.id,
                        rater_id=rater.id,
                        confusion=list(prior_confusion(accuracy)),
                        judgments=100,
                        computed_at=utcnow(),
                    )
                )
        return project.id, headers


async def more_raters(project_id: int, count: int) -> list[dict[str, str]]:
    async with session_factory(get_engine())() as session, session.begin():
        project = await session.get_one(Project, project_id)
        headers = []
        for _ in range(count):
            rater = await make_user(session)
            await add_member(session, project, rater)
            headers.append(await bearer_headers(session, rater))
        return headers


async def outcome(
    project_id: int,
) -> tuple[OverlapPolicy, dict[int, list[Vote]], list[Any], set[int]]:
    """The policy, each pair's votes in id order (with the raters' weights), the judgments,
    and the pairs with a slot not judged yet."""
    async with session_factory(get_engine())() as session:
        project = await session.get_one(Project, project_id)
        weights = {
            row.rater_id: tuple(row.confusion)
            for row in await session.scalars(
                select(RaterWeight).where(RaterWeight.project_id == project_id)
            )
        }
        rows = (
            await session.execute(
                select(Judgment.id, Judgment.pair_id, Judgment.rater_id, Judgment.choice)
                .where(Judgment.project_id == project_id)
                .order_by(Judgment.id)
            )
        ).all()
        pair_ids = set(
            await session.scalars(select(PairSlot.pair_id).where(PairSlot.project_id == project_id))
        )
        policy = OverlapPolicy.of(project)
    votes: dict[int, list[Vote]] = {pair_id: [] for pair_id in pair_ids}
    for row in rows:
        votes[row.pair_id].append(Vote(row.choice, weights.get(row.rater_id)))
    return policy, votes, rows, await open_pairs_of(project_id)


def assert_kept_every_promise(
    ledger: Ledger, policy: OverlapPolicy, votes: dict[int, list[Vote]], rows: list[Any]
) -> None:
    assert ledger.unexpected == [], ledger.unexpected[:5]
    assert sorted(row.id for row in rows) == sorted(ledger.acknowledged), "lost or extra"
    twice = Counter((row.pair_id, row.rater_id) for row in rows)
    assert max(twice.values()) == 1, "a rater voted twice on a pair"
    assert rule_problems(policy, votes) == []


@pytest.mark.parametrize("rule", ["leader_share", "posterior"])
async def test_many_raters_drain_an_adaptive_project_within_the_rule(
    live_app: Any, rule: str
) -> None:
    # Few pairs for many raters: a pair's last votes often arrive at the same moment, so the
    # stop/extend decision races concurrent submits all the time.
    project_id, headers = await setup(40, 16, overlap_rule=rule)
    ledger = Ledger()
    await drain(live_app, headers, project_id, ledger, seed=0)
    policy, votes, rows, open_pairs = await outcome(project_id)
    assert open_pairs == set()
    assert_kept_every_promise(ledger, policy, votes, rows)
    counts = Counter(len(pair_votes) for pair_votes in votes.values())
    # The rule really decided pair by pair: not every pair got the same number of votes.
    # Not "some pair stopped at two": that needs a pair's first two votes to agree (and,
    # under "posterior", to come from accurate raters), and which votes reach a pair first is
    # the scheduler's choice; a CI run where none did (Counter({5: 14, 3: 2})) kept every
    # promise all the same. The stop at two itself is pinned in tests/overlap/test_rules.py.
    assert max(counts) > 2 and min(counts) < max(counts), counts
    assert sum(1 for n in ledger.statuses.elements() if n == 201) == len(rows)


async def test_walk_aways_expired_leases_and_late_votes(live_app: Any) -> None:
    project_id, headers = await setup(24, 12, lease_seconds=60)
    ledger = Ledger()
    await asyncio.gather(
        *(
            rate(live_app, h, project_id, ledger, seed=n, walk_away_rate=0.15)
            for n, h in enumerate(headers)
        )
    )
    assert ledger.walked_away, "nobody walked away: raise the rate or the raters"
    # The walk-aways hold slots nobody else may take until their leases run out.
    _, _, _, still_open = await outcome(project_id)
    assert still_open
    clock.advance(timedelta(seconds=61))
    late_comers = await more_raters(project_id, 6)
    # Some walkers come back now, racing the late comers for their own expired slots.
    returning = ledger.walked_away[::2]

    async def come_back(walker: tuple[dict[str, str], int]) -> int:
        walker_headers, assignment_id = walker
        async with AsyncClient(
            transport=ASGITransport(app=live_app), base_url="http://test", headers=walker_headers
        ) as client:
            return await submit(client, assignment_id, "left", ledger)

    _, late_answers = await asyncio.gather(
        asyncio.gather(
            *(
                rate(live_app, h, project_id, ledger, seed=100 + n)
                for n, h in enumerate(late_comers)
            )
        ),
        asyncio.gather(*(come_back(walker) for walker in returning)),
    )
    assert set(late_answers) <= {201, 409}
    # A late vote stored after the late comers left may have asked for one more rater.
    await drain(live_app, late_comers, project_id, ledger, seed=300)
    policy, votes, rows, open_pairs = await outcome(project_id)
    assert open_pairs == set(), "an expired lease was never taken over"
    assert_kept_every_promise(ledger, policy, votes, rows)


async def test_changing_the_policy_while_raters_submit_never_deadlocks(live_app: Any) -> None:
    project_id, headers = await setup(16, 40)
    async with session_factory(get_engine())() as session, session.begin():
        admin = await make_user(session, role="admin")
        admin_headers = await bearer_headers(session, admin)
    deadlocks_before = await deadlocks_so_far()
    ledger = Ledger()
    done = asyncio.Event()
    # Back and forth: a lower maximum (leases beyond it end), another rule, fixed and back.
    changes: list[dict[str, Any]] = [
        {"overlap_max": 3},
        {"overlap_rule": "posterior", "overlap_max": 5},
        {"overlap_mode": "fixed"},
        {"overlap_mode": "adaptive", "overlap_rule": "leader_share"},
    ]

    async def change_until_done() -> int:
        made = 0
        async with AsyncClient(
            transport=ASGITransport(app=live_app), base_url="http://test", headers=admin_headers
        ) as client:
            while not done.is_set():
                answer = await client.patch(
                    f"/api/v1/projects/{project_id}", json=changes[made % len(changes)]
                )
                if answer.status_code != 200:
                    ledger.unexpected.append(f"change: {answer.status_code} {answer.text}")
                made += 1
                await asyncio.sleep(0)
            final = changes[-1] | {"overlap_max": 5}
            assert (await client.patch(f"/api/v1/projects/{project_id}", json=final)).is_success
        return made

    async def raters_then_stop() -> None:
        await asyncio.gather(
            *(rate(live_app, h, project_id, ledger, seed=n) for n, h in enumerate(headers))
        )
        done.set()

    _, made = await asyncio.gather(raters_then_stop(), change_until_done())
    # Fresh raters finish what the last changes left open (a rater whose lease was revoked
    # has seen the pair and is never shown it again).
    await drain(live_app, await more_raters(project_id, 5), project_id, ledger, seed=200)
    assert await deadlocks_so_far() == deadlocks_before, "Postgres detected a deadlock"
    assert made > 8, made
    _, votes, rows, open_pairs = await outcome(project_id)
    assert open_pairs == set()
    assert ledger.unexpected == [], ledger.unexpected[:5]
    assert sorted(row.id for row in rows) == sorted(ledger.acknowledged), "lost or extra"
    # Pairs decided under several policies: none above the highest maximum, none left short.
    assert all(2 <= len(pair_votes) <= 5 for pair_votes in votes.values())
