"""Webhooks: events queued in Postgres, signed deliveries, retries with backoff, the API."""

import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.service import next_lease
from pickwise.core import clock
from pickwise.judgments import service as judgments
from pickwise.judgments.schemas import FlagIn, JudgmentIn
from pickwise.models import Project, Webhook, WebhookDelivery
from pickwise.webhooks import service
from pickwise.webhooks.schemas import WebhookCreate
from pickwise.webhooks.signing import signature, verify
from pickwise.webhooks.worker import DeliveryPolicy, DeliveryWorker
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user
from tests.webhooks.receiver import Received, receiver

QUICK = DeliveryPolicy(timeout=5, max_attempts=3, base_delay=10, max_delay=60)


@pytest.fixture
def hook() -> Iterator[tuple[str, Received]]:
    with receiver() as found:
        yield found


@pytest.fixture(autouse=True)
def real_clock() -> Iterator[None]:
    yield
    clock.reset()


async def add_webhook(
    session: AsyncSession, project: Project, url: str, events: list[Any]
) -> Webhook:
    return await service.create_webhook(
        session, project, WebhookCreate(url=url, events=events, description="test")
    )


def worker_on(
    session: AsyncSession, http: httpx.AsyncClient, rng: random.Random | None = None
) -> DeliveryWorker:
    """A worker whose transactions are savepoints of the test's session."""

    @asynccontextmanager
    async def transaction() -> AsyncIterator[AsyncSession]:
        async with session.begin_nested():
            yield session

    return DeliveryWorker(transaction, http, QUICK, rng=rng)


async def deliveries(session: AsyncSession) -> list[WebhookDelivery]:
    # The worker changes rows with UPDATE statements: reload them, not the cached objects.
    result = await session.execute(
        select(WebhookDelivery)
        .order_by(WebhookDelivery.id)
        .execution_options(populate_existing=True)
    )
    return list(result.scalars())


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    # RFC 4231, test case 2: what a receiver in any language computes.
    body = b"what do ya want for nothing?"
    expected = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert signature("Jefe", body) == expected
    assert verify("Jefe", body, expected)
    assert not verify("Jefe", body + b" ", expected)
    assert not verify("jefe", body, expected)
    assert not verify("Jefe", body, None)


async def test_batch_events_are_queued_once_each(session: AsyncSession) -> None:
    project = await make_project(session)
    webhook = await add_webhook(
        session, project, "https://example.org/h", ["batch.imported", "batch.completed"]
    )
    await add_webhook(session, project, "https://example.org/other", ["export.ready"])
    pairs = await make_pairs(session, project, 3)

    assert await service.queue_batch_events(session) == 1
    assert await service.queue_batch_events(session) == 0
    [imported] = await deliveries(session)
    assert imported.webhook_id == webhook.id and imported.event == "batch.imported"
    assert imported.payload["data"]["batch"]["pairs_active"] == 3
    assert imported.payload["project"] == {"id": project.id, "slug": project.slug}

    rater = await make_user(session)
    await add_member(session, project, rater)
    # While a batch.completed webhook waits for a batch, the worker keeps looking (the rater
    # loop sends no notification): it is told which.
    waiting: set[int] = set()
    for _ in pairs:
        assignment = await next_lease(session, project, rater)
        assert assignment is not None
        assert await service.queue_batch_events(session, incomplete=waiting) == 0  # Not yet.
        assert waiting == {pairs[0].batch_id}
        await judgments.submit(session, assignment.assignment_id, rater, JudgmentIn(choice="tie"))
    assert await service.queue_batch_events(session, incomplete=waiting) == 1
    assert waiting == set()
    completed = (await deliveries(session))[-1]
    assert completed.event == "batch.completed"
    assert completed.event_key == f"batch.completed:{pairs[0].batch_id}"
    assert completed.payload["data"]["batch"]["judgments"] == 3
    assert await service.queue_batch_events(session) == 0


