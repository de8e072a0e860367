"""Who asks, found in a short transaction of its own: routes that wait on a model take no
request-long session (`SessionDep`), so they hold no connection while the model writes.

And how many conversation requests use the database at once (`database_slot`): raters of a
conversation project move together (a hundred replies end, a hundred votes and messages
follow), and such a burst took every pooled connection, so the raters of other projects
waited seconds for one or were refused with 503. Past `conversation_database_slots` the
burst waits its turn in the process, and the rest of the pool stays free for others."""

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.auth.deps import (
    INVALID_API_TOKEN,
    ApiTokenHeader,
    Principal,
    bearer_token,
    principal_of,
)
from pickwise.conversations import repository, service, turn_repository
from pickwise.conversations.schemas import StartIn
from pickwise.core.clock import utcnow
from pickwise.core.config import get_settings
from pickwise.core.db import OpenUnit, Units
from pickwise.core.deps import UnitsDep
from pickwise.core.errors import NotAuthenticated
from pickwise.core.middleware import release_load_slot
from pickwise.core.security import token_digest
from pickwise.judgments.deps import IDEMPOTENCY_KEY_HEADER
from pickwise.judgments.router import IdempotencyKeyHeader
from pickwise.models import ConversationReply, User

# A semaphore per event loop (tests run on several), made again if the setting changed.
_slots: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[int, asyncio.Semaphore]]" = (
    weakref.WeakKeyDictionary()
)


@asynccontextmanager
async def database_slot(request: Request) -> AsyncIterator[None]:
    """One of the process's slots for conversation requests' database work, held while it
    runs (never while a model writes).

    The request stops counting against the process's limit of requests in flight: these
    slots are its limit. (Counted, a hundred conversation requests waiting their turn took
    all 100 places, and every other request was refused with 503.)"""
    release_load_slot(request.scope)
    loop, size = asyncio.get_running_loop(), get_settings().conversation_database_slots
    made = _slots.get(loop)
    if made is None or made[0] != size:
        made = _slots[loop] = (size, asyncio.Semaphore(size))
    async with made[1]:
        yield


async def _held_slot(request: Request) -> AsyncIterator[None]:
    async with database_slot(request):
        yield


# For routes whose whole work is database work (votes, edits): listed in the route's
# `dependencies`, it is taken before who asks is found and given back once the route's
# session has committed.
DatabaseSlot = Depends(_held_slot, scope="function")


async def caller(request: Request, session: AsyncSession) -> Principal:
    """Who asks, in the caller's transaction (the event stream finds its caller and the
    turn's replies in one)."""
    principal = await principal_of(request, session)
    if principal is None:
        raise NotAuthenticated()
    return principal


async def principal_in_unit(
    request: Request, units: UnitsDep, _documented: ApiTokenHeader
) -> Principal:
    async with units() as session:
        return await caller(request, session)


UnitPrincipal = Annotated[Principal, Depends(principal_in_unit)]


@dataclass
class Asking:
    """A request that asks for replies: who asks, found in its unit of work, which holds one
    of the database slots until the route ends it (`unit.done()`, before the replies start)."""

    unit: OpenUnit
    rater: User


async def _slot_and_unit(
    request: Request, units: Units, exit_stack: AsyncExitStack
) -> AsyncSession:
    """A unit of work holding one of the database slots, both given back when `exit_stack`
    closes (the route ends it: `OpenUnit.done`)."""
    await exit_stack.enter_async_context(database_slot(request))
    return await exit_stack.enter_async_context(units())


async def open_asking(
    request: Request, units: UnitsDep, _documented: ApiTokenHeader
) -> AsyncIterator[Asking]:
    # A dependency, so that who asks is known (401, or 403 for a cookie without its CSRF
    # token) before the body is read and checked.
    async with AsyncExitStack() as exit_stack:
        session = await _slot_and_unit(request, units, exit_stack)
        principal = await caller(request, session)
        # An error in the route before `done` rolls the unit back.
        yield Asking(OpenUnit(session, exit_stack), principal.user)


AskingDep = Annotated[Asking, Depends(open_asking, scope="function")]


@dataclass
class Starting(Asking):
    """A request that starts a conversation: also the project, when the rater may rate it
    (None otherwise), or the start already written in the lookup's round trip (`sent`)."""

    project: repository.RaterProject | None
    sent: service.Sent | None = None


