"""/healthz says the process is alive; /readyz that the database answers and is migrated."""

from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.health.service import migration_heads


async def test_healthz(client: AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_migrated_to_head(client: AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"
    assert all(head in response.json()["detail"] for head in migration_heads())


async def test_readyz_refuses_a_database_behind_the_code(
    client: AsyncClient, session: AsyncSession
) -> None:
    await session.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "not ready"
    assert (
        "older" in response.json()["detail"] and "pickwise db upgrade" in response.json()["detail"]
    )


async def test_readyz_refuses_a_database_that_is_down(
    database_down: None, client: AsyncClient
) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "not ready", "detail": "The database is unreachable."}
    assert (await client.get("/healthz")).status_code == 200
