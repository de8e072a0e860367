"""The admin page for study links, webhooks and chat endpoints."""

import re

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.auth import service as auth_service
from pickwise.auth.deps import SESSION_COOKIE
from pickwise.models import GenerationEndpoint, RaterPool, User, Webhook
from tests.factories import make_project, make_user


async def cookie_login(client: AsyncClient, session: AsyncSession, user: User) -> str:
    """Logs `user` in with a session cookie and returns its CSRF token."""
    token, web_session = await auth_service.start_session(session, user)
    client.cookies.set(SESSION_COOKIE, token)
    return web_session.csrf_token


async def test_admin_makes_a_link_a_webhook_and_an_endpoint(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    project = await make_project(session)
    project_id = str(project.id)
    csrf = await cookie_login(client, session, await make_user(session, role="admin"))
    page_path = app.url_path_for("integrations_page", project_id=project_id)
    assert (await client.get(page_path)).status_code == 200

    made = await client.post(
        f"{page_path}/pools",
        data={"csrf_token": csrf, "name": "Wave 1", "quota": "10", "completion_code": "XYZ"},
    )
    assert made.status_code == 200
    prolific_url = re.search(r'id="prolific-url">([^<]+)<', made.text)
    assert prolific_url and "/join/" in prolific_url.group(1)
    assert "PROLIFIC_PID={{%PROLIFIC_PID%}}" in prolific_url.group(1)
    pool = await session.scalar(select(RaterPool).where(RaterPool.project_id == project.id))
    assert pool is not None and pool.quota == 10 and pool.completion_code == "XYZ"
    # The page shows the link only in the answer that made it.
    assert "prolific-url" not in (await client.get(page_path)).text

    hook = await client.post(
        f"{page_path}/webhooks",
        data={
            "csrf_token": csrf,
            "url": "https://example.org/hook",
            "events": ["batch.completed", "export.ready"],
        },
    )
    assert hook.status_code == 200
    secret = re.search(r'id="webhook-secret">([^<]+)<', hook.text)
    webhook = await session.scalar(select(Webhook).where(Webhook.project_id == project.id))
    assert webhook is not None and secret and secret.group(1) == webhook.secret
    assert webhook.events == ["batch.completed", "export.ready"]

    endpoint = await client.post(
        f"{page_path}/endpoints",
        data={
            "csrf_token": csrf,
            "base_url": "http://127.0.0.1:9/v1",
            "model": "tiny-chat",
            "api_key_env": "TINY_API_KEY",
            "temperature": "0.7",
            "top_p": "",
        },
    )
    assert endpoint.status_code == 303
    stored = await session.scalar(
        select(GenerationEndpoint).where(GenerationEndpoint.project_id == project.id)
    )
    assert stored is not None and stored.name == "tiny-chat" and stored.temperature == 0.7
    assert stored.top_p is None and stored.api_key_env == "TINY_API_KEY"

    invalid = await client.post(
        f"{page_path}/endpoints",
        data={"csrf_token": csrf, "base_url": "ftp://x", "model": "m", "api_key_env": "bad key"},
    )
    assert invalid.status_code == 422 and "base_url" in invalid.text

    page = (await client.get(page_path)).text
    assert "Wave 1" in page and "https://example.org/hook" in page and "$TINY_API_KEY" in page


async def test_forms_need_the_csrf_token_and_an_admin(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    project = await make_project(session)
    page_path = app.url_path_for("integrations_page", project_id=str(project.id))
    await cookie_login(client, session, await make_user(session, role="admin"))
    refused = await client.post(f"{page_path}/pools", data={"name": "x", "quota": "1"})
    assert refused.status_code == 403

    client.cookies.clear()
    await cookie_login(client, session, await make_user(session))
    assert (await client.get(page_path)).status_code == 403
