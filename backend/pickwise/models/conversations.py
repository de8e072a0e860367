"""Live conversations: a rater writes, two chat endpoints reply side by side, the rater picks
the better reply, and the conversation goes on from it (docs/conversations.md).

Each judged turn also becomes an ordinary prompt, two responses, a pair and a judgment (see
conversations/voting.py), so exports and analytics read turn votes like any other vote. These
tables hold what a pair cannot: the tree of turns, every generation attempt with its cost,
edits, and each rater's daily budget.
"""

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from pickwise.models.base import Base, IdMixin, TimestampMixin, one_of
from pickwise.models.content import Batch
from pickwise.models.generation import GenerationEndpoint
from pickwise.vocabulary import (
    BatchSource,
    ConversationStatus,
    OpenerSource,
    ReplyFailure,
    ReplyStatus,
    ShownSide,
)

MAX_TURN_CAP = 50
MAX_KEY_LENGTH = 200
# Server defaults (created_at and the like) come back with the INSERT, so reading them later
# needs no extra query (relationships and attributes never load lazily here).
EAGER_DEFAULTS = {"eager_defaults": True}


# Composite foreign keys below point at (id, project_id): the endpoint of a conversation
# project must be one of that project's own.
Index(
    "uq_generation_endpoints_id_project",
    GenerationEndpoint.id,
    GenerationEndpoint.project_id,
    unique=True,
)
# Judged turns become pairs of one batch per project, made on the first vote.
Index(
    "uq_batches_conversation_project",
    Batch.project_id,
    unique=True,
    postgresql_where=text(f"source = '{BatchSource.CONVERSATION}'"),
)


class ConversationSettings(Base):
    """What the admin chose for a conversation project (projects.kind = 'conversations')."""

    __tablename__ = "conversation_settings"
    __mapper_args__ = EAGER_DEFAULTS
    __table_args__ = (
        CheckConstraint(f"turn_cap BETWEEN 1 AND {MAX_TURN_CAP}", name="turn_cap_range"),
        CheckConstraint(one_of("opener_source", OpenerSource), name="opener_source"),
        CheckConstraint(
            "temperature IS NULL OR (temperature >= 0 AND temperature <= 2)",
            name="temperature_range",
        ),
        CheckConstraint("top_p IS NULL OR (top_p > 0 AND top_p <= 1)", name="top_p_range"),
        CheckConstraint(
            "max_tokens_per_reply IS NULL OR max_tokens_per_reply BETWEEN 1 AND 100000",
            name="max_tokens_range",
        ),
        CheckConstraint(
            "replies_per_rater_per_day IS NULL OR replies_per_rater_per_day >= 2",
            name="daily_replies_range",
        ),
    )

    project_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    system_prompt: Mapped[str | None] = mapped_column(Text)
    turn_cap: Mapped[int] = mapped_column(default=5)
    opener_source: Mapped[str] = mapped_column(String(16), default=OpenerSource.OWN)
    # Override the endpoints' own sampling settings when set.
    temperature: Mapped[float | None] = mapped_column()
    top_p: Mapped[float | None] = mapped_column()
    max_tokens_per_reply: Mapped[int | None] = mapped_column()
    # Replies (generation attempts, retries included) one rater may start per UTC day.
    replies_per_rater_per_day: Mapped[int | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ConversationEndpoint(Base):
    """An endpoint the project's conversations draw their two replies from."""

    __tablename__ = "conversation_endpoints"
    __table_args__ = (
        ForeignKeyConstraint(
            ["endpoint_id", "project_id"],
            ["generation_endpoints.id", "generation_endpoints.project_id"],
            ondelete="CASCADE",
        ),
    )

    project_id: Mapped[int] = mapped_column(
        BigInteger,
        ForeignKey("conversation_settings.project_id", ondelete="CASCADE"),
        primary_key=True,
    )
    endpoint_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class Conversation(IdMixin, TimestampMixin, Base):
    __tablename__ = "conversations"
    __mapper_args__ = EAGER_DEFAULTS
    __table_args__ = (
        CheckConstraint(one_of("status", ConversationStatus), name="status"),
        CheckConstraint(f"turn_cap BETWEEN 1 AND {MAX_TURN_CAP}", name="turn_cap_range"),
        CheckConstraint("(status = 'active') = (ended_at IS NULL)", name="ended_when_not_active"),
        CheckConstraint("jsonb_typeof(prefix) = 'array'", name="prefix_array"),
        # A double submit of the start form starts one conversation.
        UniqueConstraint("rater_id", "start_key"),
        # Nobody gets the same imported opener twice.
        Index(
            "uq_conversations_rater_opener",
            "rater_id",
            "opener_prompt_id",
            unique=True,
            postgresql_where=text("opener_prompt_id IS NOT NULL"),
        ),
        Index("ix_conversations_project_rater", "project_id", "rater_id"),
        Index("ix_conversations_opener", "opener_prompt_id"),
    )

    project_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="CASCADE")
    )
    rater_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    opener_prompt_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("prompts.id", ondelete="SET NULL")
    )
    # Copied at the start, so later changes to the settings or the opener do not rewrite it.
    system_prompt: Mapped[str | None] = mapped_column(Text)
    # Turns an imported opener brings before its last user message (alternating, from user).
    prefix: Mapped[list[Any]] = mapped_column(default=list)
    turn_cap: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default=ConversationStatus.ACTIVE)
    start_key: Mapped[str | None] = mapped_column(String(MAX_KEY_LENGTH))
    last_activity_at: Mapped[datetime] = mapped_column(server_default=func.now())
    ended_at: Mapped[datetime | None]


