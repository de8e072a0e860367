"""Big projects, with real commits: the old snapshot is answered at once while one worker
recomputes in the background (stale-while-revalidate), and never two at a time."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient

from pickwise.analytics import snapshots
from pickwise.analytics.schemas import ProgressRead
from pickwise.analytics.service import progress
from pickwise.core.db import get_engine, session_factory
from pickwise.models import Project
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user


@pytest.fixture(autouse=True)
def every_project_is_big(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(snapshots, "INLINE_MAX_JUDGMENTS", 0)
    yield


class Live:
    def __init__(self, app: Any, project_id: int, admin: dict[str, str], rater: dict[str, str]):
        self.app, self.project_id, self.admin, self.rater = app, project_id, admin, rater

    def client(self, headers: dict[str, str]) -> AsyncClient:
        transport = ASGITransport(app=self.app)
        return AsyncClient(transport=transport, base_url="http://test", headers=headers)

    async def vote(self, times: int = 1) -> None:
        async with self.client(self.rater) as client:
            for _ in range(times):
                lease = (await client.get(f"/api/v1/projects/{self.project_id}/next")).json()
                answer = await client.post(
                    f"/api/v1/assignments/{lease['assignment_id']}/judgment",
                    json={"choice": "left"},
                )
                assert answer.status_code == 201, answer.text

    async def get(self, path: str) -> Any:
        async with self.client(self.admin) as client:
            return await client.get(f"/api/v1/projects/{self.project_id}/analytics/{path}")


async def live_project(live_app: Any) -> Live:
    async with session_factory(get_engine())() as session, session.begin():
        project = await make_project(session)
        await make_pairs(session, project, 10)
        rater, admin = await make_user(session), await make_user(session, role="admin")
        await add_member(session, project, rater)
        return Live(
            live_app,
            project.id,
            await bearer_headers(session, admin),
            await bearer_headers(session, rater),
        )


async def test_a_stale_snapshot_is_answered_at_once_and_recomputed_behind(
    live_app: Any,
) -> None:
    live = await live_project(live_app)
    await live.vote(3)
    first = (await live.get("leaderboard")).json()  # nothing stored yet: computed now
    assert first["snapshot"]["fresh"] is True and first["votes"] == 3

    await live.vote(2)
    stale = (await live.get("leaderboard")).json()

    assert stale["snapshot"]["fresh"] is False
    assert stale["snapshot"]["votes_since"] == 2
    assert stale["snapshot"]["refreshing"] is True
    assert stale["votes"] == 3  # the old figures, at once
    await snapshots.settle()
    fresh = (await live.get("leaderboard")).json()
    assert fresh["snapshot"]["fresh"] is True and fresh["votes"] == 5
    assert fresh["snapshot"]["computed_at"] > first["snapshot"]["computed_at"]


async def test_the_dashboard_of_a_big_project_never_waits_for_the_first_computation(
    live_app: Any,
) -> None:
    live = await live_project(live_app)
    await live.vote(2)
    async with live.client(live.admin) as client:
        url = f"/admin/projects/{live.project_id}/dashboard"
        pending = await client.get(url)
        assert pending.status_code == 202
        assert '<meta http-equiv="refresh"' in pending.text
        await snapshots.settle()
        ready = await client.get(url)
        assert ready.status_code == 200
        assert "As of" in ready.text and "up to date" in ready.text


async def test_refresh_of_a_big_project_runs_in_the_background(live_app: Any) -> None:
    live = await live_project(live_app)
    await live.vote(1)
    await live.get("progress")
    await live.vote(1)
    async with live.client(live.admin) as client:
        answer = await client.post(f"/api/v1/projects/{live.project_id}/analytics/refresh")
    assert answer.status_code == 202
    await snapshots.settle()
    body = (await live.get("progress")).json()
    assert body["judgments"] == 2 and body["snapshot"]["fresh"] is True


async def test_two_workers_never_compute_the_same_snapshot_at_once(live_app: Any) -> None:
    live = await live_project(live_app)
    computing = 0
    most_at_once = 0
    runs = 0

    async def slow_progress(connection: Any, project: Project) -> ProgressRead:
        nonlocal computing, most_at_once, runs
        computing += 1
        runs += 1
        most_at_once = max(most_at_once, computing)
        await asyncio.sleep(0.3)
        computing -= 1
        return await progress(connection, project.id)

    recipe = snapshots.Recipe("test-progress", ProgressRead, slow_progress)
    # Two workers noticing the same stale snapshot at the same moment.
    await asyncio.gather(
        snapshots._refresh(live.project_id, recipe), snapshots._refresh(live.project_id, recipe)
    )
    assert (runs, most_at_once) == (1, 1)
    await snapshots._refresh(live.project_id, recipe)  # the lock was given back
    assert runs == 2
