"""Queries of the webhook outbox: finding batch events, queueing, claiming due deliveries."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import Webhook, WebhookDelivery
from pickwise.vocabulary import BatchSource, DeliveryStatus, PairStatus, SlotState, WebhookEvent

# Batches a webhook has not heard about yet. "Imported" counts batches made after the webhook
# (not the project's whole history); "completed" counts every batch whose active pairs have
# all their judgments, so a webhook added late still learns which batches are done.
# A batch has no pairs of its own (only counted in pairs_new) when all its prompts were
# already there: such a batch never completes and is never a candidate.
_NEW_BATCHES = text(
    f"""
    SELECT w.id AS webhook_id, b.id AS batch_id
    FROM webhooks w
    JOIN batches b ON b.project_id = w.project_id AND b.created_at >= w.created_at
    WHERE w.is_active AND w.events @> '["{WebhookEvent.BATCH_IMPORTED}"]'
      -- A live-conversation batch grows vote by vote: it is never imported or completed.
      AND b.source <> '{BatchSource.CONVERSATION}'
      AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries d
          WHERE d.webhook_id = w.id AND d.event_key = '{WebhookEvent.BATCH_IMPORTED}:' || b.id
      )
    ORDER BY b.id
    LIMIT :limit
    """
)
_COMPLETION_CANDIDATES = text(
    f"""
    SELECT w.id AS webhook_id, b.id AS batch_id, b.project_id
    FROM webhooks w
    JOIN batches b ON b.project_id = w.project_id
    WHERE w.is_active AND w.events @> '["{WebhookEvent.BATCH_COMPLETED}"]'
      AND b.source <> '{BatchSource.CONVERSATION}'
      AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries d
          WHERE d.webhook_id = w.id AND d.event_key = '{WebhookEvent.BATCH_COMPLETED}:' || b.id
      )
      AND EXISTS (SELECT 1 FROM pairs p WHERE p.batch_id = b.id AND NOT p.is_gold)
    ORDER BY b.id
    LIMIT :limit
    """
)
_PAIR_ID_RANGE = text(
    "SELECT min(id), max(id) FROM pairs WHERE batch_id = :batch_id AND NOT is_gold"
)
# Walks the partial index of unfinished slots (the rater loop's own) over the batch's pair
# ids only, and stops at the first one whose pair is this batch's and active. OFFSET 0 keeps
# the planner from turning it into a join over the whole batch, whatever its statistics say.
_OPEN_WORK = text(
    f"""
    SELECT EXISTS (
        SELECT 1 FROM (
            SELECT s.pair_id FROM pair_slots s
            WHERE s.project_id = :project_id AND s.state <> '{SlotState.DONE}'
              AND s.pair_id BETWEEN :first_pair AND :last_pair
            OFFSET 0
        ) open_slots
        WHERE EXISTS (
            SELECT 1 FROM pairs p
            WHERE p.id = open_slots.pair_id AND p.batch_id = :batch_id
              AND p.status = '{PairStatus.ACTIVE}'
        )
    )
    """
)
_BATCH_FACTS = text(
    f"""
    SELECT b.id, b.filename, b.source, b.created_at, b.prompts_new, b.prompts_unchanged,
           b.responses_new, b.pairs_new, p.id AS project_id, p.slug,
           (SELECT count(*) FROM pairs pr
            WHERE pr.batch_id = b.id AND NOT pr.is_gold
              AND pr.status = '{PairStatus.ACTIVE}') AS pairs_active,
           (SELECT count(*) FROM judgments j JOIN pairs pr ON pr.id = j.pair_id
            WHERE pr.batch_id = b.id AND NOT j.is_gold) AS judgments
    FROM batches b JOIN projects p ON p.id = b.project_id
    WHERE b.id = :batch_id
    """
)


async def new_batch_events(session: AsyncSession, limit: int) -> list[tuple[int, int]]:
    rows = await session.execute(_NEW_BATCHES, {"limit": limit})
    return [(row.webhook_id, row.batch_id) for row in rows]


async def completion_candidates(session: AsyncSession, limit: int) -> list[tuple[int, int, int]]:
    """(webhook, batch, project) for batches with regular pairs that a batch.completed
    webhook has not been told about."""
    rows = await session.execute(_COMPLETION_CANDIDATES, {"limit": limit})
    return [(row.webhook_id, row.batch_id, row.project_id) for row in rows]


async def pair_id_range(session: AsyncSession, batch_id: int) -> tuple[int, int] | None:
    """The lowest and highest id of the batch's regular pairs. A batch's pairs never change
    after its import, so callers may keep the answer."""
    row = (await session.execute(_PAIR_ID_RANGE, {"batch_id": batch_id})).one()
    return None if row[0] is None else (int(row[0]), int(row[1]))


async def has_open_work(
    session: AsyncSession, project_id: int, batch_id: int, pair_ids: tuple[int, int]
) -> bool:
    """Whether an active pair of the batch still lacks a judgment (about a millisecond, even
    for a batch of 100,000 pairs)."""
    found = await session.scalar(
        _OPEN_WORK,
        {
            "project_id": project_id,
            "batch_id": batch_id,
            "first_pair": pair_ids[0],
            "last_pair": pair_ids[1],
        },
    )
    return bool(found)


async def batch_facts(session: AsyncSession, batch_id: int) -> dict[str, Any]:
    row = (await session.execute(_BATCH_FACTS, {"batch_id": batch_id})).mappings().one()
    return dict(row)


async def queue(
    session: AsyncSession,
    webhook_id: int,
    event: str,
    event_key: str,
    payload: dict[str, Any],
    now: datetime,
) -> bool:
    """False if this event was already queued for this webhook (by another worker, say)."""
    result = await session.execute(
        insert(WebhookDelivery)
        .values(
            webhook_id=webhook_id,
            event=event,
            event_key=event_key,
            payload=payload,
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
        )
        .on_conflict_do_nothing(index_elements=["webhook_id", "event_key"])
        .returning(WebhookDelivery.id)
    )
    return result.first() is not None


async def active_webhooks(session: AsyncSession, project_id: int, event: str) -> list[Webhook]:
    result = await session.execute(
        select(Webhook).where(
            Webhook.project_id == project_id,
            Webhook.is_active,
            Webhook.events.contains([event]),
        )
    )
    return list(result.scalars())


@dataclass(frozen=True)
class Claimed:
    """A delivery taken by one worker; others skip it until `claimed_until`."""

    id: int
    event: str
    event_key: str
    payload: dict[str, Any]
    attempts: int
    url: str
    secret: str


_CLAIM = text(
    f"""
    UPDATE webhook_deliveries d
    SET attempts = d.attempts + 1, next_attempt_at = :claimed_until
    FROM (
        SELECT dd.id FROM webhook_deliveries dd
        JOIN webhooks w ON w.id = dd.webhook_id
        WHERE dd.status = '{DeliveryStatus.PENDING}' AND dd.next_attempt_at <= :now AND w.is_active
        ORDER BY dd.next_attempt_at
        LIMIT :limit
        FOR UPDATE OF dd SKIP LOCKED
    ) due, webhooks w
    WHERE d.id = due.id AND w.id = d.webhook_id
    RETURNING d.id, d.event, d.event_key, d.payload, d.attempts, w.url, w.secret
    """
)


async def claim_due(
    session: AsyncSession, now: datetime, claim_for: timedelta, limit: int
) -> list[Claimed]:
    """Due deliveries, each pushed `claim_for` into the future so that a worker that dies
    while sending leaves them to be retried instead of lost."""
    rows = await session.execute(
        _CLAIM, {"now": now, "claimed_until": now + claim_for, "limit": limit}
    )
    return [Claimed(**row._mapping) for row in rows]


_EARLIEST_PENDING_ATTEMPT = text(
    f"""
    SELECT min(d.next_attempt_at) FROM webhook_deliveries d
    JOIN webhooks w ON w.id = d.webhook_id
    WHERE d.status = '{DeliveryStatus.PENDING}' AND w.is_active
    """
)


async def earliest_pending_attempt(session: AsyncSession) -> datetime | None:
    """When the next pending delivery is due (a retry's time, or a claim running out), if any."""
    due: datetime | None = await session.scalar(_EARLIEST_PENDING_ATTEMPT)
    return due


async def mark_delivered(
    session: AsyncSession, delivery_id: int, status_code: int, now: datetime
) -> None:
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(
            status=DeliveryStatus.DELIVERED,
            delivered_at=now,
            last_status_code=status_code,
            last_error=None,
        )
    )