class ConversationTurn(IdMixin, TimestampMixin, Base):
    """The rater's message and the two replies it got; turns form a tree through their parent
    (today one branch per parent; a "regenerate" would add branch 1, 2, ...)."""

    __tablename__ = "conversation_turns"
    __mapper_args__ = EAGER_DEFAULTS
    __table_args__ = (
        CheckConstraint("depth >= 1", name="depth_positive"),
        CheckConstraint("branch >= 0", name="branch_nonnegative"),
        CheckConstraint("(parent_turn_id IS NULL) = (depth = 1)", name="root_has_no_parent"),
        CheckConstraint("length(user_content) > 0", name="user_content_nonempty"),
        CheckConstraint(
            "jsonb_typeof(context) = 'array' AND jsonb_array_length(context) > 0",
            name="context_nonempty",
        ),
        CheckConstraint(
            "left_endpoint_id IS NULL OR left_endpoint_id <> right_endpoint_id",
            name="two_endpoints",
        ),
        CheckConstraint(one_of("continue_side", ShownSide, nullable=True), name="continue_side"),
        CheckConstraint("(judged_at IS NULL) = (continue_side IS NULL)", name="judged_continues"),
        # Reloads, double submits and a second tab never add a second turn after the same one.
        UniqueConstraint("parent_turn_id", "branch"),
        Index(
            "uq_conversation_turns_root",
            "conversation_id",
            "branch",
            unique=True,
            postgresql_where=text("parent_turn_id IS NULL"),
        ),
        UniqueConstraint("conversation_id", "client_key"),
        UniqueConstraint("pair_id"),
    )

    conversation_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("conversations.id", ondelete="CASCADE")
    )
    parent_turn_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("conversation_turns.id", ondelete="CASCADE")
    )
    depth: Mapped[int] = mapped_column()
    branch: Mapped[int] = mapped_column(default=0)
    user_content: Mapped[str] = mapped_column(Text)
    # The messages both endpoints were sent: system prompt, earlier turns (with the replies
    # the rater continued from, edits applied) and this message.
    context: Mapped[list[Any]] = mapped_column()
    client_key: Mapped[str | None] = mapped_column(String(MAX_KEY_LENGTH))
    left_endpoint_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("generation_endpoints.id", ondelete="SET NULL")
    )
    right_endpoint_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("generation_endpoints.id", ondelete="SET NULL")
    )
    # Set by the vote: the pair it became, and which reply the conversation goes on from.
    pair_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("pairs.id", ondelete="SET NULL")
    )
    continue_side: Mapped[str | None] = mapped_column(String(8))
    judged_at: Mapped[datetime | None]


