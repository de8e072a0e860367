"""The background loops wake on work: a commit that makes work for the webhook worker or the
search catch-up notifies them (triggers), so they act at once although their fallback pause is
set far longer than any wait here; work that falls due later (a retry) runs when it is due;
a notification lost while the listener was down is made up for when it reconnects, and by the
fallback pause. Everything commits for real (NOTIFY is delivered only at commit)."""

import asyncio
import inspect
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager

import httpx
import psycopg
import pytest
from sqlalchemy import select, text

from pickwise.batches.search_catchup import running_catch_up
from pickwise.batches.service import import_stream
from pickwise.core.background import background_transaction, listening
from pickwise.core.config import get_settings
from pickwise.core.db import get_engine, unit_of_work
from pickwise.core.embedded_pg import to_libpq_url
from pickwise.core.wakeups import (
    APPLICATION_NAME,
    SEARCH_CATCH_UP_CHANNEL,
    WEBHOOKS_CHANNEL,
    Listener,
    Wake,
)
from pickwise.models import Batch, Project, Webhook
from pickwise.vocabulary import PING_EVENT, DeliveryStatus, WebhookEvent
from pickwise.webhooks import service
from pickwise.webhooks.schemas import WebhookCreate
from pickwise.webhooks.worker import DeliveryPolicy, DeliveryWorker, running_worker
from tests.batches.test_search_catchup import answers_file
from tests.factories import make_project
from tests.webhooks.receiver import Received, receiver

# Far longer than any test waits: what happens within WITHIN was woken, not polled for.
NEVER = 300.0
WITHIN = 10.0
SLOW = DeliveryPolicy(timeout=5, poll_seconds=NEVER, fallback_seconds=NEVER)

pytestmark = pytest.mark.usefixtures("live_app")


@pytest.fixture
def hook() -> Iterator[tuple[str, Received]]:
    with receiver() as found:
        yield found


async def eventually(check: Callable[[], bool | Awaitable[bool]]) -> bool:
    """Whether `check` holds within WITHIN seconds."""
    deadline = asyncio.get_running_loop().time() + WITHIN
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result or asyncio.get_running_loop().time() > deadline:
            return bool(result)
        await asyncio.sleep(0.05)


async def received(hook: Received, count: int) -> bool:
    return await asyncio.to_thread(hook.wait_for_events, count, WITHIN)


async def project_with_webhook(url: str, events: list[str], hook: Received) -> Project:
    async with unit_of_work(get_engine()) as session:
        project = await make_project(session)
        webhook = await service.create_webhook(
            session, project, WebhookCreate(url=url, events=events, description="test")
        )
        hook.secret = webhook.secret
    return project


async def ping(project: Project) -> None:
    async with unit_of_work(get_engine()) as session:
        webhook = await session.scalar(select(Webhook).where(Webhook.project_id == project.id))
        assert webhook is not None
        await service.queue_ping(session, project, webhook)


async def import_answers(project: Project) -> int:
    async with unit_of_work(get_engine()) as session:
        outcome = await import_stream(
            session,
            project,
            io.BytesIO(answers_file(5)),
            filename="b.jsonl",
            source="cli",
            user=None,
        )
    return outcome.batch_id


async def search_pending(batch_id: int) -> int:
    async with unit_of_work(get_engine()) as session:
        batch = await session.get(Batch, batch_id)
        assert batch is not None
        return batch.search_pending


@asynccontextmanager
async def woken_loops(
    policy: DeliveryPolicy = SLOW,
) -> AsyncIterator[tuple[Listener, DeliveryWorker]]:
    """The app's listener, webhook worker and search catch-up, as the lifespan runs them,
    with fallback pauses longer than the test."""
    async with (
        listening([WEBHOOKS_CHANNEL, SEARCH_CATCH_UP_CHANNEL]) as listener,
        running_worker(policy, wake=listener.wake(WEBHOOKS_CHANNEL)) as worker,
        running_catch_up(wake=listener.wake(SEARCH_CATCH_UP_CHANNEL), fallback_seconds=NEVER),
    ):
        assert await eventually(lambda: listener.listening)
        # Let the rounds that connecting set off finish: what follows is only ever notified.
        await asyncio.sleep(0.5)
        yield listener, worker


async def test_a_queued_delivery_is_sent_when_its_transaction_commits(
    hook: tuple[str, Received],
) -> None:
    url, got = hook
    project = await project_with_webhook(url, [WebhookEvent.EXPORT_READY], got)
    async with woken_loops():
        await ping(project)
        assert await received(got, 1)
    assert got.events[0]["event"] == PING_EVENT


async def test_an_import_wakes_the_search_catch_up_and_the_webhooks(
    hook: tuple[str, Received],
) -> None:
    url, got = hook
    project = await project_with_webhook(url, [WebhookEvent.BATCH_IMPORTED], got)
    async with woken_loops():
        batch_id = await import_answers(project)
        assert await eventually(lambda: search_pending_is_zero(batch_id))
        assert await received(got, 1)
    assert got.events[0]["event"] == WebhookEvent.BATCH_IMPORTED
    assert got.events[0]["data"]["batch"]["id"] == batch_id


async def search_pending_is_zero(batch_id: int) -> bool:
    return await search_pending(batch_id) == 0


