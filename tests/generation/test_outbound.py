"""SSRF: chat endpoints may not point at internal addresses in production."""

import re

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.outbound import outbound_client, outbound_session
from pickwise.generation.chat import EndpointConfig, GenerationFailed, RetryPolicy, complete
from tests.factories import bearer_headers, make_project, make_user
from tests.generation.fake_openai import fake_openai


@pytest.mark.usefixtures("guarded")
async def test_endpoint_on_an_internal_address_is_a_422_naming_base_url(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    project = await make_project(session)
    headers = await bearer_headers(session, await make_user(session, role="admin"))
    await session.commit()  # a refused request rolls back what is not committed
    collection = app.url_path_for("create_endpoint", project_id=str(project.id))
    refused = await client.post(
        collection, json={"base_url": "http://localhost:11434/v1", "model": "m"}, headers=headers
    )
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith("base_url: localhost is a loopback address")
    made = await client.post(
        collection,
        json={"base_url": "https://203.0.113.0.nip.invalid/v1", "model": "m"},
        headers=headers,
    )
    assert made.status_code == 201, made.text  # a name that does not resolve now: sent-time check
    item = app.url_path_for(
        "update_endpoint", project_id=str(project.id), endpoint_id=str(made.json()["id"])
    )
    moved = await client.patch(
        item, json={"base_url": "http://169.254.169.254/v1"}, headers=headers
    )
    assert moved.status_code == 422
    assert moved.json()["detail"].startswith("base_url: 169.254.169.254 is a link-local")


@pytest.mark.usefixtures("guarded")
async def test_a_refused_address_fails_at_once_without_reaching_the_server() -> None:
    with fake_openai() as fake:
        endpoint = EndpointConfig(name="e", base_url=fake.base_url, model="m", api_key=None)
        async with outbound_client() as http:
            refused = re.escape("127.0.0.1, a loopback address; refused")
            with pytest.raises(GenerationFailed, match=refused):
                await complete(
                    http, endpoint, [{"role": "user", "content": "hi"}], RetryPolicy(attempts=4)
                )
        assert fake.seen.calls == []


async def test_loopback_endpoints_work_outside_production() -> None:
    with fake_openai() as fake:
        endpoint = EndpointConfig(name="e", base_url=fake.base_url, model="m", api_key=None)
        async with outbound_client() as http:
            answer = await complete(
                http, endpoint, [{"role": "user", "content": "hi"}], RetryPolicy(attempts=1)
            )
    assert answer.content.startswith("m (t=None) answers: hi")


@pytest.mark.parametrize(
    ("proxy_env", "trusted"),
    [({}, False), ({"HTTPS_PROXY": "http://proxy.invalid:3128"}, True)],
)
async def test_streaming_sessions_look_for_a_proxy_only_when_the_environment_names_one(
    monkeypatch: pytest.MonkeyPatch, proxy_env: dict[str, str], trusted: bool
) -> None:
    # Trusting the environment costs a proxy lookup in a thread for every request.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in proxy_env.items():
        monkeypatch.setenv(name, value)
    async with outbound_session() as session:
        assert session.trust_env is trusted
