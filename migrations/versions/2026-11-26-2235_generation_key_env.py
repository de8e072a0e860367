"""Generation endpoints: api_key_env must name a variable ending in _API_KEY.

Endpoints whose api_key_env breaks the new rule keep their row, lose the variable name
(set to NULL) and are deactivated, so nothing sends a request without its key, or with a
variable that was never meant for it. The upgrade logs each one (project id, endpoint id
and name, old variable) as a warning; an admin sets a *_API_KEY variable and reactivates
the endpoint. Refusing to upgrade instead would keep the whole deployment on the old
version for one misnamed variable.

Revision ID: 8e5f3a6c1d27
Revises: 4d7a1e2b9c30
Create Date: 2026-11-26 22:35:00.000000+00:00
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8e5f3a6c1d27"
down_revision: str | None = "4d7a1e2b9c30"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_PATTERN = "^[A-Za-z][A-Za-z0-9_]{0,91}_API_KEY$"
OLD_PATTERN = "^[A-Za-z_][A-Za-z0-9_]{0,99}$"
CONSTRAINT = "ck_generation_endpoints_api_key_env_format"

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    cleared = op.get_bind().execute(
        sa.text(
            "WITH bad AS (SELECT id, api_key_env FROM generation_endpoints "
            "WHERE api_key_env IS NOT NULL AND api_key_env !~ :pattern FOR UPDATE) "
            "UPDATE generation_endpoints e SET api_key_env = NULL, is_active = false "
            "FROM bad WHERE e.id = bad.id "
            "RETURNING e.project_id, e.id, e.name, bad.api_key_env"
        ),
        {"pattern": NEW_PATTERN},
    )
    for project_id, endpoint_id, name, old in cleared:
        log.warning(
            "project %s, generation endpoint %s (%s): api_key_env %r does not end in _API_KEY; "
            "cleared and the endpoint deactivated: set a *_API_KEY variable and reactivate it",
            project_id,
            endpoint_id,
            name,
            old,
        )
    op.drop_constraint(op.f(CONSTRAINT), "generation_endpoints", type_="check")
    op.create_check_constraint(
        op.f(CONSTRAINT),
        "generation_endpoints",
        f"api_key_env IS NULL OR api_key_env ~ '{NEW_PATTERN}'",
    )


def downgrade() -> None:
    # Every name the new rule allows, the old one allowed too.
    op.drop_constraint(op.f(CONSTRAINT), "generation_endpoints", type_="check")
    op.create_check_constraint(
        op.f(CONSTRAINT),
        "generation_endpoints",
        f"api_key_env IS NULL OR api_key_env ~ '{OLD_PATTERN}'",
    )
