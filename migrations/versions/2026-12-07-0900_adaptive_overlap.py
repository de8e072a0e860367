"""Adaptive overlap: a project's overlap settings, and the rater weights its posterior rule reads.

Existing projects keep fixed overlap (their k); the new columns get the defaults of the
models. `rater_weights` starts empty: every rater weighs as the prior until the project's
analytics are next computed. A conversation project stays fixed (its turns are judged by their
author alone).

Revision ID: 7c1d9e3a5b42
Revises: 6c41d9e2a7b3
Create Date: 2026-12-07 09:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "7c1d9e3a5b42"
down_revision: str | None = "6c41d9e2a7b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("overlap_mode", sa.String(length=16), "fixed"),
    ("overlap_min", sa.Integer(), "2"),
    ("overlap_max", sa.Integer(), "5"),
    ("overlap_rule", sa.String(length=16), "leader_share"),
    ("overlap_stop_votes", sa.Integer(), "2"),
    ("overlap_stop_share", sa.Float(), "0.75"),
    ("overlap_stop_posterior", sa.Float(), "0.88"),
)
CHECKS = (
    ("overlap_mode", "overlap_mode IN ('fixed', 'adaptive')"),
    ("overlap_range", "overlap_min BETWEEN 1 AND 100 AND overlap_max BETWEEN overlap_min AND 100"),
    ("overlap_rule", "overlap_rule IN ('leader_share', 'posterior')"),
    ("overlap_stop_votes_range", "overlap_stop_votes BETWEEN 1 AND 100"),
    ("overlap_stop_share_range", "overlap_stop_share > 0 AND overlap_stop_share <= 1"),
    (
        "overlap_stop_posterior_range",
        "overlap_stop_posterior >= 0.5 AND overlap_stop_posterior < 1",
    ),
)
RATED_ONCE = "conversations_rated_once"
RATED_ONCE_BEFORE = "kind = 'pairs' OR (raters_per_pair = 1 AND gold_rate = 0)"
RATED_ONCE_AFTER = (
    "kind = 'pairs' OR (raters_per_pair = 1 AND gold_rate = 0 AND overlap_mode = 'fixed')"
)


def _rated_once(condition: str) -> None:
    op.drop_constraint(op.f(f"ck_projects_{RATED_ONCE}"), "projects", type_="check")
    op.create_check_constraint(op.f(f"ck_projects_{RATED_ONCE}"), "projects", condition)


def upgrade() -> None:
    for name, type_, default in COLUMNS:
        op.add_column("projects", sa.Column(name, type_, server_default=default, nullable=False))
    for name, condition in CHECKS:
        op.create_check_constraint(op.f(f"ck_projects_{name}"), "projects", condition)
    _rated_once(RATED_ONCE_AFTER)
    op.create_table(
        "rater_weights",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("rater_id", sa.BigInteger(), nullable=False),
        sa.Column("confusion", postgresql.ARRAY(sa.Float()), nullable=False),
        sa.Column("judgments", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "cardinality(confusion) = 9", name=op.f("ck_rater_weights_confusion_3x3")
        ),
        sa.CheckConstraint("judgments >= 0", name=op.f("ck_rater_weights_judgments_nonnegative")),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_rater_weights_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rater_id"],
            ["users.id"],
            name=op.f("fk_rater_weights_rater_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "rater_id", name=op.f("pk_rater_weights")),
    )


def downgrade() -> None:
    op.drop_table("rater_weights")
    _rated_once(RATED_ONCE_BEFORE)
    for name, _ in reversed(CHECKS):
        op.drop_constraint(op.f(f"ck_projects_{name}"), "projects", type_="check")
    for name, _, _ in reversed(COLUMNS):
        op.drop_column("projects", name)
