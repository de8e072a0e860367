"""One small project with every kind of object a route can point at, seen by six callers.

The callers of the access table: nobody, a rater of the project, a rater of another project,
an admin, someone with a revoked API token, and someone with an expired web session. Every
route's path parameters are filled from here, so each request reaches a real object.
"""

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments import service as assignments
from pickwise.auth import service as auth_service
from pickwise.core.clock import utcnow
from pickwise.generation import service as generation_service
from pickwise.generation.schemas import EndpointCreate
from pickwise.judgments import service as judgments
from pickwise.judgments.schemas import JudgmentIn
from pickwise.models import (
    Conversation,
    ConversationEndpoint,
    ConversationReply,
    ConversationSettings,
    ConversationTurn,
    GenerationEndpoint,
    Project,
    User,
)
from pickwise.models.webhooks import WebhookDelivery
from pickwise.pools import service as pools_service
from pickwise.pools.schemas import PoolCreate
from pickwise.webhooks import service as webhooks_service
from pickwise.webhooks.schemas import WebhookCreate
from tests.factories import add_member, make_pairs, make_project, make_user

# What a rater must never be shown: the hidden model names, another rater's words and
# address, and the secrets of the project's integrations.
HIDDEN_MODELS = ("hidden-model-alpha-7f3", "hidden-model-beta-9c1")
OTHER_RATIONALE = "other-rater-rationale-5e8d"
NEW_PASSWORD = "a long enough password"


@dataclass(frozen=True)
class Caller:
    """How one caller authenticates: a bearer token for /api/, a cookie for pages."""

    name: str
    bearer: str | None = None
    cookie: str | None = None
    csrf: str | None = None


@dataclass(frozen=True)
class World:
    project_id: int
    other_project_id: int
    assignment_id: int
    pair_id: int
    rater_id: int
    other_rater_id: int
    other_rater_email: str
    # An admin's second token (DELETE /api/v1/tokens/{id}) and a rater's second token
    # (the account page's revoke), so revoking one never logs the caller out.
    admin_spare_token_id: int
    rater_spare_token_id: int
    invite_token: str
    invite_id: int
    pool_id: int
    pool_token: str
    webhook_id: int
    webhook_secret: str
    delivery_id: int
    endpoint_id: int
    # A conversation project (its endpoints switched off) and the rater's conversation there.
    conversation_project_id: int
    conversation_endpoint_ids: tuple[int, ...]
    conversation_id: int
    turn_id: int
    callers: dict[str, Caller]

    def secrets(self) -> tuple[str, ...]:
        """Strings that no response to a non-admin may contain."""
        return (*HIDDEN_MODELS, OTHER_RATIONALE, self.other_rater_email, self.webhook_secret)


async def _web_session(session: AsyncSession, user: User) -> tuple[str, str]:
    token, web_session = await auth_service.start_session(session, user)
    return token, web_session.csrf_token


async def _caller(session: AsyncSession, name: str, user: User) -> Caller:
    bearer, _ = await auth_service.create_api_token(session, user, f"{name} token")
    cookie, csrf = await _web_session(session, user)
    return Caller(name, bearer=bearer, cookie=cookie, csrf=csrf)


