"""Addresses no route answers: a browser gets the site's error page, a client JSON."""

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import PASSWORD, make_user

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


async def test_a_browser_asking_for_no_such_page_gets_the_error_page(
    client: AsyncClient,
) -> None:
    response = await client.get("/projects", headers=BROWSER)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "Not found" in page
    assert "There is no page at this address." in page
    # The site's layout, so it reads at phone width and links back.
    assert 'name="viewport"' in page
    assert 'href="/"' in page


async def test_a_method_a_page_does_not_take_keeps_its_allow_header(
    client: AsyncClient,
) -> None:
    response = await client.delete("/login", headers=BROWSER)
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("text/html")
    assert "GET" in response.headers["allow"]


async def test_clients_still_get_json_for_an_unknown_address(client: AsyncClient) -> None:
    plain = await client.get("/projects")
    assert plain.status_code == 404
    assert plain.json() == {"detail": "Not Found"}
    api = await client.get("/api/v1/no-such-thing", headers=BROWSER)
    assert api.status_code == 404
    assert api.json() == {"detail": "Not Found"}


async def test_a_page_address_with_a_malformed_part_gets_the_error_page(
    client: AsyncClient, session: AsyncSession
) -> None:
    admin = await make_user(session, role="admin", password=PASSWORD)
    await client.post("/login", data={"email": admin.email, "password": PASSWORD})
    response = await client.get("/admin/projects/not-a-number/export", headers=BROWSER)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "project_id" in response.text
    as_client = await client.get("/admin/projects/not-a-number/export")
    assert as_client.status_code == 422
    assert as_client.json()["error"] == "InvalidInput"