async def mark_failed_attempt(
    session: AsyncSession,
    delivery_id: int,
    *,
    status_code: int | None,
    error: str,
    retry_at: datetime | None,
) -> None:
    """`retry_at` None: out of attempts, the delivery is given up (an admin may resend it)."""
    values: dict[str, Any] = {"last_status_code": status_code, "last_error": error[:2000]}
    if retry_at is None:
        values["status"] = DeliveryStatus.FAILED
    else:
        values["next_attempt_at"] = retry_at
    await session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values)
    )


async def recent_deliveries(
    session: AsyncSession, webhook_id: int, limit: int
) -> list[WebhookDelivery]:
    result = await session.execute(
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    return list(result.scalars())


async def delivery_counts(session: AsyncSession, project_id: int) -> dict[int, dict[str, int]]:
    """Deliveries per webhook of the project and status."""
    result = await session.execute(
        select(WebhookDelivery.webhook_id, WebhookDelivery.status, func.count())
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(Webhook.project_id == project_id)
        .group_by(WebhookDelivery.webhook_id, WebhookDelivery.status)
    )
    counts: dict[int, dict[str, int]] = {}
    for webhook_id, status, count in result:
        counts.setdefault(webhook_id, {})[status] = int(count)
    return counts


async def webhooks_of(session: AsyncSession, project_id: int) -> list[Webhook]:
    statement = select(Webhook).where(Webhook.project_id == project_id).order_by(Webhook.id)
    return list((await session.scalars(statement)).all())


async def delivery_of(
    session: AsyncSession, webhook_id: int, delivery_id: int
) -> WebhookDelivery | None:
    return await session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.webhook_id == webhook_id
        )
    )
