"""What raters changed: a choice or skip replaced within the project's undo window is kept
here, so the admins can see it (exports and analytics read only the latest, in `judgments`
and `assignments`)."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from pickwise.models.base import Base, IdMixin, one_of
from pickwise.vocabulary import CanonicalSide, Choice, DecisionKind, SkipReason


class ReplacedDecision(IdMixin, Base):
    """One replaced decision of a rater on a pair: a judgment (choice relative to the pair's
    canonical A / B, as in `judgments`) or a skip (its reason)."""

    __tablename__ = "replaced_decisions"
    __table_args__ = (
        CheckConstraint(one_of("kind", DecisionKind), name="kind"),
        CheckConstraint(one_of("choice", Choice, nullable=True), name="choice"),
        CheckConstraint(one_of("skip_reason", SkipReason, nullable=True), name="skip_reason"),
        CheckConstraint(one_of("left_side", CanonicalSide), name="left_side"),
        CheckConstraint(
            f"(kind = '{DecisionKind.JUDGMENT}') = (choice IS NOT NULL)", name="judgment_choice"
        ),
        CheckConstraint(
            f"(kind = '{DecisionKind.SKIP}') = (skip_reason IS NOT NULL)", name="skip_has_reason"
        ),
        CheckConstraint("replaced_at >= decided_at", name="replaced_after_decided"),
        ForeignKeyConstraint(
            ["pair_id", "project_id"], ["pairs.id", "pairs.project_id"], ondelete="CASCADE"
        ),
        # A pair's history for the admin's pair view.
        Index("ix_replaced_decisions_project_pair", "project_id", "pair_id"),
        # "Changed since the analytics were computed": the newest id per project.
        Index("ix_replaced_decisions_project_id_id", "project_id", "id"),
    )

    project_id: Mapped[int] = mapped_column(BigInteger)
    pair_id: Mapped[int] = mapped_column(BigInteger)
    assignment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("assignments.id", ondelete="CASCADE"), index=True
    )
    rater_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    choice: Mapped[str | None] = mapped_column(String(8))
    strength: Mapped[int | None] = mapped_column()
    rationale: Mapped[str | None] = mapped_column(Text)
    criteria: Mapped[dict[str, Any]] = mapped_column(default=dict)
    skip_reason: Mapped[str | None] = mapped_column(String(32))
    left_side: Mapped[str] = mapped_column(String(1))
    decided_at: Mapped[datetime]
    replaced_at: Mapped[datetime]
