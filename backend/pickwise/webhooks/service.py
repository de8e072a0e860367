"""Webhooks: what admins set up, and the events queued for them.

Events go into `webhook_deliveries` in the same transaction as whatever caused them (or, for
batch events, when the background worker notices them), and the worker sends them; see
`worker.py`. Every delivery has a stable `id` (its event key) so receivers can drop repeats:
delivery is at least once.
"""

import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.clock import utcnow
from pickwise.core.errors import Conflict, NotFound
from pickwise.core.outbound import check_url
from pickwise.models import Project, Webhook, WebhookDelivery
from pickwise.projects import repository as projects_repository
from pickwise.vocabulary import PING_EVENT, DeliveryStatus, WebhookEvent
from pickwise.webhooks import repository
from pickwise.webhooks.schemas import WebhookCreate, WebhookUpdate
from pickwise.webhooks.signing import new_secret

# Most events one sweep queues; the rest wait for the next sweep.
SWEEP_LIMIT = 500


def envelope(
    event: str,
    event_key: str,
    project_id: int,
    project_slug: str,
    data: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": event_key,
        "event": event,
        "created_at": now.isoformat(),
        "project": {"id": project_id, "slug": project_slug},
        "data": data,
    }


async def list_webhooks(session: AsyncSession, project: Project) -> list[Webhook]:
    return await repository.webhooks_of(session, project.id)


async def get_webhook_or_404(session: AsyncSession, project: Project, webhook_id: int) -> Webhook:
    webhook = await projects_repository.in_project(session, Webhook, project.id, webhook_id)
    if webhook is None:
        raise NotFound(f"webhook {webhook_id}: no such webhook in this project")
    return webhook


async def create_webhook(session: AsyncSession, project: Project, data: WebhookCreate) -> Webhook:
    await check_url(data.url, "url")
    webhook = Webhook(
        project_id=project.id,
        url=data.url,
        description=data.description.strip(),
        secret=new_secret(),
        events=list(data.events),
    )
    session.add(webhook)
    await session.flush()
    return webhook


async def update_webhook(session: AsyncSession, webhook: Webhook, data: WebhookUpdate) -> Webhook:
    if data.url is not None:
        await check_url(data.url, "url")
    for field, value in data.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(webhook, field, list(value) if field == "events" else value)
    await session.flush()
    return webhook


async def rotate_secret(session: AsyncSession, webhook: Webhook) -> str:
    webhook.secret = new_secret()
    await session.flush()
    return webhook.secret


async def delete_webhook(session: AsyncSession, webhook: Webhook) -> None:
    await session.delete(webhook)
    await session.flush()


async def deliveries(session: AsyncSession, webhook: Webhook, limit: int) -> list[WebhookDelivery]:
    return await repository.recent_deliveries(session, webhook.id, limit)


async def resend(session: AsyncSession, webhook: Webhook, delivery_id: int) -> WebhookDelivery:
    """Queue a delivery again (a given-up one, say) for its next attempt now."""
    delivery = await repository.delivery_of(session, webhook.id, delivery_id)
    if delivery is None:
        raise NotFound(f"delivery {delivery_id}: no such delivery of this webhook")
    if delivery.status == DeliveryStatus.PENDING:
        raise Conflict("This delivery is still being tried.")
    delivery.status, delivery.attempts, delivery.next_attempt_at = (
        DeliveryStatus.PENDING,
        0,
        utcnow(),
    )
    await session.flush()
    return delivery


async def queue_ping(session: AsyncSession, project: Project, webhook: Webhook) -> None:
    """A test event, so an admin can check the receiver and its signature check."""
    now = utcnow()
    key = f"ping:{uuid.uuid4()}"
    payload = envelope(PING_EVENT, key, project.id, project.slug, {"webhook_id": webhook.id}, now)
    await repository.queue(session, webhook.id, PING_EVENT, key, payload, now)


async def queue_export_ready(
    session: AsyncSession, project: Project, data: dict[str, Any], now: datetime | None = None
) -> int:
    """Tell the project's webhooks that an export was written; `data` says what and where
    (format, path, counts). Returns the number of deliveries queued."""
    now = now or utcnow()
    event = WebhookEvent.EXPORT_READY
    key = f"{event}:{uuid.uuid4()}"
    payload = envelope(event, key, project.id, project.slug, data, now)
    queued = 0
    for webhook in await repository.active_webhooks(session, project.id, event):
        queued += await repository.queue(session, webhook.id, event, key, payload, now)
    return queued


async def queue_export_written(
    session: AsyncSession, project: Project, folder: Path, manifest: Mapping[str, Any]
) -> int:
    """export.ready for an export folder just written (CLI or admin page): the event carries
    the folder's path and its manifest (format, options, counts, files with their sha256)."""
    return await queue_export_ready(
        session, project, {"path": str(folder), "manifest": dict(manifest)}
    )


def _batch_data(facts: dict[str, Any]) -> dict[str, Any]:
    return {
        "batch": {
            "id": facts["id"],
            "filename": facts["filename"],
            "source": facts["source"],
            "imported_at": facts["created_at"].isoformat(),
            "prompts_new": facts["prompts_new"],
            "prompts_unchanged": facts["prompts_unchanged"],
            "responses_new": facts["responses_new"],
            "pairs_new": facts["pairs_new"],
            "pairs_active": facts["pairs_active"],
            "judgments": facts["judgments"],
        }
    }


PairIdRanges = dict[int, tuple[int, int] | None]
"""Batch id → the id range of its regular pairs (fixed once imported, so worth keeping)."""


async def queue_batch_events(
    session: AsyncSession,
    now: datetime | None = None,
    ranges: PairIdRanges | None = None,
    incomplete: set[int] | None = None,
) -> int:
    """Queue batch.imported and batch.completed for batches webhooks have not heard about;
    `incomplete` gets the batches a batch.completed webhook still waits for.

    Looking instead of being told keeps the importer and the rater loop free of webhook
    code, and catches every way a batch can finish (last judgment, k lowered, pairs removed
    or flagged). Each incomplete batch costs one index probe per call.
    """
    now = now or utcnow()
    ranges = {} if ranges is None else ranges
    incomplete = set() if incomplete is None else incomplete
    incomplete.clear()
    events = [
        (WebhookEvent.BATCH_IMPORTED, webhook_id, batch_id)
        for webhook_id, batch_id in await repository.new_batch_events(session, SWEEP_LIMIT)
    ]
    for webhook_id, batch_id, project_id in await repository.completion_candidates(
        session, SWEEP_LIMIT
    ):
        if batch_id not in ranges:
            ranges[batch_id] = await repository.pair_id_range(session, batch_id)
        pair_ids = ranges[batch_id]
        if pair_ids is None:
            continue
        if await repository.has_open_work(session, project_id, batch_id, pair_ids):
            incomplete.add(batch_id)
        else:
            events.append((WebhookEvent.BATCH_COMPLETED, webhook_id, batch_id))
    queued = 0
    for event, webhook_id, batch_id in events:
        facts = await repository.batch_facts(session, batch_id)
        key = f"{event}:{batch_id}"
        payload = envelope(event, key, facts["project_id"], facts["slug"], _batch_data(facts), now)
        queued += await repository.queue(session, webhook_id, event, key, payload, now)
    return queued
