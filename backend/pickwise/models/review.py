"""Review and curation: one summary row per pair (what the explorer filters and sorts on) and
admins' adjudicated decisions with their audit trail.

`pair_summaries` is derived data, kept current by Postgres triggers in the same transaction
as whatever changed it (a judgment stored, edited or deleted; a pair flagged, excluded, made
gold; a rater excluded; a decision recorded), whichever code path did it. The triggers live
in migration 2026-12-06-1200_review; docs/review.md describes them.
"""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from pickwise.models.base import Base, IdMixin, one_of
from pickwise.vocabulary import Decision, PairStatus

# The share of the counted votes behind the most common choice; NULL without votes. Written
# out in each generated column (one generated column cannot read another), and used by the
# explorer to compute the same values from counts as they were at an earlier vote.
AGREEMENT_SQL = "greatest(votes_a, votes_b, ties, both_bad)::float8 / nullif(votes, 0)"
MAJORITY_SQL = """CASE
    WHEN votes_a > greatest(votes_b, ties, both_bad) THEN 'a'
    WHEN votes_b > greatest(votes_a, ties, both_bad) THEN 'b'
    WHEN ties > greatest(votes_a, votes_b, both_bad) THEN 'tie'
    WHEN both_bad > greatest(votes_a, votes_b, ties) THEN 'both_bad'
END"""


class PairSummary(Base):
    """What the pairs explorer reads of a pair, in one narrow row.

    Copied at creation (never change): project, batch, prompt, responses, models, created.
    Mirrored from `pairs`: gold, status, excluded, votes wanted; from `pair_flags`: open
    flags; from `pair_slots`: how many slots it has; from `adjudications`: the current
    decision. Counted from `judgments`: every
    judgment (`judgments`, which consumes the pair's slots) and the votes of raters not
    excluded from the project (`votes` and the counts per choice), which the agreement,
    majority and sort keys are computed from.
    """

    __tablename__ = "pair_summaries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["pair_id", "project_id"], ["pairs.id", "pairs.project_id"], ondelete="CASCADE"
        ),
        CheckConstraint(
            "votes = votes_a + votes_b + ties + both_bad AND votes <= judgments",
            name="counts_add_up",
        ),
        Index("ix_pair_summaries_created", "project_id", "created_at", "pair_id"),
        # The newest pairs with a vote: filters that need votes skip the waiting batches.
        Index(
            "ix_pair_summaries_voted",
            "project_id",
            "created_at",
            "pair_id",
            postgresql_where=text("judgments > 0"),
        ),
        Index("ix_pair_summaries_agreement_low", "project_id", "agreement_low", "pair_id"),
        Index("ix_pair_summaries_agreement_high", "project_id", "agreement_high", "pair_id"),
        Index("ix_pair_summaries_votes", "project_id", "votes", "pair_id"),
        Index("ix_pair_summaries_model_low", "project_id", "model_low", "model_high"),
        Index("ix_pair_summaries_model_high", "project_id", "model_high"),
        # Project first, like the created index: both conditions of a one-batch listing are
        # then index conditions, and the planner no longer prefers walking the whole
        # project's created index (it assumes the batch's pairs are spread evenly in it).
        Index("ix_pair_summaries_batch", "project_id", "batch_id", "created_at", "pair_id"),
        # Few pairs are in any of these states: one small index finds them all.
        Index(
            "ix_pair_summaries_notable",
            "project_id",
            "pair_id",
            postgresql_where=text(
                "open_flags > 0 OR excluded OR is_gold OR decision IS NOT NULL "
                f"OR pair_status <> '{PairStatus.ACTIVE}'"
            ),
        ),
    )

    pair_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    project_id: Mapped[int] = mapped_column(BigInteger)
    batch_id: Mapped[int] = mapped_column(BigInteger)
    prompt_id: Mapped[int] = mapped_column(BigInteger)
    response_a_id: Mapped[int] = mapped_column(BigInteger)
    response_b_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    # The two models in sorted order, so a model pair is one index lookup either way round.
    model_low: Mapped[str] = mapped_column(Text)
    model_high: Mapped[str] = mapped_column(Text)
    is_gold: Mapped[bool] = mapped_column(Boolean)
    pair_status: Mapped[str] = mapped_column(String(16))
    excluded: Mapped[bool] = mapped_column(Boolean)
    votes_wanted: Mapped[int | None] = mapped_column()
    open_flags: Mapped[int] = mapped_column(server_default="0")
    # The pair's slots (`pair_slots`): the votes its queue asks for. In an adaptive project,
    # those its stopping rule opened so far; every one judged means the rule settled it.
    slots: Mapped[int] = mapped_column(server_default="0")
    judgments: Mapped[int] = mapped_column(server_default="0")
    votes: Mapped[int] = mapped_column(server_default="0")
    votes_a: Mapped[int] = mapped_column(server_default="0")
    votes_b: Mapped[int] = mapped_column(server_default="0")
    ties: Mapped[int] = mapped_column(server_default="0")
    both_bad: Mapped[int] = mapped_column(server_default="0")
    rationales: Mapped[int] = mapped_column(server_default="0")
    decision: Mapped[str | None] = mapped_column(String(8))
    agreement: Mapped[float | None] = mapped_column(Float, Computed(AGREEMENT_SQL, persisted=True))
    majority: Mapped[str | None] = mapped_column(String(8), Computed(MAJORITY_SQL, persisted=True))
    # Sort keys: pairs without votes come last whichever way agreement is sorted.
    agreement_low: Mapped[float] = mapped_column(
        Float, Computed(f"coalesce({AGREEMENT_SQL}, 2)", persisted=True)
    )
    agreement_high: Mapped[float] = mapped_column(
        Float, Computed(f"coalesce(-({AGREEMENT_SQL}), 1)", persisted=True)
    )


class Adjudication(IdMixin, Base):
    """One decision an admin recorded on a pair. The pair's current decision is the one row
    with `is_current`; a new decision replaces it (`replaces_id` points back), a withdrawal
    ends it, and nothing is ever deleted: the rows are the audit trail."""

    __tablename__ = "adjudications"
    __table_args__ = (
        ForeignKeyConstraint(
            ["pair_id", "project_id"], ["pairs.id", "pairs.project_id"], ondelete="CASCADE"
        ),
        CheckConstraint(one_of("decision", Decision), name="decision"),
        CheckConstraint(
            "NOT (is_current AND withdrawn_at IS NOT NULL)", name="withdrawn_not_current"
        ),
        Index("ix_adjudications_pair", "pair_id", "id"),
        Index(
            "uq_adjudications_current",
            "pair_id",
            unique=True,
            postgresql_where=text("is_current"),
        ),
    )

    project_id: Mapped[int] = mapped_column(BigInteger)
    pair_id: Mapped[int] = mapped_column(BigInteger)
    decision: Mapped[str] = mapped_column(String(8))
    note: Mapped[str] = mapped_column(Text, default="")
    decided_by_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL")
    )
    decided_at: Mapped[datetime]
    replaces_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("adjudications.id", ondelete="SET NULL")
    )
    is_current: Mapped[bool] = mapped_column(default=True)
    withdrawn_at: Mapped[datetime | None]
    withdrawn_by_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL")
    )