async def test_a_batch_whose_open_pair_is_flagged_counts_as_complete(
    session: AsyncSession,
) -> None:
    project = await make_project(session, raters_per_pair=2)
    await add_webhook(session, project, "https://example.org/h", ["batch.completed"])
    pairs = await make_pairs(session, project, 2)
    first, second = await make_user(session), await make_user(session)
    for rater in (first, second):
        await add_member(session, project, rater)
    ranges: service.PairIdRanges = {}
    for rater in (first, second):
        assignment = await next_lease(session, project, rater)
        assert assignment is not None
        await judgments.submit(session, assignment.assignment_id, rater, JudgmentIn(choice="tie"))
    assert await service.queue_batch_events(session, ranges=ranges) == 0
    assignment = await next_lease(session, project, first)
    assert assignment is not None
    await judgments.flag(session, assignment.assignment_id, first, FlagIn(reason="harmful"))
    assert await service.queue_batch_events(session, ranges=ranges) == 1
    # The batch's pair ids, whichever of its pairs was served first (the queue is shuffled).
    assert list(ranges.values()) == [(pairs[0].id, pairs[1].id)]


async def test_deliveries_are_signed_and_retried_with_backoff(
    session: AsyncSession, hook: tuple[str, Received]
) -> None:
    url, received = hook
    project = await make_project(session)
    webhook = await add_webhook(session, project, url, ["export.ready"])
    received.secret, received.fail_first = webhook.secret, 1
    assert await service.queue_export_ready(session, project, {"format": "trl", "rows": 12}) == 1

    clock.freeze()
    async with httpx.AsyncClient() as http:
        worker = worker_on(session, http, rng=random.Random(3))
        assert await worker.run_once() == 1
        [delivery] = await deliveries(session)
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
            "pending",
            1,
            500,
        )
        # The first retry follows the policy's schedule exactly (clock frozen, seeded jitter).
        first_retry_in = delivery.next_attempt_at - clock.utcnow()
        assert first_retry_in == QUICK.retry_delay(1, random.Random(3))
        # It sleeps until then (unless woken by new work), not for its fallback pause.
        assert worker.next_due == delivery.next_attempt_at
        assert worker.seconds_to_next_round(1) == first_retry_in.total_seconds()
        assert await worker.run_once() == 0  # Not due yet.

        clock.advance(timedelta(seconds=11))
        assert await worker.run_once() == 1
    [delivery] = await deliveries(session)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 2, 200)
    assert received.bad_signatures == 0 and received.requests == 2
    [event] = received.events
    assert event["event"] == "export.ready" and event["id"] == delivery.event_key
    assert event["data"] == {"format": "trl", "rows": 12}
    assert received.headers == [{"event": "export.ready", "delivery": str(delivery.id)}]


async def test_gives_up_after_the_last_attempt_and_an_admin_can_resend(
    client: AsyncClient, app: FastAPI, session: AsyncSession, hook: tuple[str, Received]
) -> None:
    url, received = hook
    project = await make_project(session)
    webhook = await add_webhook(session, project, url, ["export.ready"])
    received.secret = "not the webhook's secret"  # Every delivery is refused with 401.
    await service.queue_export_ready(session, project, {})
    async with httpx.AsyncClient() as http:
        worker = worker_on(session, http)
        for _ in range(QUICK.max_attempts):
            assert await worker.run_once() == 1
            clock.advance(timedelta(seconds=QUICK.max_delay + 1))
        assert await worker.run_once() == 0
    [delivery] = await deliveries(session)
    assert delivery.status == "failed" and delivery.attempts == QUICK.max_attempts
    assert delivery.last_status_code == 401 and "bad signature" in (delivery.last_error or "")

    headers = await bearer_headers(session, await make_user(session, role="admin"))
    resent = await client.post(
        app.url_path_for(
            "resend",
            project_id=str(project.id),
            webhook_id=str(webhook.id),
            delivery_id=str(delivery.id),
        ),
        headers=headers,
    )
    assert resent.status_code == 200 and resent.json()["status"] == "pending"
    received.secret = webhook.secret
    async with httpx.AsyncClient() as http:
        assert await worker_on(session, http).run_once() == 1
    assert [d.status for d in await deliveries(session)] == ["delivered"]


