"""The app's one lifespan: the webhook worker and the search catch-up run while the app
serves, and at shutdown they stop and the connection pools are closed; what startup made is
frozen out of the garbage collector's scans."""

import asyncio
import gc

from pickwise.app import create_app
from pickwise.core.db import get_background_engine, get_engine


def worker_tasks(name: str = "webhook-worker") -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == name and not t.done()]


async def test_the_lifespan_runs_the_worker_and_closes_the_pools(database_url: str) -> None:
    app = create_app()
    engine = get_engine()
    async with engine.connect():
        pass
    assert engine.pool.checkedin() == 1
    async with app.router.lifespan_context(app):
        assert len(worker_tasks()) == 1
        assert len(worker_tasks("search-catch-up")) == 1
    assert worker_tasks() == []
    assert worker_tasks("search-catch-up") == []
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
