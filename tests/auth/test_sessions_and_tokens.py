"""Cookie sessions and API tokens: login, expiry, logout, throttling, revocation; invites."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
from httpx import AsyncClient
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.auth.deps import SESSION_COOKIE
from pickwise.core import clock
from pickwise.core.config import get_settings
from tests.factories import PASSWORD, bearer_headers, make_project, make_user


@pytest.fixture(autouse=True)
def reset_clock() -> Iterator[None]:
    clock.reset()
    yield
    clock.reset()


async def log_in(client: AsyncClient, email: str, password: str = PASSWORD) -> int:
    response = await client.post("/login", data={"email": email, "password": password})
    return response.status_code


async def test_login_sets_hardened_cookie_and_session_works(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, password=PASSWORD)
    response = await client.post("/login", data={"email": user.email.upper(), "password": PASSWORD})
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http in development
    me = await client.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["email"] == user.email


async def test_wrong_password_and_unknown_user_look_the_same(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, password=PASSWORD)
    wrong = await client.post("/login", data={"email": user.email, "password": "nope-nope"})
    unknown = await client.post("/login", data={"email": "who@x.org", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password" in wrong.text and "Wrong email or password" in unknown.text
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_repeated_failures_are_slowed_down(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, password=PASSWORD)
    for _ in range(5):
        assert await log_in(client, user.email, "wrong-password") == 401
    # Even the right password is refused for a while after five failures.
    assert await log_in(client, user.email) == 429
    clock.advance(timedelta(minutes=16))
    assert await log_in(client, user.email) == 303


async def test_session_expires(client: AsyncClient, session: AsyncSession) -> None:
    user = await make_user(session, password=PASSWORD)
    assert await log_in(client, user.email) == 303
    assert (await client.get("/api/v1/me")).status_code == 200
    clock.advance(timedelta(days=15))
    assert (await client.get("/api/v1/me")).status_code == 401
    page = await client.get("/")
    assert page.status_code == 303 and page.headers["location"] == "/login"


async def test_logout_ends_the_session(client: AsyncClient, session: AsyncSession) -> None:
    user = await make_user(session, password=PASSWORD)
    await log_in(client, user.email)
    home = await client.get("/")
    token = home.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    old_cookie = client.cookies.get(SESSION_COOKIE)
    response = await client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303
    client.cookies.set(SESSION_COOKIE, old_cookie or "")
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_cookie_post_without_csrf_token_is_refused(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, password=PASSWORD)
    await log_in(client, user.email)
    response = await client.post("/api/v1/tokens", json={"name": "x"})
    assert response.status_code == 403
    assert "security token" in response.json()["detail"]


async def test_api_token_shown_once_then_revoked(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session)
    headers = await bearer_headers(session, user)
    created = await client.post("/api/v1/tokens", json={"name": "script"}, headers=headers)
    assert created.status_code == 201
    new_token = created.json()["token"]
    listed = await client.get("/api/v1/tokens", headers=headers)
    assert new_token not in listed.text
    new_headers = {"Authorization": f"Bearer {new_token}"}
    assert (await client.get("/api/v1/me", headers=new_headers)).status_code == 200
    revoked = await client.delete(f"/api/v1/tokens/{created.json()['id']}", headers=headers)
    assert revoked.status_code == 204
    assert (await client.get("/api/v1/me", headers=new_headers)).status_code == 401
    bogus = {"Authorization": "Bearer pw_not-a-token"}
    assert (await client.get("/api/v1/me", headers=bogus)).status_code == 401


async def test_expiring_token(client: AsyncClient, session: AsyncSession) -> None:
    user = await make_user(session)
    headers = await bearer_headers(session, user)
    created = await client.post(
        "/api/v1/tokens", json={"name": "short", "expires_days": 1}, headers=headers
    )
    short = {"Authorization": f"Bearer {created.json()['token']}"}
    assert (await client.get("/api/v1/me", headers=short)).status_code == 200
    clock.advance(timedelta(days=2))
    assert (await client.get("/api/v1/me", headers=short)).status_code == 401


async def test_raters_see_only_their_projects_and_no_admin_routes(
    client: AsyncClient, session: AsyncSession
) -> None:
    from tests.factories import add_member

    mine = await make_project(session)
    await make_project(session)
    rater = await make_user(session)
    await add_member(session, mine, rater)
    headers = await bearer_headers(session, rater)
    listed = await client.get("/api/v1/projects", headers=headers)
    assert [project["id"] for project in listed.json()] == [mine.id]
    for method, url in [
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/projects"),
        ("PATCH", f"/api/v1/projects/{mine.id}"),
        ("GET", f"/api/v1/projects/{mine.id}/members"),
        ("POST", "/api/v1/invites"),
    ]:
        response = await client.request(method, url, headers=headers, json={})
        assert response.status_code == 403, (method, url, response.text)


async def test_admin_creates_rater_and_invite(client: AsyncClient, session: AsyncSession) -> None:
    admin = await make_user(session, role="admin")
    project = await make_project(session)
    # A failed request rolls the shared test session back, which expires loaded objects.
    project_id = project.id
    headers = await bearer_headers(session, admin)
    created = await client.post(
        "/api/v1/users",
        json={
            "email": "new@example.org",
            "display_name": "New",
            "password": "long-enough-pw",
            "project_ids": [project_id],
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    duplicate = await client.post(
        "/api/v1/users",
        json={"email": "NEW@example.org", "display_name": "Dup", "password": "long-enough-pw"},
        headers=headers,
    )
    assert duplicate.status_code == 409 and "email" in duplicate.json()["detail"]
    invite = await client.post(
        "/api/v1/invites",
        json={"email": "inv@example.org", "project_id": project_id},
        headers=headers,
    )
    assert invite.status_code == 201
    path = invite.json()["url"].split("://", 1)[1].split("/", 1)[1]
    accept = await client.post(
        f"/{path}", data={"display_name": "Invited", "password": "invited-password"}
    )
    assert accept.status_code == 303
    me = await client.get("/api/v1/me")
    assert me.json()["email"] == "inv@example.org"
    again = await client.get(f"/{path}")
    assert again.status_code == 403 and "already been used" in again.text


async def test_pending_invites_are_listed_copied_again_and_withdrawn(
    client: AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await make_user(session, role="admin")
    headers = await bearer_headers(session, admin)
    made = (
        await client.post("/api/v1/invites", json={"email": "late@example.org"}, headers=headers)
    ).json()
    used = (
        await client.post("/api/v1/invites", json={"email": "quick@example.org"}, headers=headers)
    ).json()
    used_path = "/" + used["url"].split("://", 1)[1].split("/", 1)[1]
    accept = await client.post(
        used_path, data={"display_name": "Quick", "password": "quick-password"}
    )
    assert accept.status_code == 303
    client.cookies.clear()

    pending = (await client.get("/api/v1/invites", headers=headers)).json()
    # The used one is gone; the other's link is the same as when it was made.
    assert [(i["id"], i["email"], i["url"]) for i in pending] == [
        (made["id"], "late@example.org", made["url"])
    ]
    path = "/" + made["url"].split("://", 1)[1].split("/", 1)[1]
    assert (await client.get(path)).status_code == 200

    # With another secret key the link cannot be made again: the list says so (no url).
    monkeypatch.setattr(get_settings(), "secret_key", SecretStr("another-secret-key-for-this-test"))
    assert (await client.get("/api/v1/invites", headers=headers)).json()[0]["url"] is None
    monkeypatch.undo()

    withdrawn = await client.delete(f"/api/v1/invites/{made['id']}", headers=headers)
    assert withdrawn.status_code == 204
    assert (await client.get("/api/v1/invites", headers=headers)).json() == []
    refused = await client.get(path)
    assert refused.status_code == 403 and "withdrawn" in refused.text
    again = await client.delete(f"/api/v1/invites/{made['id']}", headers=headers)
    assert again.status_code == 404