async def test_unreachable_receivers_and_inactive_webhooks(session: AsyncSession) -> None:
    project = await make_project(session)
    # Nothing listens on port 9 of loopback ("discard"): the connection is refused.
    down = await add_webhook(session, project, "http://127.0.0.1:9/hook", ["export.ready"])
    off = await add_webhook(session, project, "http://127.0.0.1:9/off", ["export.ready"])
    off.is_active = False
    assert await service.queue_export_ready(session, project, {}) == 1
    async with httpx.AsyncClient() as http:
        assert await worker_on(session, http).run_once() == 1
    [delivery] = await deliveries(session)
    assert delivery.webhook_id == down.id and delivery.status == "pending"
    assert delivery.last_status_code is None and "Connect" in (delivery.last_error or "")


async def test_export_ready_goes_to_the_webhooks_that_want_it(session: AsyncSession) -> None:
    project = await make_project(session)
    wants = await add_webhook(session, project, "https://example.org/a", ["export.ready"])
    await add_webhook(session, project, "https://example.org/b", ["batch.completed"])
    manifest = {"format": "trl", "counts": {"kept": 3}}
    folder = Path("/srv/exports/p-20260101T000000Z-trl")
    assert await service.queue_export_written(session, project, folder, manifest) == 1
    [delivery] = await deliveries(session)
    assert delivery.webhook_id == wants.id and delivery.event_key.startswith("export.ready:")
    assert delivery.payload["data"] == {"path": str(folder), "manifest": manifest}


async def test_webhook_api(client: AsyncClient, app: FastAPI, session: AsyncSession) -> None:
    project = await make_project(session)
    project_id = str(project.id)
    headers = await bearer_headers(session, await make_user(session, role="admin"))
    collection = app.url_path_for("create_webhook", project_id=project_id)
    made = await client.post(
        collection,
        json={"url": "https://example.org/h", "events": ["batch.completed", "batch.completed"]},
        headers=headers,
    )
    assert made.status_code == 201
    secret, webhook = made.json()["secret"], made.json()["webhook"]
    assert secret.startswith("whsec_") and webhook["events"] == ["batch.completed"]
    listed = (await client.get(collection, headers=headers)).json()
    assert "secret" not in listed[0]

    for bad in (
        {"url": "ftp://x", "events": ["batch.completed"]},
        {"url": "https://x", "events": []},
    ):
        assert (await client.post(collection, json=bad, headers=headers)).status_code == 422
    unknown = await client.post(
        collection, json={"url": "https://x", "events": ["pair.done"]}, headers=headers
    )
    assert unknown.status_code == 422

    webhook_id = str(webhook["id"])
    rotated = await client.post(
        app.url_path_for("rotate_secret", project_id=project_id, webhook_id=webhook_id),
        headers=headers,
    )
    assert rotated.json()["secret"] not in (secret, None)
    pinged = await client.post(
        app.url_path_for("ping", project_id=project_id, webhook_id=webhook_id), headers=headers
    )
    assert pinged.status_code == 202
    listing = await client.get(
        app.url_path_for("list_deliveries", project_id=project_id, webhook_id=webhook_id),
        headers=headers,
    )
    [ping] = listing.json()
    assert ping["event"] == "ping" and ping["status"] == "pending"

    changed = await client.patch(
        app.url_path_for("update_webhook", project_id=project_id, webhook_id=webhook_id),
        json={"is_active": False, "events": ["export.ready", "batch.imported"]},
        headers=headers,
    )
    assert changed.json()["is_active"] is False
    assert changed.json()["events"] == ["batch.imported", "export.ready"]

    rater_headers = await bearer_headers(session, await make_user(session))
    assert (await client.get(collection, headers=rater_headers)).status_code == 403
    deleted = await client.delete(
        app.url_path_for("delete_webhook", project_id=project_id, webhook_id=webhook_id),
        headers=headers,
    )
    assert deleted.status_code == 204
