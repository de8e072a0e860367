"""Many raters at once against real commits: every pair ends with exactly k judgments."""

import asyncio
from collections import Counter
from typing import Any

from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from pickwise.core.db import get_engine, session_factory
from pickwise.models import Judgment
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user

RATERS = 60
PAIRS = 40
K = 3


async def rate_until_done(app: Any, headers: dict[str, str], project_id: int) -> list[int]:
    acknowledged: list[int] = []
    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="http://test", headers=headers) as c:
        while True:
            body = (await c.get(f"/api/v1/projects/{project_id}/next")).json()
            if body["assignment_id"] is None:
                return acknowledged
            response = await c.post(
                f"/api/v1/assignments/{body['assignment_id']}/judgment",
                json={"choice": "left"},
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
