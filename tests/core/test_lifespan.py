"""The app's one lifespan: the webhook worker and the search catch-up run while the app
serves, woken through one listening connection, and at shutdown they stop and that
connection and the connection pools are closed; what startup made is
frozen out of the garbage collector's scans; what the first requests of a new worker would
build is built before it serves."""

import asyncio
import gc
from typing import Any

import fastapi.routing
import httpx
import psycopg
import pytest

from pickwise.app import create_app
from pickwise.core.db import get_background_engine, get_engine
from pickwise.core.embedded_pg import to_libpq_url
from pickwise.core.wakeups import APPLICATION_NAME
from pickwise.web.templating import templates


def worker_tasks(name: str = "webhook-worker") -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == name and not t.done()]


def listening_connections(database_url: str) -> int:
    with psycopg.connect(to_libpq_url(database_url), autocommit=True) as admin:
        [(count,)] = admin.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = %s AND datname = current_database()",
            [APPLICATION_NAME],
        ).fetchall()
    return int(count)


async def test_the_lifespan_runs_the_worker_and_closes_the_pools(database_url: str) -> None:
    app = create_app()
    engine = get_engine()
    # Earlier tests may have left connections in the shared pool: start from an empty one.
    await engine.dispose()
    async with engine.connect():
        pass
    assert engine.pool.checkedin() == 1
    async with app.router.lifespan_context(app):
        assert len(worker_tasks()) == 1
        assert len(worker_tasks("search-catch-up")) == 1
        assert len(worker_tasks("background-wake-ups")) == 1
        # The loops' one listening connection (core.wakeups) is up once it listens.
        for _ in range(200):
            if listening_connections(database_url) == 1:
                break
            await asyncio.sleep(0.05)
        assert listening_connections(database_url) == 1
    assert worker_tasks() == []
    assert worker_tasks("search-catch-up") == []
    assert worker_tasks("background-wake-ups") == []
    # Closed with the lifespan, not left for Postgres to notice.
    for _ in range(200):
        if listening_connections(database_url) == 0:
            break
        await asyncio.sleep(0.05)
    assert listening_connections(database_url) == 0
    # Disposed: the pools were replaced by empty ones.
    assert engine.pool.checkedin() == 0
    assert get_background_engine().pool.checkedin() == 0


async def test_the_objects_of_startup_are_left_out_of_garbage_collection(
    database_url: str,
) -> None:
    gc.unfreeze()
    app = create_app()
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


async def test_the_young_generation_is_collected_less_often_while_the_app_serves(
    database_url: str,
) -> None:
    from pickwise.app import YOUNG_GC_THRESHOLD

    before = gc.get_threshold()
    app = create_app()
    async with app.router.lifespan_context(app):
        assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, *before[1:])
        assert YOUNG_GC_THRESHOLD >= 10 * 700  # ten times Python's default
    assert gc.get_threshold() == before


async def test_each_worker_builds_its_routes_and_rating_pages_before_it_serves(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new worker's first rating page made FastAPI's included routes (the routers tried
    before the rating page's) and compiled the page's templates: ~0.2 s of CPU in the first
    rater's request, once per worker. The lifespan does it before the app serves."""
    app = create_app()
    templates.env.cache.clear()
    built: list[str] = []
    compiled: list[str] = []
    make_route = fastapi.routing._EffectiveRouteContext.from_api_route
    get_source = templates.env.loader.get_source  # type: ignore[union-attr]

    def counting_route(**kwargs: Any) -> Any:
        built.append(kwargs["original_route"].path)
        return make_route(**kwargs)

    def counting_source(environment: Any, name: str) -> Any:
        compiled.append(name)
        return get_source(environment, name)

    monkeypatch.setattr(fastapi.routing._EffectiveRouteContext, "from_api_route", counting_route)
    monkeypatch.setattr(templates.env.loader, "get_source", counting_source)
    async with app.router.lifespan_context(app):
        assert len(built) > 100
        assert "rate/pair.html" in compiled
        built.clear()
        compiled.clear()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await client.get(str(app.url_path_for("rate_page", project_id=1)))
        for name in ("rate/pair.html", "rate/summary.html"):
            templates.env.get_template(name)
    assert built == []
    assert compiled == []
