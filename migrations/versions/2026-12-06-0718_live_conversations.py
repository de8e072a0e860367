"""Live conversations: conversation projects, their settings and endpoints, conversations, turns
(a tree), every reply attempt with its cost, edits, and the raters' daily reply counters.

Projects get a kind ('pairs' or 'conversations'; a conversation project rates each pair once
and has no gold pairs), and batches a source 'conversation' for the batch that holds a
conversation project's judged turns as pairs.

Revision ID: a1b038eeac58
Revises: 5b2c9e7f4a18
Create Date: 2026-12-06 07:18:12.821114+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a1b038eeac58"
down_revision: str | None = "5b2c9e7f4a18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_SOURCES = "'cli', 'api', 'web', 'client'"
NEW_SOURCES = OLD_SOURCES + ", 'conversation'"


def upgrade() -> None:
    # First: the composite foreign keys below point at (id, project_id).
    op.create_index(
        "uq_batches_conversation_project",
        "batches",
        ["project_id"],
        unique=True,
        postgresql_where=sa.text("source = 'conversation'"),
    )
    op.create_index(
        "uq_generation_endpoints_id_project",
        "generation_endpoints",
        ["id", "project_id"],
        unique=True,
    )
    op.create_table(
        "conversation_rater_days",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("rater_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("replies", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "replies >= 0", name=op.f("ck_conversation_rater_days_replies_nonnegative")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_conversation_rater_days_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rater_id"],
            ["users.id"],
            name=op.f("fk_conversation_rater_days_rater_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "project_id", "rater_id", "day", name=op.f("pk_conversation_rater_days")
        ),
    )
    op.create_table(
        "conversation_settings",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=True),
        sa.Column("turn_cap", sa.Integer(), nullable=False),
        sa.Column("opener_source", sa.String(length=16), nullable=False),
        sa.Column("temperature", sa.Double(), nullable=True),
        sa.Column("top_p", sa.Double(), nullable=True),
        sa.Column("max_tokens_per_reply", sa.Integer(), nullable=True),
        sa.Column("replies_per_rater_per_day", sa.Integer(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "opener_source IN ('own', 'imported', 'both')",
            name=op.f("ck_conversation_settings_opener_source"),
        ),
        sa.CheckConstraint(
            "max_tokens_per_reply IS NULL OR max_tokens_per_reply BETWEEN 1 AND 100000",
            name=op.f("ck_conversation_settings_max_tokens_range"),
        ),
        sa.CheckConstraint(
            "replies_per_rater_per_day IS NULL OR replies_per_rater_per_day >= 2",
            name=op.f("ck_conversation_settings_daily_replies_range"),
        ),
        sa.CheckConstraint(
            "temperature IS NULL OR (temperature >= 0 AND temperature <= 2)",
            name=op.f("ck_conversation_settings_temperature_range"),
        ),
        sa.CheckConstraint(
            "top_p IS NULL OR (top_p > 0 AND top_p <= 1)",
            name=op.f("ck_conversation_settings_top_p_range"),
        ),
        sa.CheckConstraint(
            "turn_cap BETWEEN 1 AND 50", name=op.f("ck_conversation_settings_turn_cap_range")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_conversation_settings_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_conversation_settings")),
    )
    op.create_table(
        "conversation_endpoints",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("endpoint_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id", "project_id"],
            ["generation_endpoints.id", "generation_endpoints.project_id"],
            name=op.f("fk_conversation_endpoints_endpoint_id_generation_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["conversation_settings.project_id"],
            name=op.f("fk_conversation_endpoints_project_id_conversation_settings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "project_id", "endpoint_id", name=op.f("pk_conversation_endpoints")
        ),
    )
    op.create_table(
        "conversations",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("rater_id", sa.BigInteger(), nullable=False),
        sa.Column("opener_prompt_id", sa.BigInteger(), nullable=True),
        sa.Column("system_prompt", sa.Text(), nullable=True),
        sa.Column("prefix", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("turn_cap", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("start_key", sa.String(length=200), nullable=True),
        sa.Column(
            "last_activity_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(status = 'active') = (ended_at IS NULL)",
            name=op.f("ck_conversations_ended_when_not_active"),
        ),
        sa.CheckConstraint(
            "jsonb_typeof(prefix) = 'array'", name=op.f("ck_conversations_prefix_array")
        ),
        sa.CheckConstraint(
            "status IN ('active', 'ended', 'complete')", name=op.f("ck_conversations_status")
        ),
        sa.CheckConstraint(
            "turn_cap BETWEEN 1 AND 50", name=op.f("ck_conversations_turn_cap_range")
        ),
        sa.ForeignKeyConstraint(
            ["opener_prompt_id"],
            ["prompts.id"],
            name=op.f("fk_conversations_opener_prompt_id_prompts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_conversations_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rater_id"],
            ["users.id"],
            name=op.f("fk_conversations_rater_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.UniqueConstraint(
            "rater_id", "start_key", name=op.f("uq_conversations_rater_id_start_key")
        ),
    )
    op.create_index("ix_conversations_opener", "conversations", ["opener_prompt_id"], unique=False)
    op.create_index(
        "ix_conversations_project_rater", "conversations", ["project_id", "rater_id"], unique=False
    )
    op.create_index(
        "uq_conversations_rater_opener",
        "conversations",
        ["rater_id", "opener_prompt_id"],
        unique=True,
        postgresql_where=sa.text("opener_prompt_id IS NOT NULL"),
    )
    op.create_table(
        "conversation_turns",
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("parent_turn_id", sa.BigInteger(), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("branch", sa.Integer(), nullable=False),
        sa.Column("user_content", sa.Text(), nullable=False),
        sa.Column("context", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("client_key", sa.String(length=200), nullable=True),
        sa.Column("left_endpoint_id", sa.BigInteger(), nullable=True),
        sa.Column("right_endpoint_id", sa.BigInteger(), nullable=True),
        sa.Column("pair_id", sa.BigInteger(), nullable=True),
        sa.Column("continue_side", sa.String(length=8), nullable=True),
        sa.Column("judged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "continue_side IS NULL OR continue_side IN ('left', 'right')",
            name=op.f("ck_conversation_turns_continue_side"),
        ),
        sa.CheckConstraint(
            "jsonb_typeof(context) = 'array' AND jsonb_array_length(context) > 0",
            name=op.f("ck_conversation_turns_context_nonempty"),
        ),
        sa.CheckConstraint(
            "(judged_at IS NULL) = (continue_side IS NULL)",
            name=op.f("ck_conversation_turns_judged_continues"),
        ),
        sa.CheckConstraint(
            "(parent_turn_id IS NULL) = (depth = 1)",
            name=op.f("ck_conversation_turns_root_has_no_parent"),
        ),
        sa.CheckConstraint("branch >= 0", name=op.f("ck_conversation_turns_branch_nonnegative")),
        sa.CheckConstraint("depth >= 1", name=op.f("ck_conversation_turns_depth_positive")),
        sa.CheckConstraint(
            "left_endpoint_id IS NULL OR left_endpoint_id <> right_endpoint_id",
            name=op.f("ck_conversation_turns_two_endpoints"),
        ),
        sa.CheckConstraint(
            "length(user_content) > 0", name=op.f("ck_conversation_turns_user_content_nonempty")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_turns_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["left_endpoint_id"],
            ["generation_endpoints.id"],
            name=op.f("fk_conversation_turns_left_endpoint_id_generation_endpoints"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["pair_id"],
            ["pairs.id"],
            name=op.f("fk_conversation_turns_pair_id_pairs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["parent_turn_id"],
            ["conversation_turns.id"],
            name=op.f("fk_conversation_turns_parent_turn_id_conversation_turns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["right_endpoint_id"],
            ["generation_endpoints.id"],
            name=op.f("fk_conversation_turns_right_endpoint_id_generation_endpoints"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_turns")),
        sa.UniqueConstraint(
            "conversation_id",
            "client_key",
            name=op.f("uq_conversation_turns_conversation_id_client_key"),
        ),
        sa.UniqueConstraint("pair_id", name=op.f("uq_conversation_turns_pair_id")),
        sa.UniqueConstraint(
            "parent_turn_id", "branch", name=op.f("uq_conversation_turns_parent_turn_id_branch")
        ),
    )
    op.create_index(
        "uq_conversation_turns_root",
        "conversation_turns",
        ["conversation_id", "branch"],
        unique=True,
        postgresql_where=sa.text("parent_turn_id IS NULL"),
    )
    op.create_table(
        "conversation_edits",
        sa.Column("turn_id", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "length(content) > 0", name=op.f("ck_conversation_edits_content_nonempty")
        ),
        sa.ForeignKeyConstraint(
            ["turn_id"],
            ["conversation_turns.id"],
            name=op.f("fk_conversation_edits_turn_id_conversation_turns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_edits")),
    )
    op.create_index(
        "ix_conversation_edits_turn", "conversation_edits", ["turn_id", "id"], unique=False
    )
    op.create_table(
        "conversation_replies",
        sa.Column("turn_id", sa.BigInteger(), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("endpoint_id", sa.BigInteger(), nullable=True),
        sa.Column("endpoint_name", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("served_model", sa.String(length=200), nullable=True),
        sa.Column("sampling", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("finish_reason", sa.String(length=32), nullable=True),
        sa.Column("failure", sa.String(length=16), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("first_token_ms", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("stop_requested", sa.Boolean(), nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.CheckConstraint(
            "(status = 'failed') = (failure IS NOT NULL)",
            name=op.f("ck_conversation_replies_failed_says_why"),
        ),
        sa.CheckConstraint(
            "(status = 'generating') = (finished_at IS NULL)",
            name=op.f("ck_conversation_replies_finished_when_done"),
        ),
        sa.CheckConstraint(
            "failure IS NULL OR failure IN ('error', 'timeout', 'connection', 'empty', 'stopped', 'interrupted', 'configuration')",
            name=op.f("ck_conversation_replies_failure_known"),
        ),
        sa.CheckConstraint("side IN ('left', 'right')", name=op.f("ck_conversation_replies_side")),
        sa.CheckConstraint(
            "status <> 'complete' OR length(content) > 0",
            name=op.f("ck_conversation_replies_complete_has_text"),
        ),
        sa.CheckConstraint(
            "status IN ('generating', 'complete', 'failed')",
            name=op.f("ck_conversation_replies_status"),
        ),
        sa.CheckConstraint(
            "(prompt_tokens IS NULL OR prompt_tokens >= 0) AND (completion_tokens IS NULL OR completion_tokens >= 0)",
            name=op.f("ck_conversation_replies_tokens_nonnegative"),
        ),
        sa.CheckConstraint("attempt >= 1", name=op.f("ck_conversation_replies_attempt_positive")),
        sa.CheckConstraint(
            "requests >= 0", name=op.f("ck_conversation_replies_requests_nonnegative")
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["generation_endpoints.id"],
            name=op.f("fk_conversation_replies_endpoint_id_generation_endpoints"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["turn_id"],
            ["conversation_turns.id"],
            name=op.f("fk_conversation_replies_turn_id_conversation_turns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_replies")),
        sa.UniqueConstraint(
            "turn_id", "side", "attempt", name=op.f("uq_conversation_replies_turn_id_side_attempt")
        ),
    )
    op.create_index(
        "ix_conversation_replies_endpoint", "conversation_replies", ["endpoint_id"], unique=False
    )
    op.create_index(
        "ix_conversation_replies_generating",
        "conversation_replies",
        ["deadline_at"],
        unique=False,
        postgresql_where=sa.text("status = 'generating'"),
    )
    op.add_column(
        "projects", sa.Column("kind", sa.String(length=16), server_default="pairs", nullable=False)
    )
    op.create_check_constraint(
        op.f("ck_projects_kind"), "projects", "kind IN ('pairs', 'conversations')"
    )
    op.create_check_constraint(
        op.f("ck_projects_conversations_rated_once"),
        "projects",
        "kind = 'pairs' OR (raters_per_pair = 1 AND gold_rate = 0)",
    )
    op.drop_constraint(op.f("ck_batches_source"), "batches", type_="check")
    op.create_check_constraint(op.f("ck_batches_source"), "batches", f"source IN ({NEW_SOURCES})")


def downgrade() -> None:
    # The judged turns' pairs go with their batch (they cascade); their prompts too.
    op.execute("DELETE FROM batches WHERE source = 'conversation'")
    op.drop_constraint(op.f("ck_batches_source"), "batches", type_="check")
    op.create_check_constraint(op.f("ck_batches_source"), "batches", f"source IN ({OLD_SOURCES})")
    op.drop_column("projects", "kind")
    op.drop_index(
        "uq_batches_conversation_project",
        table_name="batches",
        postgresql_where=sa.text("source = 'conversation'"),
    )
    op.drop_index(
        "ix_conversation_replies_generating",
        table_name="conversation_replies",
        postgresql_where=sa.text("status = 'generating'"),
    )
    op.drop_index("ix_conversation_replies_endpoint", table_name="conversation_replies")
    op.drop_table("conversation_replies")
    op.drop_index("ix_conversation_edits_turn", table_name="conversation_edits")
    op.drop_table("conversation_edits")
    op.drop_index(
        "uq_conversation_turns_root",
        table_name="conversation_turns",
        postgresql_where=sa.text("parent_turn_id IS NULL"),
    )
    op.drop_table("conversation_turns")
    op.drop_index(
        "uq_conversations_rater_opener",
        table_name="conversations",
        postgresql_where=sa.text("opener_prompt_id IS NOT NULL"),
    )
    op.drop_index("ix_conversations_project_rater", table_name="conversations")
    op.drop_index("ix_conversations_opener", table_name="conversations")
    op.drop_table("conversations")
    op.drop_table("conversation_endpoints")
    op.drop_table("conversation_settings")
    op.drop_table("conversation_rater_days")
    # Last: the composite foreign keys pointed at it.
    op.drop_index("uq_generation_endpoints_id_project", table_name="generation_endpoints")
