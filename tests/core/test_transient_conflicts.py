"""A deadlock Postgres breaks is not "the database is unavailable": the loser gets a 503 that
says it collided with another request, with Retry-After, and nothing it did is kept."""

import asyncio
from typing import Any

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text

from pickwise.core.db import get_engine
from pickwise.core.deps import SessionDep


def app_with_crossed_locks(live_app: Any) -> FastAPI:
    """Two routes taking the same two locks in opposite orders: run together, Postgres
    finds the deadlock and rolls one of them back."""
    app: FastAPI = live_app
    both_hold_one = asyncio.Barrier(2)

    async def crossed(session: SessionDep, first: int, second: int) -> dict[str, str]:
        await session.execute(text("SELECT pg_advisory_xact_lock(-99, :n)"), {"n": first})
        await both_hold_one.wait()
        await session.execute(text("SELECT pg_advisory_xact_lock(-99, :n)"), {"n": second})
        return {"ok": "yes"}

    @app.post("/api/v1/test-crossed/{order}")
    async def crossed_route(order: str, session: SessionDep) -> dict[str, str]:
        return await crossed(session, *((1, 2) if order == "ab" else (2, 1)))

    return app


async def test_a_deadlock_is_answered_as_a_retryable_transient_conflict(live_app: Any) -> None:
    app = app_with_crossed_locks(live_app)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        answers = await asyncio.gather(
            client.post("/api/v1/test-crossed/ab"), client.post("/api/v1/test-crossed/ba")
        )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200, 503], [answer.text for answer in answers]
    loser = next(answer for answer in answers if answer.status_code == 503)
    body = loser.json()
    assert body["error"] == "TransientConflict"
    assert "deadlock detected" in body["detail"] and "nothing was stored" in body["detail"]
    assert loser.headers["retry-after"] == "1"
    await get_engine().dispose()
