"""The API tokens page: any logged-in user lists, creates and revokes their own tokens."""

import re

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.auth import service as auth_service
from pickwise.models import ApiToken
from tests.factories import PASSWORD, make_user

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SHOWN_TOKEN = re.compile(r'<code class="secret">(pw_[^<]+)</code>')


async def log_in(client: AsyncClient, email: str) -> str:
    """Logs in with the cookie and returns the session's CSRF token."""
    response = await client.post("/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 303
    match = CSRF.search((await client.get("/account/tokens")).text)
    assert match
    return match.group(1)


async def test_tokens_page_needs_a_login(client: AsyncClient, app: FastAPI) -> None:
    response = await client.get(app.url_path_for("account_tokens"))
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


async def test_rater_creates_uses_and_revokes_a_token(
    client: AsyncClient, session: AsyncSession, app: FastAPI
) -> None:
    rater = await make_user(session, password=PASSWORD)
    csrf = await log_in(client, rater.email)
    empty = await client.get("/account/tokens")
    assert empty.status_code == 200 and "You have no API tokens yet." in empty.text

    created = await client.post(
        "/account/tokens", data={"csrf_token": csrf, "name": "<i>script</i>", "expires_days": "30"}
    )
    assert created.status_code == 200
    match = SHOWN_TOKEN.search(created.text)
    assert match
    token = match.group(1)
    assert "&lt;i&gt;script&lt;/i&gt;" in created.text and "<i>script</i>" not in created.text
    listed = await client.get("/account/tokens")
    assert token not in listed.text and token[:10] in listed.text  # shown once, then the prefix
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/me", headers=bearer)).status_code == 200

    api_token = await session.scalar(select(ApiToken).where(ApiToken.user_id == rater.id))
    assert api_token is not None and api_token.expires_at is not None
    revoked = await client.post(f"/account/tokens/{api_token.id}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303
    assert revoked.headers["location"] == app.url_path_for("account_tokens") + "?done=revoked"
    assert (await client.get("/api/v1/me", headers=bearer)).status_code == 401
    page = await client.get(revoked.headers["location"])
    assert "Token revoked." in page.text and "revoked <time" in page.text


async def test_bad_token_input_is_named(client: AsyncClient, session: AsyncSession) -> None:
    rater = await make_user(session, password=PASSWORD)
    csrf = await log_in(client, rater.email)
    response = await client.post(
        "/account/tokens", data={"csrf_token": csrf, "name": " ", "expires_days": "0"}
    )
    assert response.status_code == 422
    assert 'id="token_name-error"' in response.text
    assert 'id="token_expires_days-error"' in response.text
    assert await session.scalar(select(ApiToken).where(ApiToken.user_id == rater.id)) is None


async def test_admins_cannot_revoke_others_tokens_here(
    client: AsyncClient, session: AsyncSession
) -> None:
    admin = await make_user(session, role="admin", password=PASSWORD)
    other = await make_user(session)
    _, other_token = await auth_service.create_api_token(session, other, "theirs")
    other_token_id = other_token.id
    await session.commit()  # the refused request rolls back to here
    csrf = await log_in(client, admin.email)
    response = await client.post(
        f"/account/tokens/{other_token_id}/revoke", data={"csrf_token": csrf}
    )
    assert response.status_code == 404
    still = await session.get(ApiToken, other_token_id, populate_existing=True)
    assert still is not None and still.revoked_at is None


async def test_cookie_post_without_csrf_token_is_refused(
    client: AsyncClient, session: AsyncSession
) -> None:
    rater = await make_user(session, password=PASSWORD)
    rater_id = rater.id
    await session.commit()  # the refused request rolls back to here
    await log_in(client, rater.email)
    response = await client.post("/account/tokens", data={"name": "sneaky"})
    assert response.status_code == 403
    assert await session.scalar(select(ApiToken).where(ApiToken.user_id == rater_id)) is None
