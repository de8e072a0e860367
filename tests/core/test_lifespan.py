"""The app's one lifespan: the webhook worker runs while the app serves, and at shutdown it
stops and the connection pools are closed."""

import asyncio

from pickwise.app import create_app
from pickwise.core.db import get_background_engine, get_engine


def worker_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "webhook-worker" and not t.done()]


async def test_the_lifespan_runs_the_worker_and_closes_the_pools(database_url: str) -> None:
    app = create_app()
    engine = get_engine()
    async with engine.connect():
        pass
    assert engine.pool.checkedin() == 1
    async with app.router.lifespan_context(app):
        assert len(worker_tasks()) == 1
    assert worker_tasks() == []
    # Disposed: the pools were replaced by empty ones.
    assert engine.pool.checkedin() == 0
    assert get_background_engine().pool.checkedin() == 0