async def test_a_retry_runs_when_it_is_due(hook: tuple[str, Received]) -> None:
    """The first attempt fails; the retry, due in 0.5-1 s, is not left to the fallback."""
    url, got = hook
    project = await project_with_webhook(url, [WebhookEvent.EXPORT_READY], got)
    got.fail_first = 1
    policy = DeliveryPolicy(timeout=5, base_delay=1, poll_seconds=NEVER, fallback_seconds=NEVER)
    async with woken_loops(policy):
        await ping(project)
        assert await received(got, 1)
    assert got.requests == 2


async def test_what_was_committed_while_the_listener_was_down_is_sent_when_it_is_back(
    hook: tuple[str, Received], database_url: str
) -> None:
    url, got = hook
    project = await project_with_webhook(url, [WebhookEvent.EXPORT_READY], got)
    async with woken_loops() as (listener, _):
        with psycopg.connect(to_libpq_url(database_url), autocommit=True) as admin:
            [killed] = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s AND datname = current_database()",
                [APPLICATION_NAME],
            ).fetchall()
            assert killed == (True,)
        assert await eventually(lambda: not listener.listening)
        # Nobody listens: this commit's notification is lost.
        await ping(project)
        assert await received(got, 1)
        assert listener.listening


async def test_without_a_notification_the_fallback_pause_still_finds_the_work(
    hook: tuple[str, Received],
) -> None:
    """A wake that says it listens but is never notified: only the fallback finds the work."""
    url, got = hook
    project = await project_with_webhook(url, [WebhookEvent.EXPORT_READY], got)
    silent = Wake(lambda: True)
    policy = DeliveryPolicy(timeout=5, poll_seconds=NEVER, fallback_seconds=0.5)
    async with running_worker(policy, wake=silent):
        await ping(project)
        assert await received(got, 1)
    assert not silent.event.is_set()


async def test_the_catch_up_and_a_conversation_vote_wake_nobody(
    database_url: str,
) -> None:
    """A NOTIFY serialises commits on the notification queue's lock: work that runs all the
    time (the catch-up's chunks, a live conversation's votes) must not send one."""
    async with unit_of_work(get_engine()) as session:
        project = await make_project(session)
    batch_id = await import_answers(project)
    with psycopg.connect(to_libpq_url(database_url), autocommit=True) as listener:
        listener.execute(f"LISTEN {WEBHOOKS_CHANNEL}")
        listener.execute(f"LISTEN {SEARCH_CATCH_UP_CHANNEL}")
        async with unit_of_work(get_engine()) as session:
            # What the catch-up does to the count, and a live conversation's vote.
            await session.execute(
                text("UPDATE batches SET search_pending = search_pending - 1 WHERE id = :id"),
                {"id": batch_id},
            )
            await session.execute(
                text("UPDATE batches SET prompts_new = prompts_new + 1 WHERE id = :id"),
                {"id": batch_id},
            )
        assert list(listener.notifies(timeout=0.5)) == []


async def test_the_workers_own_writes_wake_nobody_and_a_resend_wakes_it(
    hook: tuple[str, Received], database_url: str
) -> None:
    """Claims and outcomes are not new work (the worker would wake itself after every
    round); an admin's resend is."""
    url, got = hook
    project = await project_with_webhook(url, [WebhookEvent.EXPORT_READY], got)
    await ping(project)
    got.fail_first = 1
    with psycopg.connect(to_libpq_url(database_url), autocommit=True) as listener:
        listener.execute(f"LISTEN {WEBHOOKS_CHANNEL}")
        async with httpx.AsyncClient() as http:
            worker = DeliveryWorker(background_transaction, http, SLOW)
            assert await worker.run_once() == 1  # Claimed, failed, a retry scheduled.
        assert list(listener.notifies(timeout=0.5)) == []
        async with unit_of_work(get_engine()) as session:
            webhook = await session.scalar(select(Webhook).where(Webhook.project_id == project.id))
            assert webhook is not None
            [delivery] = await service.deliveries(session, webhook, 10)
            delivery.status = DeliveryStatus.FAILED
        async with unit_of_work(get_engine()) as session:
            webhook = await session.scalar(select(Webhook).where(Webhook.project_id == project.id))
            assert webhook is not None
            await service.resend(session, webhook, delivery.id)
        [notified] = listener.notifies(timeout=WITHIN, stop_after=1)
        assert notified.channel == WEBHOOKS_CHANNEL


async def test_while_the_listener_cannot_connect_the_loops_poll(
    hook: tuple[str, Received], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, got = hook
    project = await project_with_webhook(url, [WebhookEvent.EXPORT_READY], got)
    # Nothing listens on port 1: the listener keeps trying, the worker polls meanwhile.
    monkeypatch.setenv("LISTEN_DATABASE_URL", "postgresql://pickwise@127.0.0.1:1/pickwise")
    get_settings.cache_clear()
    policy = DeliveryPolicy(timeout=5, poll_seconds=0.5, fallback_seconds=NEVER)
    try:
        async with (
            listening([WEBHOOKS_CHANNEL]) as listener,
            running_worker(policy, wake=listener.wake(WEBHOOKS_CHANNEL)),
        ):
            await ping(project)
            assert await received(got, 1)
            assert not listener.listening
    finally:
        monkeypatch.delenv("LISTEN_DATABASE_URL")
        get_settings.cache_clear()