async def seed_world(session: AsyncSession) -> World:
    project: Project = await make_project(session, raters_per_pair=2)
    other_project: Project = await make_project(session)
    pairs = await make_pairs(session, project, 3, models=HIDDEN_MODELS)
    await make_pairs(session, other_project, 1)

    admin = await make_user(session, role="admin")
    rater = await make_user(session)
    other = await make_user(session)
    fellow = await make_user(session)
    for member, member_project in ((rater, project), (fellow, project), (other, other_project)):
        await add_member(session, member_project, member)

    # Another rater of the same project has judged a pair, with a rationale.
    held = await assignments.next_lease(session, project, fellow)
    assert held is not None
    await judgments.submit(
        session, held.assignment_id, fellow, JudgmentIn(choice="left", rationale=OTHER_RATIONALE)
    )
    assignment = await assignments.next_lease(session, project, rater)
    assert assignment is not None

    callers = {
        "anonymous": Caller("anonymous"),
        "rater": await _caller(session, "rater", rater),
        "other_rater": await _caller(session, "other_rater", other),
        "admin": await _caller(session, "admin", admin),
    }
    revoked, revoked_token = await auth_service.create_api_token(session, rater, "revoked")
    revoked_token.revoked_at = utcnow()
    expired, expired_session = await auth_service.start_session(session, rater)
    expired_session.expires_at = utcnow() - timedelta(minutes=1)
    callers["revoked_token"] = Caller("revoked_token", bearer=revoked)
    callers["expired_session"] = Caller(
        "expired_session", cookie=expired, csrf=expired_session.csrf_token
    )

    _, admin_spare = await auth_service.create_api_token(session, admin, "spare")
    _, rater_spare = await auth_service.create_api_token(session, rater, "spare")
    invite_token, invite = await auth_service.create_invite(
        session, admin=admin, email="invited@example.org", role="rater", project_id=project.id
    )
    pool_token, pool = await pools_service.create_pool(
        session, project, PoolCreate(name="study", quota=2), admin
    )
    webhook = await webhooks_service.create_webhook(
        session,
        project,
        WebhookCreate(url="https://hooks.example.org/in", events=["batch.imported"]),
    )
    await webhooks_service.queue_ping(session, project, webhook)
    (delivery,) = await webhooks_service.deliveries(session, webhook, 1)
    assert isinstance(delivery, WebhookDelivery)
    delivery.status = "failed"  # a finished delivery can be sent again
    endpoint = await generation_service.create_endpoint(
        session, project, EndpointCreate(base_url="https://llm.example.org/v1", model="m-1")
    )
    await session.flush()
    conversation = await seed_conversation(session, rater)
    return World(
        project_id=project.id,
        other_project_id=other_project.id,
        assignment_id=assignment.assignment_id,
        pair_id=pairs[0].id,
        rater_id=rater.id,
        other_rater_id=other.id,
        other_rater_email=fellow.email,
        admin_spare_token_id=admin_spare.id,
        rater_spare_token_id=rater_spare.id,
        invite_token=invite_token,
        invite_id=invite.id,
        pool_id=pool.id,
        pool_token=pool_token,
        webhook_id=webhook.id,
        webhook_secret=webhook.secret,
        delivery_id=delivery.id,
        endpoint_id=endpoint.id,
        conversation_project_id=conversation.project_id,
        conversation_endpoint_ids=conversation.endpoint_ids,
        conversation_id=conversation.conversation_id,
        turn_id=conversation.turn_id,
        callers=callers,
    )


@dataclass(frozen=True)
class SeededConversation:
    project_id: int
    endpoint_ids: tuple[int, ...]
    conversation_id: int
    turn_id: int


async def seed_conversation(session: AsyncSession, rater: User) -> SeededConversation:
    """A conversation project whose endpoints carry the hidden model names, and one turn of
    the rater's with both replies written, waiting for the vote."""
    project = await make_project(session, kind="conversations")
    await add_member(session, project, rater)
    session.add(ConversationSettings(project_id=project.id, turn_cap=3))
    endpoints = [
        GenerationEndpoint(
            project_id=project.id,
            name=name,
            base_url="https://llm.example.org/v1",
            model=name,
            is_active=False,
        )
        for name in HIDDEN_MODELS
    ]
    session.add_all(endpoints)
    await session.flush()
    session.add_all(
        ConversationEndpoint(project_id=project.id, endpoint_id=e.id) for e in endpoints
    )
    conversation = Conversation(
        project_id=project.id, rater_id=rater.id, prefix=[], turn_cap=3, status="active"
    )
    session.add(conversation)
    await session.flush()
    turn = ConversationTurn(
        conversation_id=conversation.id,
        depth=1,
        user_content="Hello",
        context=[{"role": "user", "content": "Hello"}],
        left_endpoint_id=endpoints[0].id,
        right_endpoint_id=endpoints[1].id,
    )
    session.add(turn)
    await session.flush()
    now = utcnow()
    for side, endpoint in zip(("left", "right"), endpoints, strict=True):
        session.add(
            ConversationReply(
                turn_id=turn.id,
                side=side,
                endpoint_id=endpoint.id,
                endpoint_name=endpoint.name,
                model=endpoint.model,
                status="complete",
                content=f"The {side} reply.",
                requests=1,
                started_at=now,
                deadline_at=now + timedelta(minutes=5),
                finished_at=now,
            )
        )
    await session.flush()
    return SeededConversation(project.id, tuple(e.id for e in endpoints), conversation.id, turn.id)
