"""SSRF: webhook URLs (and the shared outbound guard) refuse internal addresses in production."""

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core import outbound
from pickwise.core.config import Settings
from pickwise.core.outbound import outbound_client, private_allowed, refused_reason
from pickwise.models import Webhook
from pickwise.webhooks import service
from pickwise.webhooks.schemas import WebhookCreate
from tests.factories import bearer_headers, make_project, make_user
from tests.webhooks.receiver import Received, receiver
from tests.webhooks.test_webhooks import deliveries, worker_on

PUBLIC = "93.184.215.14"


@pytest.fixture
def hook() -> Iterator[tuple[str, Received]]:
    with receiver() as found:
        yield found


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.5", "private"),
        ("192.168.1.10", "private"),
        ("100.64.0.1", "private"),  # carrier-grade NAT
        ("fd00::5", "private"),
        ("0.0.0.0", "unicast"),
        ("224.0.0.1", "unicast"),
        (PUBLIC, None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_which_addresses_are_refused(address: str, reason: str | None) -> None:
    found = refused_reason(address)
    assert (found is None) if reason is None else (found is not None and reason in found)


def test_private_addresses_are_allowed_by_default_only_outside_production() -> None:
    production = Settings(environment="production", secret_key="a-real-secret-" * 4)
    assert private_allowed(Settings(environment="development"))
    assert private_allowed(Settings(environment="test"))
    assert not private_allowed(production)
    assert private_allowed(production.model_copy(update={"outbound_allow_private": True}))
    assert not private_allowed(Settings(outbound_allow_private=False))


@pytest.mark.usefixtures("guarded")
async def test_saving_a_webhook_to_an_internal_address_is_a_422_naming_the_field(
    client: AsyncClient, app: FastAPI, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = await make_project(session)
    headers = await bearer_headers(session, await make_user(session, role="admin"))
    await session.commit()  # a refused request rolls back what is not committed
    collection = app.url_path_for("create_webhook", project_id=str(project.id))

    async def resolve(host: str, port: int) -> list[str]:
        return {"db.internal.example": ["10.0.0.7"], "hooks.example.org": [PUBLIC]}[host]

    monkeypatch.setattr(outbound, "_resolve", resolve)
    for url, shown in (
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local"),
        ("http://localhost:8080/admin", "localhost is a loopback"),
        ("http://[::1]:5432/", "::1 is a loopback"),
        ("https://db.internal.example/hook", "db.internal.example (10.0.0.7) is a private"),
    ):
        refused = await client.post(
            collection, json={"url": url, "events": ["export.ready"]}, headers=headers
        )
        assert refused.status_code == 422, url
        assert refused.json()["detail"].startswith(f"url: {shown}"), refused.json()
        assert "PICKWISE_OUTBOUND_ALLOW_PRIVATE" in refused.json()["detail"]
    made = await client.post(
        collection,
        json={"url": "https://hooks.example.org/h", "events": ["export.ready"]},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    item = app.url_path_for(
        "update_webhook", project_id=str(project.id), webhook_id=str(made.json()["webhook"]["id"])
    )
    moved = await client.patch(item, json={"url": "http://127.0.0.1:9/x"}, headers=headers)
    assert moved.status_code == 422 and moved.json()["detail"].startswith("url: 127.0.0.1")
    assert await client.patch(item, json={"is_active": False}, headers=headers)


async def ping_once(session: AsyncSession, url: str, secret: str) -> None:
    """A project with a webhook to `url`, a queued ping, and one round of the worker."""
    project = await make_project(session)
    webhook = Webhook(project_id=project.id, url=url, secret=secret, events=["export.ready"])
    session.add(webhook)
    await session.flush()
    await service.queue_ping(session, project, webhook)
    async with outbound_client() as http:
        assert await worker_on(session, http).run_once() == 1


async def test_loopback_receivers_are_fine_outside_production(
    session: AsyncSession, hook: tuple[str, Received]
) -> None:
    url, received = hook
    received.secret = "whsec_x"
    await ping_once(session, url, received.secret)
    assert [d.status for d in await deliveries(session)] == ["delivered"]
    assert len(received.events) == 1


@pytest.mark.usefixtures("guarded")
async def test_dns_rebinding_to_a_private_address_is_refused_when_sending(
    session: AsyncSession, hook: tuple[str, Received], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = hook
    port = httpx.URL(url).port
    answers = iter([[PUBLIC], ["127.0.0.1"]])  # public when saved, loopback when sent

    async def resolve(host: str, port: int) -> list[str]:
        assert host == "rebind.example"
        return next(answers)

    monkeypatch.setattr(outbound, "_resolve", resolve)
    project = await make_project(session)
    webhook = await service.create_webhook(
        session,
        project,
        WebhookCreate(url=f"http://rebind.example:{port}/hook", events=["export.ready"]),
    )
    await service.queue_ping(session, project, webhook)
    received.secret = webhook.secret
    async with outbound_client() as http:
        assert await worker_on(session, http).run_once() == 1
    [delivery] = await deliveries(session)
    assert delivery.status == "pending" and delivery.last_status_code is None
    assert "rebind.example resolves to 127.0.0.1, a loopback address; refused" in (
        delivery.last_error or ""
    )
    assert received.requests == 0


@pytest.mark.usefixtures("guarded")
async def test_the_guard_connects_to_the_address_it_checked_not_to_the_name(
    session: AsyncSession, hook: tuple[str, Received], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`checked.example` exists nowhere: the request arrives only because the guard connects
    to the address its own lookup returned (and, here, was told to accept)."""
    url, received = hook
    port = httpx.URL(url).port

    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    monkeypatch.setattr(outbound, "_resolve", resolve)
    monkeypatch.setattr(outbound, "refused_reason", lambda address: None)
    project = await make_project(session)
    webhook = Webhook(
        project_id=project.id,
        url=f"http://checked.example:{port}/hook",
        secret="whsec_y",
        events=["export.ready"],
    )
    session.add(webhook)
    await session.flush()
    await service.queue_ping(session, project, webhook)
    received.secret = webhook.secret
    async with outbound_client() as http:
        assert await worker_on(session, http).run_once() == 1
    assert [d.status for d in await deliveries(session)] == ["delivered"]
    assert received.requests == 1


@pytest.mark.usefixtures("guarded")
async def test_a_refused_address_is_reported_without_a_request(
    session: AsyncSession, hook: tuple[str, Received]
) -> None:
    url, received = hook
    await ping_once(session, url, "whsec_z")
    [delivery] = await deliveries(session)
    assert delivery.status == "pending"  # retried later: the admin may fix the URL
    assert "resolves to 127.0.0.1, a loopback address; refused" in (delivery.last_error or "")
    assert received.requests == 0
