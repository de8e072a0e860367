"""The analytics benchmark's 200-model part: a project recomputed whole (what a snapshot
holds), and its dashboard and leaderboard read from the snapshot over HTTP."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from bench import datagen
from bench.app_server import serve
from bench.measure import percentile
from pickwise.core.embedded_pg import to_sqlalchemy_url


async def recompute(url: str, project_id: int, *, by_section: bool) -> dict[str, float]:
    """Seconds of a full recompute, stored as the dashboard's snapshot; with ``by_section``
    each section is also computed on its own, to show where the time goes."""
    from pickwise.analytics import recipes, service, snapshots
    from pickwise.analytics.repository import read_only_connection
    from pickwise.models import Project

    engine = create_async_engine(to_sqlalchemy_url(url))
    timings: dict[str, float] = {}
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            project = await session.get(Project, project_id)
            assert project is not None
            async with read_only_connection(engine) as connection:
                started, cpu = time.perf_counter(), time.process_time()
                await snapshots.compute_and_store(connection, session, project, recipes.REPORT)
                timings["report"] = time.perf_counter() - started
                # All threads of this process: what the computation costs whatever the load.
                timings["report_cpu"] = time.process_time() - cpu
            await session.commit()
            if by_section:
                sections: dict[str, Callable[[Any], Awaitable[Any]]] = {
                    "progress": lambda c: service.progress(c, project),
                    "timeline": lambda c: service.timeline(c, project_id),
                    "raters": lambda c: service.raters(c, project),
                    "agreement": lambda c: service.agreement(c, project_id),
                    "leaderboard": lambda c: service.leaderboard(c, project_id),
                    "preferences": lambda c: service.preferences(c, project_id),
                }
                for name, work in sections.items():
                    async with read_only_connection(engine) as connection:
                        started = time.perf_counter()
                        await work(connection)
                        timings[name] = time.perf_counter() - started
    finally:
        await engine.dispose()
    return timings


def cached_reads(
    url: str, setup: datagen.Setup, reads: int, workdir: Path
) -> dict[str, list[float]]:
    """Seconds per read, from `pickwise serve` (one worker) on a loopback port: the dashboard
    page and the leaderboard API from the stored snapshot, and /api/v1/me beside them."""
    paths = {
        "dashboard": f"/admin/projects/{setup.project_id}/dashboard",
        "leaderboard": f"/api/v1/projects/{setup.project_id}/analytics/leaderboard",
        "me": "/api/v1/me",
    }
    seconds: dict[str, list[float]] = {name: [] for name in paths}
    headers = {"Authorization": f"Bearer {setup.admin_token}"}
    with (
        serve(url, workers=1, log=workdir / "serve-analytics.log") as app,
        httpx.Client(base_url=app.base_url, headers=headers, timeout=60) as client,
    ):
        for path in paths.values():  # warm: imports, prepared statements, caches
            assert client.get(path).status_code == 200, path
        for _ in range(reads):
            for name, path in paths.items():
                started = time.perf_counter()
                response = client.get(path)
                seconds[name].append(time.perf_counter() - started)
                assert response.status_code == 200, (path, response.status_code)
        snapshot = client.get(paths["leaderboard"]).json()["snapshot"]
        assert snapshot["fresh"], "the reads must come from an up-to-date snapshot"
    return seconds


def p95_ms(values: list[float]) -> float | None:
    found = percentile(values, 0.95)
    return None if found is None else found * 1000


def run_recompute(url: str, project_id: int, *, by_section: bool) -> dict[str, float]:
    return asyncio.run(recompute(url, project_id, by_section=by_section))
