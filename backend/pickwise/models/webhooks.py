"""Webhooks of a project and their deliveries (an outbox in Postgres, so they survive restarts)."""

import json
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from pickwise.models.base import Base, IdMixin, TimestampMixin, one_of
from pickwise.vocabulary import PING_EVENT, DeliveryStatus, WebhookEvent


class Webhook(IdMixin, TimestampMixin, Base):
    __tablename__ = "webhooks"
    __table_args__ = (
        CheckConstraint("url ~ '^https?://'", name="url_http"),
        CheckConstraint(
            "jsonb_typeof(events) = 'array' AND jsonb_array_length(events) > 0 "
            f"AND events <@ '{json.dumps(list(WebhookEvent))}'::jsonb",
            name="events_known",
        ),
    )

    project_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(String(200), default="")
    # Kept in the clear: signing needs it. Shown to admins once, when made or rotated.
    secret: Mapped[str] = mapped_column(String(100))
    events: Mapped[list[Any]] = mapped_column()
    is_active: Mapped[bool] = mapped_column(default=True)


class WebhookDelivery(IdMixin, TimestampMixin, Base):
    """One event for one webhook; retried with backoff until delivered or out of attempts."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The same event is never queued twice for a webhook, whoever notices it first.
        UniqueConstraint("webhook_id", "event_key"),
        CheckConstraint(one_of("event", (*WebhookEvent, PING_EVENT)), name="event"),
        CheckConstraint(one_of("status", DeliveryStatus), name="status"),
        CheckConstraint("attempts >= 0", name="attempts_nonnegative"),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text(f"status = '{DeliveryStatus.PENDING}'"),
        ),
    )

    webhook_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("webhooks.id", ondelete="CASCADE")
    )
    event: Mapped[str] = mapped_column(String(32))
    # e.g. "batch.completed:12"; the receiver sees it as the event id.
    event_key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_status_code: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
