"""Many raters at once against real commits: every pair ends with exactly k judgments."""

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import select, text

from pickwise.core.db import get_engine, session_factory
from pickwise.judgments.idempotency import request_fingerprint
from pickwise.judgments.schemas import JudgmentIn
from pickwise.models import Assignment, Judgment
from pickwise.vocabulary import AssignmentStatus, ShownChoice
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user

RATERS = 60
PAIRS = 40
K = 3


async def until_not_busy(send: Callable[[], Awaitable[Response]]) -> Response:
    """What pickwise.client does with a 503 (a worker whose pool stayed busy past its
    timeout, as 60 raters on a loaded machine make it): wait, then send the same again."""
    for attempt in range(20):
        response = await send()
        if response.status_code != 503:
            return response
        await asyncio.sleep(0.05 * (attempt + 1))
    return response


async def rate_until_done(app: Any, headers: dict[str, str], project_id: int) -> list[int]:
    acknowledged: list[int] = []
    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="http://test", headers=headers) as c:
        while True:
            answer = await until_not_busy(partial(c.get, f"/api/v1/projects/{project_id}/next"))
            assert answer.status_code == 200, answer.text
            body = answer.json()
            if body["assignment_id"] is None:
                return acknowledged
            # One key for every attempt at this choice, so a retry cannot store it twice.
            keyed = {"Idempotency-Key": uuid.uuid4().hex}
            url = f"/api/v1/assignments/{body['assignment_id']}/judgment"
            response = await until_not_busy(
                partial(c.post, url, json={"choice": "left"}, headers=keyed)
            )
            assert response.status_code == 201, response.text
            acknowledged.append(response.json()["judgment_id"])


async def test_concurrent_raters_drain_project_with_exactly_k(live_app: Any) -> None:
    async with session_factory(get_engine())() as session, session.begin():
        project = await make_project(session, raters_per_pair=K)
        pairs = await make_pairs(session, project, PAIRS)
        raters = []
        for _ in range(RATERS):
            rater = await make_user(session)
            await add_member(session, project, rater)
            raters.append((rater.id, await bearer_headers(session, rater)))
        project_id = project.id

    results = await asyncio.gather(
        *(rate_until_done(live_app, headers, project_id) for _, headers in raters)
    )
    acknowledged = [judgment_id for result in results for judgment_id in result]

    async with session_factory(get_engine())() as session:
        rows = (
            await session.execute(select(Judgment.id, Judgment.pair_id, Judgment.rater_id))
        ).all()
    assert sorted(row.id for row in rows) == sorted(acknowledged), "lost or extra judgments"
    per_pair = Counter(row.pair_id for row in rows)
    assert per_pair == {pair.id: K for pair in pairs}
    raters_per_pair: dict[int, set[int]] = {}
    for row in rows:
        raters_per_pair.setdefault(row.pair_id, set()).add(row.rater_id)
    assert all(len(distinct) == K for distinct in raters_per_pair.values())
    # Many raters took part, so the work really was concurrent.
    assert sum(1 for result in results if result) > K


async def _keyed_rater(pairs: int) -> tuple[int, int, dict[str, str]]:
    """A project of `pairs` pairs (k = 1) and a rater in it: (project id, rater id, headers)."""
    async with session_factory(get_engine())() as session, session.begin():
        project = await make_project(session, raters_per_pair=1)
        await make_pairs(session, project, pairs)
        rater = await make_user(session)
        await add_member(session, project, rater)
        return project.id, rater.id, await bearer_headers(session, rater)


async def test_one_key_sent_many_times_at_once_stores_one_choice_and_one_lease(
    live_app: Any,
) -> None:
    # Each request claims the key in the round trip of its token and locks; all but one wait
    # on the claim, then lock nothing and answer with what the first stored.
    project_id, _, headers = await _keyed_rater(3)
    transport = ASGITransport(app=live_app)
    async with AsyncClient(transport=transport, base_url="http://test", headers=headers) as c:
        leased = (await c.get(f"/api/v1/projects/{project_id}/next")).json()
        url = f"/api/v1/assignments/{leased['assignment_id']}/judgment?next=true"
        keyed = {"Idempotency-Key": "the-same-key"}
        sent = [c.post(url, json={"choice": "left"}, headers=keyed) for _ in range(8)]
        answers = await asyncio.gather(*sent)
    assert {answer.status_code for answer in answers} == {201}
    bodies = [answer.json() for answer in answers]
    choices = [{k: v for k, v in body.items() if k != "next"} for body in bodies]
    assert all(choice == choices[0] for choice in choices), choices
    leases = {(body["next"]["assignment_id"], body["next"]["pair_id"]) for body in bodies}
    assert len(leases) == 1, bodies  # the same next lease for every one
    async with session_factory(get_engine())() as session:
        judgments = (await session.execute(select(Judgment.id))).scalars().all()
    assert judgments == [answers[0].json()["judgment_id"]]


async def test_a_request_waiting_on_its_key_holds_no_lock_and_then_locks_nothing(
    live_app: Any,
) -> None:
    """The interleaving of a claim sent with the locks: while the request waits on a key
    another transaction holds, the lease's slot is free; once that one commits its answer,
    the request replays it and stores nothing."""
    project_id, rater_id, headers = await _keyed_rater(2)
    transport = ASGITransport(app=live_app)
    async with AsyncClient(transport=transport, base_url="http://test", headers=headers) as c:
        leased = (await c.get(f"/api/v1/projects/{project_id}/next")).json()
        url = f"/api/v1/assignments/{leased['assignment_id']}/judgment"
        stored = {"judgment_id": -1, "note": "the first request's answer"}
        async with get_engine().connect() as first:
            await first.execute(
                text(
                    "INSERT INTO idempotency_keys (user_id, key, request_hash, status_code, "
                    "response_body) VALUES (:user_id, 'k', 'h', 0, '{}')"
                ),
                {"user_id": rater_id},
            )
            waiting = asyncio.create_task(
                c.post(url, json={"choice": "left"}, headers={"Idempotency-Key": "k"})
            )
            await asyncio.sleep(0.5)
            assert not waiting.done()
            slot = text(
                "SELECT s.id FROM pair_slots s JOIN assignments a ON a.slot_id = s.id "
                "WHERE a.id = :assignment_id FOR UPDATE OF s NOWAIT"
            )
            async with get_engine().connect() as probe:
                locked = await probe.execute(slot, {"assignment_id": leased["assignment_id"]})
                assert locked.scalar_one() is not None  # not held by the waiting request
                await probe.rollback()
            # The first request stores its answer (with the waiting one's fingerprint, so the
            # replay is not refused as another body) and commits.
            await first.execute(
                text(
                    "UPDATE idempotency_keys SET status_code = 201, "
                    "response_body = CAST(:body AS jsonb), request_hash = :hash "
                    "WHERE user_id = :user_id AND key = 'k'"
                ),
                {"body": json.dumps(stored), "hash": _fingerprint(url), "user_id": rater_id},
            )
            await first.commit()
            replayed = await waiting
    assert (replayed.status_code, replayed.json()) == (201, stored)
    async with session_factory(get_engine())() as session:
        assert (await session.execute(select(Judgment.id))).all() == []
        status = await session.scalar(
            select(Assignment.status).where(Assignment.id == leased["assignment_id"])
        )
    assert status == AssignmentStatus.LEASED


def _fingerprint(url: str) -> str:
    return request_fingerprint(url, JudgmentIn(choice=ShownChoice.LEFT))
