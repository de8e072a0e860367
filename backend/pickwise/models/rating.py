"""The rater loop: capacity slots, leases handed to raters, and the judgments they submit."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from pickwise.models.base import Base, IdMixin, TimestampMixin, one_of
from pickwise.models.search import text_document
from pickwise.vocabulary import (
    AssignmentStatus,
    CanonicalSide,
    Choice,
    FlagReason,
    FlagResolution,
    SkipReason,
    SlotState,
)


class PairSlot(IdMixin, Base):
    """One of the k judgments a pair needs.

    A judgment consumes a slot (unique foreign key), so a pair can never hold more
    judgments than it has slots, whatever the timing. Gold pairs have no slots: every rater
    may see them.
    """

    __tablename__ = "pair_slots"
    __table_args__ = (
        UniqueConstraint("pair_id", "slot_no"),
        CheckConstraint(one_of("state", SlotState), name="state"),
        CheckConstraint("slot_no >= 1", name="slot_no_positive"),
        CheckConstraint(
            f"(state = '{SlotState.LEASED}') = (lease_expires_at IS NOT NULL)",
            name="lease_has_expiry",
        ),
        ForeignKeyConstraint(
            ["pair_id", "project_id"], ["pairs.id", "pairs.project_id"], ondelete="CASCADE"
        ),
        # The next-pair query walks this in queue order, so pairs already started are
        # finished before new ones are opened.
        Index(
            "ix_pair_slots_queue",
            "project_id",
            "queue_pos",
            "slot_no",
            postgresql_where=text(f"state <> '{SlotState.DONE}'"),
        ),
    )

    project_id: Mapped[int] = mapped_column(BigInteger)
    pair_id: Mapped[int] = mapped_column(BigInteger)
    slot_no: Mapped[int] = mapped_column()
    # The pair's place in the project's queue (the same for each of its slots): raters are
    # offered slots in this order (assignments.repository, "the queue").
    queue_pos: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(8), default=SlotState.OPEN)
    assignment_id: Mapped[int | None] = mapped_column(BigInteger)
    lease_expires_at: Mapped[datetime | None]


class Assignment(IdMixin, Base):
    """A pair shown to a rater. One per (pair, rater): nobody sees a pair twice."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("pair_id", "rater_id"),
        CheckConstraint(one_of("status", AssignmentStatus), name="status"),
        CheckConstraint(one_of("left_side", CanonicalSide), name="left_side"),
        CheckConstraint(one_of("skip_reason", SkipReason, nullable=True), name="skip_reason"),
        ForeignKeyConstraint(
            ["pair_id", "project_id"], ["pairs.id", "pairs.project_id"], ondelete="CASCADE"
        ),
        Index(
            "ix_assignments_open_lease",
            "rater_id",
            "project_id",
            postgresql_where=text(f"status = '{AssignmentStatus.LEASED}'"),
        ),
        # "Has this rater seen this pair?" is one probe here, asked per candidate slot by the
        # next-pair query; it also serves every lookup by rater_id alone.
        Index("ix_assignments_rater_id_pair_id", "rater_id", "pair_id"),
        # The rater's latest assignments in a project, newest first: the prompt they saw last
        # (the next pair is of another one) and the choice they may still change.
        Index("ix_assignments_rater_project_recent", "rater_id", "project_id", "id"),
    )

    project_id: Mapped[int] = mapped_column(BigInteger, index=True)
    pair_id: Mapped[int] = mapped_column(BigInteger)
    rater_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    slot_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("pair_slots.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), default=AssignmentStatus.LEASED)
    left_side: Mapped[str] = mapped_column(String(1))
    is_gold: Mapped[bool] = mapped_column(default=False)
    shown_at: Mapped[datetime]
    lease_expires_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    skip_reason: Mapped[str | None] = mapped_column(String(32))


class Judgment(IdMixin, Base):
    __tablename__ = "judgments"
    __table_args__ = (
        UniqueConstraint("pair_id", "rater_id"),
        UniqueConstraint("assignment_id"),
        UniqueConstraint("slot_id"),
        CheckConstraint(one_of("choice", Choice), name="choice"),
        CheckConstraint("strength IS NULL OR strength >= 0", name="strength_nonnegative"),
        CheckConstraint(one_of("left_side", CanonicalSide), name="left_side"),
        # Non-gold judgments must consume a capacity slot.
        CheckConstraint("is_gold OR slot_id IS NOT NULL", name="slot_unless_gold"),
        CheckConstraint("submitted_at >= shown_at", name="submitted_after_shown"),
        ForeignKeyConstraint(
            ["pair_id", "project_id"], ["pairs.id", "pairs.project_id"], ondelete="CASCADE"
        ),
        Index("ix_judgments_project_pair", "project_id", "pair_id"),
        # "Judgments since the analytics were computed": a short range scan per project.
        Index("ix_judgments_project_id_id", "project_id", "id"),
        # A rater's judgments in a project, counted on every rating page (all, and since their
        # midnight): an index-only count. Read newest first by the summary, in this order and
        # with the columns it reads included: an index-only scan with no sort.
        Index(
            "ix_judgments_rater_project_latest",
            "rater_id",
            "project_id",
            "submitted_at",
            "id",
            postgresql_include=["pair_id", "choice", "left_side"],
        ),
        # Updated in place (no pending list): no rater's submit pays for a pending-list flush.
        Index(
            "ix_judgments_rationale_search",
            text(text_document("rationale")),
            postgresql_using="gin",
            postgresql_with={"fastupdate": "off"},
            postgresql_where=text("rationale IS NOT NULL"),
        ),
    )

    project_id: Mapped[int] = mapped_column(BigInteger)
    pair_id: Mapped[int] = mapped_column(BigInteger)
    assignment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("assignments.id", ondelete="CASCADE")
    )
    rater_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    # RESTRICT: a slot that holds a judgment can never be deleted (e.g. when k is lowered).
    slot_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("pair_slots.id", ondelete="RESTRICT")
    )
    is_gold: Mapped[bool] = mapped_column(default=False)
    # Relative to the pair's canonical response_a / response_b, not to screen position.
    choice: Mapped[str] = mapped_column(String(8))
    strength: Mapped[int | None] = mapped_column()
    rationale: Mapped[str | None] = mapped_column(Text)
    criteria: Mapped[dict[str, Any]] = mapped_column(default=dict)
    left_side: Mapped[str] = mapped_column(String(1))
    shown_at: Mapped[datetime]
    submitted_at: Mapped[datetime]


