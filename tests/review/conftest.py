"""Review pages read rater statistics through the analytics' own read-only connection; here
they read through the test's connection, so they see the test's uncommitted data."""

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from pickwise.analytics.router import analytics_connection


@pytest.fixture
def app(app: FastAPI, session: AsyncSession) -> FastAPI:
    async def test_connection() -> AsyncIterator[AsyncConnection]:
        yield await session.connection()

    app.dependency_overrides[analytics_connection] = test_connection
    return app
