"""Changes racing other raters, with real commits: a skip made a choice again while the lease
another rater took on the pair runs out, that rater answers late and a third claims the pair;
a choice withdrawn while others ask for pairs. Never more than k judgments on a pair, and
every acknowledged choice or change is what the database holds."""

import asyncio
import random
from collections import Counter
from datetime import timedelta
from typing import Any

from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from pickwise.core import clock
from pickwise.core.db import get_engine, session_factory
from pickwise.models import Judgment
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user

PAIRS = 16
LEASE_SECONDS = 30


def client_for(app: Any, headers: dict[str, str]) -> AsyncClient:
    return AsyncClient(transport=ASGITransport(app=app), base_url="http://test", headers=headers)


async def lease(app: Any, headers: dict[str, str], project_id: int) -> dict[str, Any]:
    async with client_for(app, headers) as c:
        body: dict[str, Any] = (await c.get(f"/api/v1/projects/{project_id}/next")).json()
        return body


async def answer(
    app: Any, headers: dict[str, str], method: str, path: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    async with client_for(app, headers) as c:
        response = await c.request(method, f"/api/v1/assignments/{path}", json=body)
        return response.status_code, response.json()


async def claim_and_judge(
    app: Any, headers: dict[str, str], project_id: int
) -> tuple[int, dict[str, Any]] | None:
    pair = await lease(app, headers, project_id)
    if pair["assignment_id"] is None:
        return None
    return await answer(
        app, headers, "POST", f"{pair['assignment_id']}/judgment", {"choice": "right"}
    )


async def judgments_by_rater(project_id: int) -> dict[tuple[int, int], Judgment]:
    async with session_factory(get_engine())() as session:
        statement = select(Judgment).where(Judgment.project_id == project_id)
        rows = (await session.scalars(statement)).all()
    return {(row.rater_id, row.pair_id): row for row in rows}


async def race(live_app: Any, seed: int) -> Counter[tuple[str, int | None]]:
    """One round; the outcomes by kind of request and status."""
    async with session_factory(get_engine())() as session, session.begin():
        project = await make_project(session, raters_per_pair=1, lease_seconds=LEASE_SECONDS)
        await make_pairs(session, project, PAIRS)
        teams: dict[str, list[tuple[int, dict[str, str]]]] = {}
        for team in ("skippers", "holders", "claimers"):
            teams[team] = []
            for _ in range(PAIRS):
                user = await make_user(session)
                await add_member(session, project, user)
                teams[team].append((user.id, await bearer_headers(session, user)))
        project_id = project.id
    clock.freeze()
    try:
        # Every skipper leases a pair of their own, then skips it: each slot is open again.
        skipped = [await lease(live_app, headers, project_id) for _, headers in teams["skippers"]]
        for (_, headers), pair in zip(teams["skippers"], skipped, strict=True):
            path = f"{pair['assignment_id']}/skip"
            status, _ = await answer(live_app, headers, "POST", path, {"reason": "cant_judge"})
            assert status == 200
        assert len({pair["pair_id"] for pair in skipped}) == PAIRS
        # The holders take those slots, then leave their leases to run out.
        held = await asyncio.gather(
            *(lease(live_app, headers, project_id) for _, headers in teams["holders"])
        )
        assert all(pair["assignment_id"] for pair in held)
        clock.advance(timedelta(seconds=LEASE_SECONDS + 1))

        # At once, in a shuffled order: each skipper changes their skip into a choice (taking
        # back the slot whose lease ran out), half the holders answer late, and each claimer
        # asks for a pair and answers.
        tasks: list[tuple[str, int, Any]] = []
        for index, ((_, headers), pair) in enumerate(zip(teams["skippers"], skipped, strict=True)):
            path = f"{pair['assignment_id']}/judgment"
            tasks.append(
                ("change", index, answer(live_app, headers, "PUT", path, {"choice": "left"}))
            )
        for index, ((_, headers), pair) in enumerate(zip(teams["holders"], held, strict=True)):
            if index % 2 == 0:
                path = f"{pair['assignment_id']}/judgment"
                tasks.append(
                    ("late", index, answer(live_app, headers, "POST", path, {"choice": "tie"}))
                )
        for index, (_, headers) in enumerate(teams["claimers"]):
            tasks.append(("claim", index, claim_and_judge(live_app, headers, project_id)))
        random.Random(seed).shuffle(tasks)
        results = await asyncio.gather(*(task for _, _, task in tasks))
        outcome = {
            (kind, index): result for (kind, index, _), result in zip(tasks, results, strict=True)
        }
    finally:
        clock.reset()

    stored = await judgments_by_rater(project_id)
    per_pair = Counter(pair_id for _, pair_id in stored)
    assert max(per_pair.values()) == 1, "a pair holds more than k judgments"
    acknowledged: set[tuple[int, int]] = set()
    for (kind, index), result in outcome.items():
        if result is None:
            continue  # a claimer found no pair left
        status, body = result
        assert status in (200, 201, 409), body
        if status == 409:
            continue
        rater = teams[{"change": "skippers", "late": "holders", "claim": "claimers"}[kind]][index][
            0
        ]
        pair_id = body["pair_id"]
        acknowledged.add((rater, pair_id))
        assert stored[(rater, pair_id)].id == body["judgment_id"]
    # Exactly what was acknowledged is stored: no change lost, nothing extra.
    assert set(stored) == acknowledged
    return Counter(
        (kind, None if result is None else result[0]) for (kind, _), result in outcome.items()
    )


async def test_changes_racing_expiry_late_answers_and_claims(live_app: Any) -> None:
    # Each round checks k and every acknowledgement (in race); who wins a round depends on
    # the machine's timing, so that the race really was one (changes and claims or late
    # answers both won some pairs) is asked of the rounds together.
    kinds: Counter[tuple[str, int | None]] = Counter()
    for seed in range(4):
        kinds += await race(live_app, seed)
    assert kinds[("change", 200)] > 0 and kinds[("claim", 201)] + kinds[("late", 201)] > 0


async def test_choices_withdrawn_while_others_claim_keep_k(live_app: Any) -> None:
    async with session_factory(get_engine())() as session, session.begin():
        project = await make_project(session, raters_per_pair=2)
        await make_pairs(session, project, PAIRS // 2)
        raters = []
        for _ in range(PAIRS):
            user = await make_user(session)
            await add_member(session, project, user)
            raters.append((user.id, await bearer_headers(session, user)))
        project_id = project.id
    first, second = raters[: PAIRS // 2], raters[PAIRS // 2 :]
    judged = [await claim_and_judge(live_app, headers, project_id) for _, headers in first]
    assert all(result is not None and result[0] == 201 for result in judged)
    withdrawn, claims = await asyncio.gather(
        asyncio.gather(
            *(
                answer(
                    live_app,
                    headers,
                    "PUT",
                    f"{result[1]['assignment_id']}/skip",
                    {"reason": "needs_expertise"},
                )
                for (_, headers), result in zip(first, judged, strict=True)
                if result is not None
            )
        ),
        asyncio.gather(*(claim_and_judge(live_app, headers, project_id) for _, headers in second)),
    )
    assert all(status == 200 for status, _ in withdrawn)
    stored = await judgments_by_rater(project_id)
    assert not any(rater in {r for r, _ in first} for rater, _ in stored), "a withdrawn choice"
    acknowledged = {
        (rater, result[1]["pair_id"])
        for (rater, _), result in zip(second, claims, strict=True)
        if result is not None and result[0] == 201
    }
    assert set(stored) == acknowledged
    assert max(Counter(pair for _, pair in stored).values()) <= 2
