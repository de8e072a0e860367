from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pickwise.vocabulary import WebhookEvent

URL_PATTERN = r"^https?://\S+$"


def _distinct(events: list[WebhookEvent] | None) -> list[WebhookEvent] | None:
    if events is None:
        return None
    if not events:
        raise ValueError("pick at least one event")
    return sorted(set(events))


class WebhookCreate(BaseModel):
    url: str = Field(max_length=2000, pattern=URL_PATTERN)
    events: list[WebhookEvent] = Field(description="batch.imported, batch.completed, export.ready.")
    description: str = Field("", max_length=200)

    _events = field_validator("events")(_distinct)


class WebhookUpdate(BaseModel):
    url: str | None = Field(None, max_length=2000, pattern=URL_PATTERN)
    events: list[WebhookEvent] | None = None
    description: str | None = Field(None, max_length=200)
    is_active: bool | None = None

    _events = field_validator("events")(_distinct)


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    url: str
    description: str
    events: list[str]
    is_active: bool
    created_at: datetime


class WebhookSecret(BaseModel):
    """The signing secret is shown here only: when the webhook is made or its secret rotated."""

    webhook: WebhookRead
    secret: str


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event: str
    event_key: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    payload: dict[str, Any]