class ConversationReply(IdMixin, Base):
    """One generation attempt for one side of a turn; a retry is the next attempt."""

    __tablename__ = "conversation_replies"
    __mapper_args__ = EAGER_DEFAULTS
    __table_args__ = (
        UniqueConstraint("turn_id", "side", "attempt"),
        CheckConstraint(one_of("side", ShownSide), name="side"),
        CheckConstraint(one_of("status", ReplyStatus), name="status"),
        CheckConstraint(one_of("failure", ReplyFailure, nullable=True), name="failure_known"),
        CheckConstraint("attempt >= 1", name="attempt_positive"),
        CheckConstraint("(status = 'failed') = (failure IS NOT NULL)", name="failed_says_why"),
        CheckConstraint("status <> 'complete' OR length(content) > 0", name="complete_has_text"),
        CheckConstraint(
            "(status = 'generating') = (finished_at IS NULL)", name="finished_when_done"
        ),
        CheckConstraint("requests >= 0", name="requests_nonnegative"),
        CheckConstraint(
            "(prompt_tokens IS NULL OR prompt_tokens >= 0) "
            "AND (completion_tokens IS NULL OR completion_tokens >= 0)",
            name="tokens_nonnegative",
        ),
        Index("ix_conversation_replies_endpoint", "endpoint_id"),
        Index(
            "ix_conversation_replies_generating",
            "deadline_at",
            postgresql_where=text("status = 'generating'"),
        ),
    )

    turn_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("conversation_turns.id", ondelete="CASCADE")
    )
    side: Mapped[str] = mapped_column(String(8))
    attempt: Mapped[int] = mapped_column(default=1)
    endpoint_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("generation_endpoints.id", ondelete="SET NULL")
    )
    # Copied from the endpoint, so usage and exports keep them when it changes or goes.
    endpoint_name: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    served_model: Mapped[str | None] = mapped_column(String(200))
    sampling: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=ReplyStatus.GENERATING)
    content: Mapped[str] = mapped_column(Text, default="")
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    failure: Mapped[str | None] = mapped_column(String(16))
    problem: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int | None] = mapped_column()
    completion_tokens: Mapped[int | None] = mapped_column()
    # HTTP requests made for this attempt (a refused connection is retried once or twice).
    requests: Mapped[int] = mapped_column(default=0)
    first_token_ms: Mapped[int | None] = mapped_column()
    latency_ms: Mapped[int | None] = mapped_column()
    stop_requested: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # A reply still generating past this moment was abandoned (the server stopped).
    deadline_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class ConversationEdit(IdMixin, TimestampMixin, Base):
    """The rater's rewrite of the reply they continue from; the original stays as it was."""

    __tablename__ = "conversation_edits"
    __mapper_args__ = EAGER_DEFAULTS
    __table_args__ = (
        CheckConstraint("length(content) > 0", name="content_nonempty"),
        Index("ix_conversation_edits_turn", "turn_id", "id"),
    )

    turn_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("conversation_turns.id", ondelete="CASCADE")
    )
    content: Mapped[str] = mapped_column(Text)


class ConversationRaterDay(Base):
    """Replies started by one rater in one project on one UTC day: the budget counter."""

    __tablename__ = "conversation_rater_days"
    __table_args__ = (CheckConstraint("replies >= 0", name="replies_nonnegative"),)

    project_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    rater_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    replies: Mapped[int] = mapped_column(default=0)
