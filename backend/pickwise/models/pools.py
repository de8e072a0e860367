"""Rater pools: entry links for crowd platforms (Prolific and the like) and their participants."""

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pickwise.models.base import Base, IdMixin, TimestampMixin

# Participant ids end up in a synthetic e-mail address, so only characters that are safe there.
PARTICIPANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class RaterPool(IdMixin, TimestampMixin, Base):
    """One entry link of a project: whoever opens it with a participant id becomes a rater."""

    __tablename__ = "rater_pools"
    __table_args__ = (
        CheckConstraint("quota BETWEEN 1 AND 100000", name="quota_range"),
        CheckConstraint(
            "max_participants IS NULL OR max_participants >= 1", name="max_participants_positive"
        ),
        CheckConstraint("length(trim(name)) > 0", name="name_not_blank"),
        CheckConstraint(
            "completion_url IS NULL OR completion_url ~ '^https?://'", name="completion_url_http"
        ),
    )

    project_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    # Only the SHA-256 of the link's token is kept; the link is shown once.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))
    # Judgments each participant gives before the completion page.
    quota: Mapped[int] = mapped_column()
    completion_code: Mapped[str | None] = mapped_column(String(200))
    completion_url: Mapped[str | None] = mapped_column(Text)
    max_participants: Mapped[int | None] = mapped_column()
    is_active: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL")
    )


class PoolParticipant(IdMixin, TimestampMixin, Base):
    """The rater account made for one participant id of one pool."""

    __tablename__ = "pool_participants"
    __table_args__ = (
        UniqueConstraint("pool_id", "external_id"),
        CheckConstraint(f"external_id ~ '{PARTICIPANT_ID_PATTERN}'", name="external_id_format"),
    )

    pool_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("rater_pools.id", ondelete="CASCADE")
    )
    # Unique: an account belongs to at most one pool, so the quota check is one lookup.
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    external_id: Mapped[str] = mapped_column(String(64))
    completed_at: Mapped[datetime | None]
