"""All ORM models, imported here so Alembic and the app see one metadata."""

from pickwise.models.base import Base
from pickwise.models.content import Batch, Pair, Prompt, Response
from pickwise.models.projects import Project, ProjectMember
from pickwise.models.rating import (
    Assignment,
    IdempotencyKey,
    Judgment,
    PairFlag,
    PairSlot,
)
from pickwise.models.users import ApiToken, Invite, LoginFailure, User, UserSession

__all__ = [
    "ApiToken",
    "Assignment",
    "Base",
    "Batch",
    "IdempotencyKey",
    "Invite",
    "Judgment",
    "LoginFailure",
    "Pair",
    "PairFlag",
    "PairSlot",
    "Project",
    "ProjectMember",
    "Prompt",
    "Response",
    "User",
    "UserSession",
]