# The last start's plan per API token and project (`service.StartPlan`), in this process.
# Kept small: a plan only saves a round trip, and a missing one costs nothing else.
_plans: dict[tuple[str, int], service.StartPlan] = {}
_MAX_PLANS = 4096


async def _start_ahead(
    request: Request, key: tuple[str, int], now: datetime
) -> service.StartAhead | None:
    """The start planned from the last one with this token in this project, when the body
    (already read by FastAPI, checked here as the route will check it) asks for a plain one."""
    plan = _plans.get(key)
    if plan is None or request.headers.get("content-type") != "application/json":
        return None
    try:
        data = StartIn.model_validate_json(await request.body())
    except ValidationError:
        return None  # the route answers it
    return service.start_ahead(plan, data, request.headers.get(IDEMPOTENCY_KEY_HEADER), now)


async def open_starting(
    request: Request, project_id: int, units: UnitsDep, _documented: ApiTokenHeader
) -> AsyncIterator[Starting]:
    """As `open_asking`, with the project. With an API token, who asks and the project are
    one round trip, the transaction's BEGIN included (`turn_repository.starter`): it was
    three (BEGIN, who asks, the project) on the path to the model's first token. When the
    last start with this token in this project planned the next (`service.StartPlan`), the
    turn is written in that round trip too, if nothing it read has changed."""
    token = bearer_token(request)
    async with AsyncExitStack() as exit_stack:
        session = await _slot_and_unit(request, units, exit_stack)
        if token is None:
            user = (await caller(request, session)).user
            project = await service.rater_project(session, project_id, user)
            yield Starting(OpenUnit(session, exit_stack), user, project)
            return
        key, now = (token_digest(token), project_id), utcnow()
        ahead = await _start_ahead(request, key, now)
        found = await turn_repository.starter(
            session, key[0], now, project_id, None if ahead is None else ahead.to_write()
        )
        if found.user is None:
            raise NotAuthenticated(INVALID_API_TOKEN)  # anything written is rolled back
        user, sent = found.user, None
        if ahead is not None and found.written is not None:
            sent = ahead.sent(user, found.written)
        else:
            plan = service.start_plan(found.project, user, found.state)
            if plan is None:
                _plans.pop(key, None)
            else:
                if len(_plans) >= _MAX_PLANS:
                    _plans.clear()
                _plans[key] = plan
        yield Starting(OpenUnit(session, exit_stack), user, found.project, sent)


StartingDep = Annotated[Starting, Depends(open_starting, scope="function")]


@dataclass
class Sending(Asking):
    """A request that sends a message: also what the message needs of its conversation
    (None when it is not the rater's)."""

    found: repository.MessageContext | None


async def open_sending(
    request: Request,
    conversation_id: int,
    units: UnitsDep,
    _documented: ApiTokenHeader,
    idempotency_key: IdempotencyKeyHeader = None,
) -> AsyncIterator[Sending]:
    """As `open_asking`, with the conversation as the message needs it. With an API token,
    who asks goes in the same round trip (`repository.message_context_of_token`): it was a
    round trip of its own on the path to the model's first token."""
    token = bearer_token(request)
    async with AsyncExitStack() as exit_stack:
        session = await _slot_and_unit(request, units, exit_stack)
        if token is None:
            user = (await caller(request, session)).user
            found = await repository.message_context(
                session, conversation_id, user.id, user.is_admin, idempotency_key
            )
        else:
            found_user, found = await repository.message_context_of_token(
                session, token_digest(token), utcnow(), conversation_id, idempotency_key
            )
            if found_user is None:
                raise NotAuthenticated(INVALID_API_TOKEN)
            user = found_user
        yield Sending(OpenUnit(session, exit_stack), user, found)


SendingDep = Annotated[Sending, Depends(open_sending, scope="function")]


async def turn_replies_for(
    request: Request, session: AsyncSession, conversation_id: int, turn_id: int
) -> list[ConversationReply]:
    """The current replies of a turn of the caller's own conversation (what an event stream
    follows). With an API token, who asks and the replies are one round trip."""
    token = bearer_token(request)
    if token is None:
        rater = (await caller(request, session)).user
        return await service.turn_replies(session, conversation_id, turn_id, rater)
    user, replies = await repository.turn_replies_of_token(
        session, token_digest(token), utcnow(), conversation_id, turn_id
    )
    if user is None:
        raise NotAuthenticated(INVALID_API_TOKEN)
    return service.both_replies(replies, conversation_id, turn_id)