class PairFlag(IdMixin, TimestampMixin, Base):
    __tablename__ = "pair_flags"
    __table_args__ = (
        CheckConstraint(one_of("reason", FlagReason), name="reason"),
        CheckConstraint(one_of("resolution", FlagResolution, nullable=True), name="resolution"),
        ForeignKeyConstraint(
            ["pair_id", "project_id"], ["pairs.id", "pairs.project_id"], ondelete="CASCADE"
        ),
    )

    project_id: Mapped[int] = mapped_column(BigInteger, index=True)
    pair_id: Mapped[int] = mapped_column(BigInteger, index=True)
    rater_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    resolution: Mapped[str | None] = mapped_column(String(16))
    resolved_at: Mapped[datetime | None]


class RaterWeight(Base):
    """How much a rater's vote weighs in a project's adaptive overlap (the posterior rule).

    ``confusion`` is the 3 x 3 matrix P(reported label | true label), row-major over
    (A, no preference, B) x (A, no preference, B): Dawid-Skene's estimate from the analytics,
    shrunk toward the prior (overlap.rules). Rewritten whenever the project's analytics are
    computed; a rater without a row weighs as the prior.
    """

    __tablename__ = "rater_weights"
    __table_args__ = (
        CheckConstraint("cardinality(confusion) = 9", name="confusion_3x3"),
        CheckConstraint("judgments >= 0", name="judgments_nonnegative"),
    )

    project_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    rater_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    confusion: Mapped[list[float]] = mapped_column(ARRAY(Float))
    # How many judgments the estimate rests on (gold included).
    judgments: Mapped[int] = mapped_column()
    computed_at: Mapped[datetime]


class IdempotencyKey(Base):
    """First answer to a request, replayed when the same key comes again."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column()
    response_body: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
