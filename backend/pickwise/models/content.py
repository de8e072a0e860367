"""What admins import: batches of prompts, their candidate responses, and the pairs to rate."""

from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from pickwise.models.base import Base, IdMixin, TimestampMixin, one_of
from pickwise.models.search import prompt_document
from pickwise.vocabulary import BatchSource, PairStatus


class Batch(IdMixin, TimestampMixin, Base):
    __tablename__ = "batches"
    __table_args__ = (CheckConstraint(one_of("source", BatchSource), name="source"),)

    project_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    source: Mapped[str] = mapped_column(String(16))
    created_by_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL")
    )
    prompts_new: Mapped[int] = mapped_column(default=0)
    prompts_unchanged: Mapped[int] = mapped_column(default=0)
    responses_new: Mapped[int] = mapped_column(default=0)
    pairs_new: Mapped[int] = mapped_column(default=0)
    # Answers of this batch not searchable yet: an import leaves their words to the search
    # catch-up (batches.search_catchup), which counts this down and keeps its place in
    # `search_done_through` (a prompt id: the batch's prompts up to it are done).
    search_pending: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    search_done_through: Mapped[int] = mapped_column(
        BigInteger, default=0, server_default=text("0")
    )


class Prompt(IdMixin, TimestampMixin, Base):
    __tablename__ = "prompts"
    __table_args__ = (
        UniqueConstraint("project_id", "external_id"),
        UniqueConstraint("id", "project_id", name="uq_prompts_id_project"),
        CheckConstraint(
            "jsonb_typeof(turns) = 'array' AND jsonb_array_length(turns) > 0", name="turns_nonempty"
        ),
        # Prompts an import wrote are left out until the search catch-up marks them
        # searchable: the import does not compute their words (migration 2026-12-08-1500).
        Index(
            "ix_prompts_search",
            text(prompt_document()),
            postgresql_using="gin",
            postgresql_where=text("searchable"),
        ),
        # A batch's prompts in id order: the search catch-up walks them so.
        Index("ix_prompts_batch_id", "batch_id", "id"),
    )

    project_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="CASCADE")
    )
    batch_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("batches.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(Text)
    system: Mapped[str | None] = mapped_column(Text)
    # [{"role": "user"|"assistant", "content": str}, ...], ending on a user turn.
    turns: Mapped[list[Any]] = mapped_column()
    content_hash: Mapped[str] = mapped_column(String(64))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    # False for a prompt an import wrote, until the search catch-up reaches it: it is not in
    # `ix_prompts_search` yet (a search reads it directly, review.sql_filters.SEARCH_FOUND).
    searchable: Mapped[bool] = mapped_column(default=True, server_default=text("true"))


class Response(IdMixin, Base):
    __tablename__ = "responses"
    __table_args__ = (
        UniqueConstraint("prompt_id", "external_id"),
        UniqueConstraint("id", "prompt_id", name="uq_responses_id_prompt"),
        CheckConstraint("length(content) > 0", name="content_nonempty"),
        ForeignKeyConstraint(
            ["prompt_id", "project_id"], ["prompts.id", "prompts.project_id"], ondelete="CASCADE"
        ),
        # Answers without their words yet (imported, before the search catch-up) are left
        # out: a search's `search_vector @@ query` is never true of them.
        Index(
            "ix_responses_search",
            "search_vector",
            postgresql_using="gin",
            postgresql_where=text("search_vector IS NOT NULL"),
        ),
    )

    project_id: Mapped[int] = mapped_column(BigInteger, index=True)
    prompt_id: Mapped[int] = mapped_column(BigInteger)
    external_id: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    # The content's words, kept: the full-text index has no word positions, so a phrase
    # search rechecks each candidate answer, which reads this instead of parsing the text
    # again. Never loaded with the row (only the explorer's SQL reads it). NULL until the
    # search catch-up fills it, for an imported answer; a trigger fills it on any other
    # insert (migration 2026-12-08-0900).
    search_vector: Mapped[str | None] = mapped_column(TSVECTOR, deferred=True)


class Pair(IdMixin, TimestampMixin, Base):
    """Two responses to the same prompt, stored once in canonical order: A is the response
    listed first in the import file, which got the smaller id (a < b)."""

    __tablename__ = "pairs"
    __table_args__ = (
        UniqueConstraint("response_a_id", "response_b_id"),
        CheckConstraint("response_a_id < response_b_id", name="canonical_order"),
        CheckConstraint(one_of("status", PairStatus), name="status"),
        CheckConstraint(
            "gold_winner_id IS NULL OR gold_winner_id IN (response_a_id, response_b_id)",
            name="gold_winner_in_pair",
        ),
        CheckConstraint("is_gold = (gold_winner_id IS NOT NULL)", name="gold_has_winner"),
        CheckConstraint(
            "votes_wanted IS NULL OR votes_wanted BETWEEN 1 AND 100", name="votes_wanted_range"
        ),
        # Both responses belong to this pair's prompt: enforced by composite foreign keys.
        ForeignKeyConstraint(
            ["response_a_id", "prompt_id"],
            ["responses.id", "responses.prompt_id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["response_b_id", "prompt_id"],
            ["responses.id", "responses.prompt_id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["prompt_id", "project_id"], ["prompts.id", "prompts.project_id"], ondelete="CASCADE"
        ),
        UniqueConstraint("id", "project_id", name="uq_pairs_id_project"),
        Index(
            "ix_pairs_gold_active",
            "project_id",
            postgresql_where=text(f"is_gold AND status = '{PairStatus.ACTIVE}'"),
        ),
        # Pairs out of the queue (flagged, removed) are few: the analytics watermark reads
        # them on every dashboard view.
        Index(
            "ix_pairs_out_of_queue",
            "project_id",
            "id",
            postgresql_where=text(f"status <> '{PairStatus.ACTIVE}'"),
        ),
    )

    project_id: Mapped[int] = mapped_column(BigInteger, index=True)
    prompt_id: Mapped[int] = mapped_column(BigInteger, index=True)
    batch_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("batches.id", ondelete="CASCADE"), index=True
    )
    response_a_id: Mapped[int] = mapped_column(BigInteger)
    response_b_id: Mapped[int] = mapped_column(BigInteger)
    is_gold: Mapped[bool] = mapped_column(default=False)
    gold_winner_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=PairStatus.ACTIVE)
    # An admin left the pair out of every export (it stays in the queue and the explorer).
    excluded: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # An admin asked for more votes on this pair than the project's k: it gets
    # max(k, votes_wanted) slots, whatever k becomes later.
    votes_wanted: Mapped[int | None] = mapped_column()
