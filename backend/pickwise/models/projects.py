from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from pickwise.models.base import Base, IdMixin, TimestampMixin, one_of
from pickwise.vocabulary import (
    OverlapMode,
    PairingStrategy,
    PairOrder,
    ProjectKind,
    RationaleMode,
    StoppingRule,
)


class Project(IdMixin, TimestampMixin, Base):
    __tablename__ = "projects"
    __table_args__ = (
        CheckConstraint("raters_per_pair BETWEEN 1 AND 100", name="raters_per_pair_range"),
        CheckConstraint("lease_seconds BETWEEN 10 AND 86400", name="lease_seconds_range"),
        CheckConstraint(one_of("rationale_mode", RationaleMode), name="rationale"),
        CheckConstraint(one_of("pairing_strategy", PairingStrategy), name="pairing_strategy"),
        CheckConstraint(one_of("pair_order", PairOrder), name="pair_order"),
        CheckConstraint("pairs_per_prompt >= 1", name="pairs_per_prompt_positive"),
        CheckConstraint("gold_rate >= 0 AND gold_rate <= 1", name="gold_rate_range"),
        CheckConstraint("summary_every >= 0", name="summary_every_nonnegative"),
        CheckConstraint("undo_seconds BETWEEN 0 AND 86400", name="undo_seconds_range"),
        CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'", name="slug_format"),
        CheckConstraint(one_of("overlap_mode", OverlapMode), name="overlap_mode"),
        CheckConstraint(
            "overlap_min BETWEEN 1 AND 100 AND overlap_max BETWEEN overlap_min AND 100",
            name="overlap_range",
        ),
        CheckConstraint(one_of("overlap_rule", StoppingRule), name="overlap_rule"),
        CheckConstraint("overlap_stop_votes BETWEEN 1 AND 100", name="overlap_stop_votes_range"),
        CheckConstraint(
            "overlap_stop_share > 0 AND overlap_stop_share <= 1", name="overlap_stop_share_range"
        ),
        CheckConstraint(
            "overlap_stop_posterior >= 0.5 AND overlap_stop_posterior < 1",
            name="overlap_stop_posterior_range",
        ),
        CheckConstraint(one_of("kind", ProjectKind), name="kind"),
        # A conversation turn is judged by its author alone: one slot per pair, no gold, and
        # no adaptive overlap (it would open slots for other raters).
        CheckConstraint(
            "kind = 'pairs' OR (raters_per_pair = 1 AND gold_rate = 0 AND overlap_mode = 'fixed')",
            name="conversations_rated_once",
        ),
    )

    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    guidelines_md: Mapped[str] = mapped_column(Text, default="")
    raters_per_pair: Mapped[int] = mapped_column(default=1)
    lease_seconds: Mapped[int] = mapped_column(default=600)
    allow_tie: Mapped[bool] = mapped_column(default=True)
    allow_both_bad: Mapped[bool] = mapped_column(default=True)
    # Labels from weakest to strongest, e.g. ["slightly", "clearly", "much"]; empty = no scale.
    strength_scale: Mapped[list[Any]] = mapped_column(default=list)
    rationale_mode: Mapped[str] = mapped_column(String(16), default=RationaleMode.OPTIONAL)
    criteria: Mapped[list[Any]] = mapped_column(default=list)
    pairing_strategy: Mapped[str] = mapped_column(String(16), default=PairingStrategy.ALL)
    pairs_per_prompt: Mapped[int] = mapped_column(default=1)
    pairing_seed: Mapped[int] = mapped_column(default=0)
    # How new pairs are opened to raters: see assignments.repository, "the queue".
    pair_order: Mapped[str] = mapped_column(String(16), default=PairOrder.SHUFFLED)
    gold_rate: Mapped[float] = mapped_column(default=0.0)
    gold_feedback: Mapped[bool] = mapped_column(default=False)
    summary_every: Mapped[int] = mapped_column(default=20)
    # How long a rater may change their last choice or skip (0: never).
    undo_seconds: Mapped[int] = mapped_column(default=300)
    # Thresholds for rater flags (gold accuracy, position bias, speed); see analytics.
    quality_rules: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_archived: Mapped[bool] = mapped_column(default=False)
    # Adaptive overlap (overlap.rules): between overlap_min and overlap_max raters per pair,
    # stopping by overlap_rule; raters_per_pair stays the k a fixed project would use.
    overlap_mode: Mapped[str] = mapped_column(
        String(16), default=OverlapMode.FIXED, server_default=OverlapMode.FIXED
    )
    overlap_min: Mapped[int] = mapped_column(default=2, server_default="2")
    overlap_max: Mapped[int] = mapped_column(default=5, server_default="5")
    overlap_rule: Mapped[str] = mapped_column(
        String(16), default=StoppingRule.LEADER_SHARE, server_default=StoppingRule.LEADER_SHARE
    )
    overlap_stop_votes: Mapped[int] = mapped_column(default=2, server_default="2")
    overlap_stop_share: Mapped[float] = mapped_column(default=0.75, server_default="0.75")
    overlap_stop_posterior: Mapped[float] = mapped_column(default=0.88, server_default="0.88")
    kind: Mapped[str] = mapped_column(String(16), default=ProjectKind.PAIRS, server_default="pairs")


class ProjectMember(TimestampMixin, Base):
    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class ProjectRaterExclusion(Base):
    """A rater whose votes the project leaves out of exports, statistics and the explorer's
    counts. The votes stay in the database. Kept apart from the membership, so that an
    exclusion outlives the rater's removal (and re-adding) and a former member's votes can
    still be excluded. Postgres triggers recount the explorer's summaries when a row comes
    or goes (docs/review.md, "How the explorer stays current")."""

    __tablename__ = "project_rater_exclusions"

    project_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    excluded_at: Mapped[datetime] = mapped_column(server_default=func.now())
