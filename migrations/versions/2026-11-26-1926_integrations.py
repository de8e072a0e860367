"""Integrations: rater pools (study links), chat endpoints for generation, webhooks.

Revision ID: cc0b746d1841
Revises: 755e6d2b7e9e
Create Date: 2026-11-26 19:26:39.046531+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "cc0b746d1841"
down_revision: str | None = "755e6d2b7e9e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "generation_endpoints",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("base_url", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("api_key_env", sa.String(length=100), nullable=True),
        sa.Column("temperature", sa.Double(), nullable=True),
        sa.Column("top_p", sa.Double(), nullable=True),
        sa.Column("max_tokens", sa.Integer(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "api_key_env IS NULL OR api_key_env ~ '^[A-Za-z_][A-Za-z0-9_]{0,99}$'",
            name=op.f("ck_generation_endpoints_api_key_env_format"),
        ),
        sa.CheckConstraint(
            "base_url ~ '^https?://'", name=op.f("ck_generation_endpoints_base_url_http")
        ),
        sa.CheckConstraint(
            "name ~ '^[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,99}$'",
            name=op.f("ck_generation_endpoints_name_format"),
        ),
        sa.CheckConstraint(
            "max_tokens IS NULL OR max_tokens BETWEEN 1 AND 1000000",
            name=op.f("ck_generation_endpoints_max_tokens_range"),
        ),
        sa.CheckConstraint(
            "temperature IS NULL OR (temperature >= 0 AND temperature <= 2)",
            name=op.f("ck_generation_endpoints_temperature_range"),
        ),
        sa.CheckConstraint(
            "top_p IS NULL OR (top_p > 0 AND top_p <= 1)",
            name=op.f("ck_generation_endpoints_top_p_range"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_generation_endpoints_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generation_endpoints")),
        sa.UniqueConstraint(
            "project_id", "name", name=op.f("uq_generation_endpoints_project_id_name")
        ),
    )
    op.create_index(
        op.f("ix_generation_endpoints_project_id"),
        "generation_endpoints",
        ["project_id"],
        unique=False,
    )
    op.create_table(
        "rater_pools",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_prefix", sa.String(length=16), nullable=False),
        sa.Column("quota", sa.Integer(), nullable=False),
        sa.Column("completion_code", sa.String(length=200), nullable=True),
        sa.Column("completion_url", sa.Text(), nullable=True),
        sa.Column("max_participants", sa.Integer(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.BigInteger(), nullable=True),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "completion_url IS NULL OR completion_url ~ '^https?://'",
            name=op.f("ck_rater_pools_completion_url_http"),
        ),
        sa.CheckConstraint("length(trim(name)) > 0", name=op.f("ck_rater_pools_name_not_blank")),
        sa.CheckConstraint(
            "max_participants IS NULL OR max_participants >= 1",
            name=op.f("ck_rater_pools_max_participants_positive"),
        ),
        sa.CheckConstraint("quota BETWEEN 1 AND 100000", name=op.f("ck_rater_pools_quota_range")),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_rater_pools_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_rater_pools_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rater_pools")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_rater_pools_token_hash")),
    )
    op.create_index(op.f("ix_rater_pools_project_id"), "rater_pools", ["project_id"], unique=False)
    op.create_table(
        "webhooks",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("events", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("url ~ '^https?://'", name=op.f("ck_webhooks_url_http")),
        sa.CheckConstraint(
            'jsonb_typeof(events) = \'array\' AND jsonb_array_length(events) > 0 AND events <@ \'["batch.imported", "batch.completed", "export.ready"]\'::jsonb',
            name=op.f("ck_webhooks_events_known"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_webhooks_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_index(op.f("ix_webhooks_project_id"), "webhooks", ["project_id"], unique=False)
    op.create_table(
        "pool_participants",
        sa.Column("pool_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "external_id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'",
            name=op.f("ck_pool_participants_external_id_format"),
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["rater_pools.id"],
            name=op.f("fk_pool_participants_pool_id_rater_pools"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_pool_participants_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pool_participants")),
        sa.UniqueConstraint(
            "pool_id", "external_id", name=op.f("uq_pool_participants_pool_id_external_id")
        ),
        sa.UniqueConstraint("user_id", name=op.f("uq_pool_participants_user_id")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("webhook_id", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "event IN ('batch.imported', 'batch.completed', 'export.ready', 'ping')",
            name=op.f("ck_webhook_deliveries_event"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')",
            name=op.f("ck_webhook_deliveries_status"),
        ),
        sa.CheckConstraint(
            "attempts >= 0", name=op.f("ck_webhook_deliveries_attempts_nonnegative")
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_webhook_deliveries_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "webhook_id", "event_key", name=op.f("uq_webhook_deliveries_webhook_id_event_key")
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_webhook_deliveries_due",
        table_name="webhook_deliveries",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_table("webhook_deliveries")
    op.drop_table("pool_participants")
    op.drop_index(op.f("ix_webhooks_project_id"), table_name="webhooks")
    op.drop_table("webhooks")
    op.drop_index(op.f("ix_rater_pools_project_id"), table_name="rater_pools")
    op.drop_table("rater_pools")
    op.drop_index(op.f("ix_generation_endpoints_project_id"), table_name="generation_endpoints")
    op.drop_table("generation_endpoints")
