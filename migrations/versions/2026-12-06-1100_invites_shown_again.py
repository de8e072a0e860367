"""Invites an admin can list, copy again and withdraw: a nonce the link's token is drawn from
(with the app's secret key), and when the invite was withdrawn.

Revision ID: c1d74e16a8d7
Revises: f9bc7f498b5a
Create Date: 2026-12-06 11:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c1d74e16a8d7"
down_revision: str | None = "f9bc7f498b5a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("invites", sa.Column("token_nonce", sa.String(length=64), nullable=True))
    op.add_column("invites", sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("invites", "revoked_at")
    op.drop_column("invites", "token_nonce")
