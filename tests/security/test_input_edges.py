"""Inputs the contract fuzzer found answered with a 500, now refused with a 4xx, and the error
shape the OpenAPI schema documents."""

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import Project
from tests.factories import PASSWORD, bearer_headers, make_project, make_user

BEYOND_BIGINT = 2**70


async def admin_headers(client: AsyncClient, session: AsyncSession) -> dict[str, str]:
    headers = await bearer_headers(session, await make_user(session, role="admin"))
    # Released from the test's savepoint, so a request that fails (and rolls back) keeps it.
    await session.commit()
    return headers


async def test_ids_beyond_the_database_range_are_invalid_input(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session)
    headers = await admin_headers(client, session)
    for path in (
        f"/api/v1/projects/{BEYOND_BIGINT}",
        f"/api/v1/projects/{BEYOND_BIGINT}/batches",
        f"/api/v1/projects/{project.id}/webhooks/{BEYOND_BIGINT}/deliveries",
    ):
        response = await client.get(path, headers=headers)
        assert response.status_code == 422, path
        assert response.json()["error"] == "InvalidInput"


async def test_an_out_of_range_id_on_a_page_gets_the_error_page(
    client: AsyncClient, session: AsyncSession
) -> None:
    admin = await make_user(session, role="admin", password=PASSWORD)
    await client.post("/login", data={"email": admin.email, "password": PASSWORD})
    response = await client.get(f"/admin/projects/{BEYOND_BIGINT}")
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")


async def test_text_with_a_nul_character_is_invalid_input(
    client: AsyncClient, session: AsyncSession
) -> None:
    headers = await admin_headers(client, session)
    response = await client.post(
        "/api/v1/projects", json={"slug": "nul", "name": "a\x00b"}, headers=headers
    )
    assert response.status_code == 422
    # The request's session was rolled back; the next request works.
    assert (await client.get("/api/v1/projects", headers=headers)).status_code == 200


async def test_label_lists_are_checked_on_update_as_on_create(
    client: AsyncClient, session: AsyncSession
) -> None:
    project: Project = await make_project(session, strength_scale=["a bit", "a lot"])
    headers = await admin_headers(client, session)
    path = f"/api/v1/projects/{project.id}"
    bad: list[dict[str, Any]] = [
        {"strength_scale": [f"level {n}" for n in range(11)]},
        {"strength_scale": ["a bit", " "]},
        {"criteria": ["tone", "tone "]},
        {"criteria": [f"c{n}" for n in range(21)]},
    ]
    for body in bad:
        response = await client.patch(path, json=body, headers=headers)
        assert response.status_code == 422, body
    good = await client.patch(path, json={"criteria": [" tone ", "accuracy"]}, headers=headers)
    assert good.status_code == 200
    assert good.json()["criteria"] == ["tone", "accuracy"]
    assert good.json()["strength_scale"] == ["a bit", "a lot"]


async def test_an_invite_to_a_missing_project_is_not_found(
    client: AsyncClient, session: AsyncSession
) -> None:
    headers = await admin_headers(client, session)
    response = await client.post(
        "/api/v1/invites",
        json={"email": "new@example.org", "project_id": 987654},
        headers=headers,
    )
    assert response.status_code == 404
    assert response.json()["detail"].startswith("project_id:")
    assert response.json()["field"] == "project_id"


def test_the_schema_documents_the_error_bodies_the_api_sends(app: FastAPI) -> None:
    schema = app.openapi()
    error_ref = "#/components/schemas/ErrorRead"
    for path, operations in schema["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            for status in ("401", "403", "404", "422"):
                content = operation["responses"][status]["content"]["application/json"]
                assert content["schema"] == {"$ref": error_ref}, (method, path, status)
    assert set(schema["components"]["schemas"]["ErrorRead"]["required"]) == {"error", "detail"}
