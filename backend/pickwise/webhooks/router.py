from typing import Annotated

from fastapi import APIRouter, Query

from pickwise.core.deps import SessionDep
from pickwise.projects.deps import AdminProject
from pickwise.webhooks import service
from pickwise.webhooks.schemas import (
    DeliveryRead,
    WebhookCreate,
    WebhookRead,
    WebhookSecret,
    WebhookUpdate,
)

router = APIRouter(prefix="/api/v1/projects/{project_id}/webhooks", tags=["webhooks"])


@router.get("", response_model=list[WebhookRead])
async def list_webhooks(project: AdminProject, session: SessionDep) -> list[WebhookRead]:
    return [WebhookRead.model_validate(w) for w in await service.list_webhooks(session, project)]


@router.post(
    "", response_model=WebhookSecret, status_code=201, summary="Add a webhook (secret shown once)"
)
async def create_webhook(
    body: WebhookCreate, project: AdminProject, session: SessionDep
) -> WebhookSecret:
    webhook = await service.create_webhook(session, project, body)
    return WebhookSecret(webhook=WebhookRead.model_validate(webhook), secret=webhook.secret)


@router.patch("/{webhook_id}", response_model=WebhookRead)
async def update_webhook(
    webhook_id: int, body: WebhookUpdate, project: AdminProject, session: SessionDep
) -> WebhookRead:
    webhook = await service.get_webhook_or_404(session, project, webhook_id)
    return WebhookRead.model_validate(await service.update_webhook(session, webhook, body))


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: int, project: AdminProject, session: SessionDep) -> None:
    webhook = await service.get_webhook_or_404(session, project, webhook_id)
    await service.delete_webhook(session, webhook)


@router.post("/{webhook_id}/rotate-secret", response_model=WebhookSecret)
async def rotate_secret(
    webhook_id: int, project: AdminProject, session: SessionDep
) -> WebhookSecret:
    webhook = await service.get_webhook_or_404(session, project, webhook_id)
    secret = await service.rotate_secret(session, webhook)
    return WebhookSecret(webhook=WebhookRead.model_validate(webhook), secret=secret)


@router.post("/{webhook_id}/ping", status_code=202, summary="Queue a test delivery")
async def ping(webhook_id: int, project: AdminProject, session: SessionDep) -> None:
    webhook = await service.get_webhook_or_404(session, project, webhook_id)
    await service.queue_ping(session, project, webhook)


@router.get("/{webhook_id}/deliveries", response_model=list[DeliveryRead])
async def list_deliveries(
    webhook_id: int,
    project: AdminProject,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[DeliveryRead]:
    webhook = await service.get_webhook_or_404(session, project, webhook_id)
    return [
        DeliveryRead.model_validate(d) for d in await service.deliveries(session, webhook, limit)
    ]


@router.post("/{webhook_id}/deliveries/{delivery_id}/resend", response_model=DeliveryRead)
async def resend(
    webhook_id: int, delivery_id: int, project: AdminProject, session: SessionDep
) -> DeliveryRead:
    webhook = await service.get_webhook_or_404(session, project, webhook_id)
    return DeliveryRead.model_validate(await service.resend(session, webhook, delivery_id))
