"""The in-process sender of webhook deliveries.

Every app process runs one worker (started with the app: the lifespan in app.py). It runs a
round when woken (a delivery queued or resent, a batch imported, a webhook changed: triggers
NOTIFY, core.wakeups), when a retry falls due, and otherwise after a long fallback pause; while
a batch.completed webhook waits for a batch, every `poll_seconds`. Each round it
queues the batch events nobody has queued yet, claims due deliveries with FOR UPDATE SKIP
LOCKED (so several processes share the work without sending anything twice at once), sends
them outside any transaction, and records the outcome: delivered, retried later with
exponential backoff, or given up after the last attempt. The queue lives in Postgres, so a
restart loses nothing; a delivery claimed by a process that died is retried once its claim
runs out.
"""

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise import __version__
from pickwise.core.background import (
    FALLBACK_SECONDS,
    Transaction,
    background_transaction,
    run_rounds,
    running_task,
)
from pickwise.core.clock import utcnow
from pickwise.core.outbound import outbound_client
from pickwise.core.wakeups import Wake
from pickwise.webhooks import repository, service
from pickwise.webhooks.repository import Claimed
from pickwise.webhooks.signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signature

# The shortest pause after a round that did not take a full batch.
MIN_PAUSE_SECONDS = 0.25


@dataclass(frozen=True)
class DeliveryPolicy:
    timeout: float = 10.0
    max_attempts: int = 10
    base_delay: float = 10.0
    max_delay: float = 3600.0
    batch_size: int = 20
    # How often it looks when it cannot be woken (no listener, or its connection is down),
    # and while a batch.completed webhook waits for a batch: a batch completes by its last
    # judgment (or a flag, k lowered, ...), and the rater loop sends no notification.
    poll_seconds: float = 2.0
    # How often it looks when it can be woken, for notifications lost while not listening.
    fallback_seconds: float = FALLBACK_SECONDS

    def retry_delay(self, attempts: int, rng: random.Random) -> timedelta:
        """After `attempts` failures: 10 s, 20 s, 40 s … up to an hour, less up to a half."""
        delay = min(self.max_delay, self.base_delay * 2 ** (attempts - 1))
        return timedelta(seconds=delay * rng.uniform(0.5, 1.0))

    @property
    def claim_for(self) -> timedelta:
        return timedelta(seconds=self.timeout + 30)


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.error is None


def request_body(delivery: Claimed) -> bytes:
    return json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()


async def send(http: httpx.AsyncClient, delivery: Claimed, policy: DeliveryPolicy) -> Outcome:
    body = request_body(delivery)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"pickwise-webhooks/{__version__}",
        EVENT_HEADER: delivery.event,
        DELIVERY_HEADER: str(delivery.id),
        SIGNATURE_HEADER: signature(delivery.secret, body),
    }
    try:
        response = await http.post(
            delivery.url, content=body, headers=headers, timeout=policy.timeout
        )
    except httpx.TimeoutException:
        return Outcome(None, f"no answer within {policy.timeout:g} s")
    except httpx.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}")
    if 200 <= response.status_code < 300:
        return Outcome(response.status_code, None)
    return Outcome(response.status_code, f"HTTP {response.status_code}: {response.text[:300]}")


class DeliveryWorker:
    def __init__(
        self,
        transaction: Transaction,
        http: httpx.AsyncClient,
        policy: DeliveryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.transaction = transaction
        self.http = http
        self.policy = policy or DeliveryPolicy()
        self.rng = rng or random.Random()
        self.pair_id_ranges: service.PairIdRanges = {}
        self.incomplete_batches: set[int] = set()
        # When the next pending delivery is due, as of the last round (None: none pending).
        self.next_due: datetime | None = None
        self._stopping = asyncio.Event()

    async def run_once(self) -> int:
        """One round; returns the number of deliveries attempted."""
        now = utcnow()
        async with self.transaction() as session:
            await service.queue_batch_events(
                session, now, self.pair_id_ranges, self.incomplete_batches
            )
            claimed = await repository.claim_due(
                session, now, self.policy.claim_for, self.policy.batch_size
            )
            if not claimed:
                self.next_due = await repository.earliest_pending_attempt(session)
                return 0
        outcomes = await asyncio.gather(
            *(send(self.http, delivery, self.policy) for delivery in claimed)
        )
        done = utcnow()
        async with self.transaction() as session:
            for delivery, outcome in zip(claimed, outcomes, strict=True):
                await self._record(session, delivery, outcome, done)
            self.next_due = await repository.earliest_pending_attempt(session)
        return len(claimed)

    def seconds_to_next_round(self, attempted: int) -> float | None:
        """0 after a full batch (more may be due at once); else until the next delivery is
        due, or, while a batch.completed webhook waits, `poll_seconds` at most."""
        if attempted == self.policy.batch_size:
            return 0.0
        waits = []
        if self.next_due is not None:
            # Not less: a due delivery the claim skipped is locked by another transaction (a
            # worker claiming it, an admin resending it), and looking again at once would spin.
            waits.append(max((self.next_due - utcnow()).total_seconds(), MIN_PAUSE_SECONDS))
        if self.incomplete_batches:
            waits.append(self.policy.poll_seconds)
        return min(waits, default=None)

    async def _record(
        self, session: AsyncSession, delivery: Claimed, outcome: Outcome, now: datetime
    ) -> None:
        if outcome.delivered:
            assert outcome.status_code is not None
            await repository.mark_delivered(session, delivery.id, outcome.status_code, now)
            return
        retry_at = None
        if delivery.attempts < self.policy.max_attempts:
            retry_at = now + self.policy.retry_delay(delivery.attempts, self.rng)
        await repository.mark_failed_attempt(
            session,
            delivery.id,
            status_code=outcome.status_code,
            error=outcome.error or "",
            retry_at=retry_at,
        )

    async def run_forever(self, wake: Wake | None = None) -> None:
        async def one_round() -> float | None:
            return self.seconds_to_next_round(await self.run_once())

        await run_rounds(
            one_round,
            self._stopping,
            name="webhook worker",
            poll_seconds=self.policy.poll_seconds,
            wake=wake,
            fallback_seconds=self.policy.fallback_seconds,
        )

    def stop(self) -> None:
        self._stopping.set()


@contextlib.asynccontextmanager
async def running_worker(
    policy: DeliveryPolicy | None = None, wake: Wake | None = None
) -> AsyncIterator[DeliveryWorker]:
    """The worker as a background task for as long as the block runs; it looks for work when
    `wake` is notified, when a retry is due, or after the policy's pauses."""
    async with outbound_client(follow_redirects=False) as http:
        worker = DeliveryWorker(background_transaction, http, policy)
        async with running_task(worker.run_forever(wake), worker.stop, name="webhook-worker"):
            yield worker
