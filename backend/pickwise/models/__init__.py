"""All ORM models, imported here so Alembic and the app see one metadata."""

from pickwise.models.analytics import AnalyticsSnapshot
from pickwise.models.base import Base
from pickwise.models.content import Batch, Pair, Prompt, Response
from pickwise.models.conversations import (
    Conversation,
    ConversationEdit,
    ConversationEndpoint,
    ConversationRaterDay,
    ConversationReply,
    ConversationSettings,
    ConversationTurn,
)
from pickwise.models.generation import GenerationEndpoint
from pickwise.models.history import ReplacedDecision
from pickwise.models.pools import PoolParticipant, RaterPool
from pickwise.models.projects import Project, ProjectMember, ProjectRaterExclusion
from pickwise.models.rating import (
    Assignment,
    IdempotencyKey,
    Judgment,
    PairFlag,
    PairSlot,
    RaterWeight,
)
from pickwise.models.review import Adjudication, PairSummary
from pickwise.models.users import ApiToken, Invite, LoginFailure, User, UserSession
from pickwise.models.webhooks import Webhook, WebhookDelivery

__all__ = [
    "Adjudication",
    "AnalyticsSnapshot",
    "ApiToken",
    "Assignment",
    "Base",
    "Batch",
    "Conversation",
    "ConversationEdit",
    "ConversationEndpoint",
    "ConversationRaterDay",
    "ConversationReply",
    "ConversationSettings",
    "ConversationTurn",
    "GenerationEndpoint",
    "IdempotencyKey",
    "Invite",
    "Judgment",
    "LoginFailure",
    "Pair",
    "PairFlag",
    "PairSlot",
    "PairSummary",
    "PoolParticipant",
    "Project",
    "ProjectMember",
    "ProjectRaterExclusion",
    "Prompt",
    "RaterPool",
    "RaterWeight",
    "ReplacedDecision",
    "Response",
    "User",
    "UserSession",
    "Webhook",
    "WebhookDelivery",
]
