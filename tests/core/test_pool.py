import asyncio

from sqlalchemy import event, text

from pickwise.core.config import get_settings
from pickwise.core.db import make_engine

RATERS = 16  # the rater-loop benchmark's middle concurrency


async def test_a_warm_pool_opens_no_connections_at_sixteen_requests_in_flight(
    database_url: str,
) -> None:
    """Connections past the pool are closed when they come back, so load that keeps more
    requests in flight than the pool holds opens a new Postgres backend request by request.
    The default pool must hold a worker's usual concurrency."""
    assert get_settings().db_pool_size >= RATERS
    engine = make_engine(database_url)
    opened: list[object] = []
    event.listen(engine.sync_engine.pool, "connect", lambda conn, record: opened.append(conn))
    all_in = asyncio.Barrier(RATERS)

    async def request(index: int) -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            await all_in.wait()  # every request holds a connection at the same time
            await asyncio.sleep(index * 0.001)  # and they come back one by one

    try:
        for _ in range(4):
            await asyncio.gather(*(request(index) for index in range(RATERS)))
        assert len(opened) == RATERS
    finally:
        await engine.dispose()


async def test_the_next_unit_of_work_runs_on_the_connection_returned_last(
    database_url: str,
) -> None:
    """With several connections idle, a unit of work that follows another (an answer, then
    the next lease) gets the same Postgres backend back, the one that has just run, not the
    one idle longest."""
    engine = make_engine(database_url)
    idle = 3
    all_in = asyncio.Barrier(idle)

    async def hold_one() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            await all_in.wait()

    async def backend() -> int:
        async with engine.connect() as connection:
            return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())

    try:
        await asyncio.gather(*(hold_one() for _ in range(idle)))  # three connections idle
        first = await backend()
        assert [await backend() for _ in range(idle)] == [first] * idle
    finally:
        await engine.dispose()
