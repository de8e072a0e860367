"""The rules of live conversations: configure a project, start, send, vote, edit, retry, end.

Nothing here calls a model. A function that asks for replies writes the turn and its
'generating' reply rows and returns `ReplyTask`s; the caller commits, and only then hands
the tasks to `generation.Generator`, so no transaction is open while a model writes.
"""

import dataclasses
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.conversations import repository, turn_repository, views
from pickwise.conversations.schemas import (
    ConversationListItem,
    ConversationRead,
    ConversationSettingsIn,
    ConversationSettingsRead,
    MessageIn,
    StartIn,
    VoteIn,
)
from pickwise.conversations.voting import record_vote
from pickwise.core.clock import utcnow
from pickwise.core.config import get_settings
from pickwise.core.db import as_written
from pickwise.core.errors import Conflict, InvalidInput, NotFound, TooManyRequests
from pickwise.generation.chat import EndpointConfig, MissingApiKey
from pickwise.judgments.service import validate_judgment
from pickwise.models import (
    Conversation,
    ConversationReply,
    ConversationSettings,
    ConversationTurn,
    GenerationEndpoint,
    Project,
    User,
)
from pickwise.vocabulary import (
    ConversationStatus,
    OpenerSource,
    OverlapMode,
    ProjectKind,
    ReplyFailure,
    ReplyStatus,
    ShownSide,
)

SIDES = tuple(side.value for side in ShownSide)
# Which endpoints answer a turn and which side each is shown on; seedable for tests.
chance = random.Random()
# A reply still 'generating' this long after its own time limit was abandoned.
DEADLINE_GRACE = timedelta(seconds=30)

NOT_A_CONVERSATION_PROJECT = "This project is not a conversation project."
NO_ENDPOINTS = (
    "This project cannot ask for replies right now: it needs two usable chat endpoints "
    "(switched on, with their API keys set). Tell an admin."
)
MOVED_ON = (
    "This conversation has moved on (in another tab, or the page was old), so this message "
    "was not sent. Here is the conversation as it is now."
)
VOTE_FIRST = "Pick the better reply first; the conversation goes on from the one you pick."
ENDED = "This conversation has ended; start a new one."


class MovedOn(Conflict):
    """The message came from a page that no longer shows the conversation as it is."""

    def __init__(self) -> None:
        super().__init__(MOVED_ON)


class KeyReused(InvalidInput):
    def __init__(self) -> None:
        super().__init__("already used for another message", field="Idempotency-Key")


@dataclass(frozen=True)
class ReplyTask:
    """One reply to generate, with everything the generator needs (read before the commit)."""

    reply_id: int
    turn_id: int
    side: str
    endpoint: EndpointConfig
    messages: tuple[dict[str, str], ...]
    deadline: datetime


@dataclass(frozen=True)
class Voted:
    view: views.ConversationView
    stored: bool  # False when the same vote came again


@dataclass(frozen=True)
class Sent:
    """What start, send and retry did: the turn, and the replies to generate (none when the
    request repeated one already handled)."""

    conversation_id: int
    turn_id: int
    tasks: tuple[ReplyTask, ...]
    # The conversation, to read back in the transaction when there is no `new_view`: that
    # makes the answer from what the transaction read and wrote (no read after the turn's
    # statement, and no ORM objects built before the replies' requests are out: the
    # model's first token is waited for).
    conversation: Conversation | None = None
    new_view: Callable[[], views.ConversationView] | None = None


# --- admin --------------------------------------------------------------------------------


async def configure(
    session: AsyncSession, project: Project, data: ConversationSettingsIn
) -> ConversationSettings:
    """Makes the project a conversation project (it must have no imported pairs) with these
    settings, or changes them."""
    ids = sorted(set(data.endpoint_ids))
    if len(ids) < 2:
        raise InvalidInput("pick at least two different endpoints", field="endpoint_ids")
    found = {
        endpoint.id for endpoint in await repository.project_endpoints(session, project.id, ids)
    }
    missing = [i for i in ids if i not in found]
    if missing:
        raise InvalidInput(f"no endpoint {missing[0]} in this project", field="endpoint_ids")
    if project.kind != ProjectKind.CONVERSATIONS:
        if await repository.has_imported_pairs(session, project.id):
            raise Conflict(
                "This project already has imported pairs; make a new project for conversations."
            )
        # Each turn is judged by its author alone: one slot per pair, no gold pairs, and no
        # adaptive overlap (it would open slots on the turn for other raters).
        project.kind, project.raters_per_pair, project.gold_rate, project.overlap_mode = (
            ProjectKind.CONVERSATIONS,
            1,
            0.0,
            OverlapMode.FIXED,
        )
    settings = await repository.get_settings(session, project.id)
    if settings is None:
        settings = ConversationSettings(project_id=project.id)
        session.add(settings)
    for field, value in data.model_dump(exclude={"endpoint_ids"}).items():
        setattr(settings, field, value)
    settings.updated_at = utcnow()
    await session.flush()
    await repository.replace_endpoints(session, project.id, ids)
    return settings


async def settings_of(session: AsyncSession, project: Project) -> ConversationSettings:
    settings = await repository.get_settings(session, project.id)
    if settings is None or project.kind != ProjectKind.CONVERSATIONS:
        raise Conflict(NOT_A_CONVERSATION_PROJECT)
    return settings


async def settings_read(session: AsyncSession, project: Project) -> ConversationSettingsRead:
    settings = await settings_of(session, project)
    fields = {
        name: getattr(settings, name)
        for name in ConversationSettingsIn.model_fields
        if name != "endpoint_ids"
    }
    fields["endpoint_ids"] = await repository.endpoint_ids(session, project.id)
    return ConversationSettingsRead(**fields, project_id=project.id, updated_at=settings.updated_at)


# --- access -------------------------------------------------------------------------------


def _not_yours(conversation_id: int) -> NotFound:
    return NotFound(f"conversation {conversation_id}: no such conversation of yours")


async def owned(
    session: AsyncSession, conversation_id: int, rater: User, *, lock: bool = False
) -> tuple[Conversation, Project, ConversationSettings]:
    """The rater's own conversation, its project and settings, in a project they may still
    rate (a rater taken off the project cannot go on with it); 404 otherwise."""
    found = await repository.owned_conversation(
        session, conversation_id, rater.id, rater.is_admin, lock=lock
    )
    if found is None:
        raise _not_yours(conversation_id)
    return found


async def own_conversation(
    session: AsyncSession, conversation_id: int, rater: User, *, lock: bool = False
) -> tuple[Conversation, Project]:
    conversation, project, _ = await owned(session, conversation_id, rater, lock=lock)
    return conversation, project


async def owned_view(
    session: AsyncSession, conversation_id: int, rater: User, *, lock: bool = False
) -> tuple[Project, views.ConversationView]:
    """`own_conversation` and its view, in one round trip."""
    found = await repository.owned_conversation_and_rows(
        session, conversation_id, rater.id, rater.is_admin, lock=lock
    )
    if found is None:
        raise _not_yours(conversation_id)
    (conversation, project, _), rows = found
    return project, views.of_rows(conversation, rows)


async def conversation_read(
    session: AsyncSession, conversation_id: int, rater: User
) -> ConversationRead:
    _, view = await owned_view(session, conversation_id, rater)
    return views.conversation_read(view, utcnow())


async def list_items(
    session: AsyncSession, project: Project, rater: User
) -> list[ConversationListItem]:
    return [
        ConversationListItem(
            id=conversation.id,
            status=ConversationStatus(conversation.status),
            turns=judged,
            first_message=first or "",
            last_activity_at=conversation.last_activity_at,
        )
        for conversation, judged, first in await repository.list_conversations(
            session, project.id, rater.id
        )
    ]


# --- turns --------------------------------------------------------------------------------


def _endpoint_config(
    endpoint: GenerationEndpoint, settings: ConversationSettings
) -> EndpointConfig | None:
    """The endpoint with the project's overrides, or None when it cannot be called."""
    if not endpoint.is_active:
        return None
    try:
        config = EndpointConfig.from_endpoint(endpoint)
    except MissingApiKey:
        return None
    limits = [n for n in (config.max_tokens, settings.max_tokens_per_reply) if n is not None]
    return dataclasses.replace(
        config,
        temperature=settings.temperature
        if settings.temperature is not None
        else config.temperature,
        top_p=settings.top_p if settings.top_p is not None else config.top_p,
        max_tokens=min(limits) if limits else None,
    )


@dataclass(frozen=True)
class _NewConversation:
    """A conversation to create with its first turn (not yet written)."""

    opener_prompt_id: int | None
    system_prompt: str | None
    prefix: list[Any]
    start_key: str | None


def _context(
    conversation: Conversation | _NewConversation, head: repository.Head | None, message: str
) -> list[Any]:
    """What both endpoints are sent: the last turn's context with the reply the rater kept
    (as edited) and the new message; for the first turn, the system prompt, the opener's
    earlier turns and the message."""
    if head is not None:
        assert head.kept is not None, "a message follows a judged turn only"
        return [
            *head.turn.context,
            {"role": "assistant", "content": head.kept},
            {"role": "user", "content": message},
        ]
    messages: list[dict[str, str]] = []
    if conversation.system_prompt:
        messages.append({"role": "system", "content": conversation.system_prompt})
    messages.extend({"role": t["role"], "content": t["content"]} for t in conversation.prefix)
    messages.append({"role": "user", "content": message})
    return messages


def _deadline(now: datetime) -> datetime:
    """When a reply started `now` counts as abandoned."""
    return now + timedelta(seconds=get_settings().conversation_reply_seconds) + DEADLINE_GRACE


def _planned(endpoint: GenerationEndpoint, config: EndpointConfig) -> turn_repository.NewReply:
    return turn_repository.NewReply(endpoint.id, endpoint.name, endpoint.model, config.sampling)


def _reply_row(
    turn_id: int,
    side: str,
    attempt: int,
    planned: turn_repository.NewReply,
    now: datetime,
    reply_id: int | None = None,
) -> ConversationReply:
    """A 'generating' reply: stored already when `reply_id` is given, else to be added."""
    return ConversationReply(
        id=reply_id,
        turn_id=turn_id,
        side=side,
        attempt=attempt,
        endpoint_id=planned.endpoint_id,
        endpoint_name=planned.endpoint_name,
        model=planned.model,
        sampling=planned.sampling,
        status=ReplyStatus.GENERATING,
        content="",
        requests=0,
        stop_requested=False,
        started_at=now,
        deadline_at=_deadline(now),
    )


def _task(
    reply_id: int,
    turn_id: int,
    side: str,
    context: list[Any],
    config: EndpointConfig,
    deadline_at: datetime,
) -> ReplyTask:
    return ReplyTask(
        reply_id=reply_id,
        turn_id=turn_id,
        side=side,
        endpoint=config,
        messages=tuple(dict(message) for message in context),
        deadline=deadline_at - DEADLINE_GRACE,
    )


def _over_budget(settings: ConversationSettings) -> TooManyRequests:
    return TooManyRequests(
        f"You have used today's replies in this project ({settings.replies_per_rater_per_day} "
        "a day); come back tomorrow (UTC)."
    )


async def _reserve(
    session: AsyncSession, settings: ConversationSettings, rater: User, n: int, now: datetime
) -> None:
    limit = settings.replies_per_rater_per_day
    if not await repository.reserve_replies(
        session, settings.project_id, rater.id, now.date(), n, limit
    ):
        raise _over_budget(settings)


@dataclass(frozen=True)
class _PlannedTurn:
    """A turn to write: its rows' values, and the endpoints asked (with their configs)."""

    new: turn_repository.NewTurn
    budget: turn_repository.Budget
    left: tuple[GenerationEndpoint, EndpointConfig]
    right: tuple[GenerationEndpoint, EndpointConfig]


def _plan_turn(
    settings: ConversationSettings,
    endpoints: Sequence[GenerationEndpoint],
    conversation: Conversation | _NewConversation,
    head: repository.Head | None,
    rater_id: int,
    message: str,
    client_key: str | None,
    now: datetime,
) -> _PlannedTurn:
    usable = [
        (endpoint, config)
        for endpoint in endpoints
        if (config := _endpoint_config(endpoint, settings)) is not None
    ]
    if len(usable) < 2:
        raise Conflict(NO_ENDPOINTS)
    left, right = chance.sample(usable, 2)
    new = turn_repository.NewTurn(
        parent_turn_id=head.turn.id if head else None,
        depth=head.turn.depth + 1 if head else 1,
        user_content=message,
        context=_context(conversation, head, message),
        client_key=client_key,
        left=_planned(*left),
        right=_planned(*right),
        deadline=_deadline(now),
        now=now,
    )
    budget = turn_repository.Budget(
        settings.project_id, rater_id, now.date(), settings.replies_per_rater_per_day
    )
    return _PlannedTurn(new, budget, left, right)


async def _add_turn(
    session: AsyncSession,
    settings: ConversationSettings,
    endpoints: Sequence[GenerationEndpoint],
    conversation: Conversation | _NewConversation,
    head: repository.Head | None,
    rater: User,
    message: str,
    client_key: str | None,
    now: datetime,
    earlier: repository.ConversationRows | None = None,
) -> Sent:
    """Writes the turn, its two replies and the budget they take (and the conversation, when
    it is new) in one statement; nothing when the day's replies are used up. The answer is
    made from `earlier` (the conversation's rows, read under its lock) and what was written."""
    planned = _plan_turn(
        settings, endpoints, conversation, head, rater.id, message, client_key, now
    )
    if isinstance(conversation, Conversation):
        written = await turn_repository.add_turn(
            session, planned.budget, conversation.id, planned.new
        )
    else:
        written = await turn_repository.start_conversation(
            session,
            planned.budget,
            planned.new,
            opener_prompt_id=conversation.opener_prompt_id,
            system_prompt=conversation.system_prompt,
            prefix=conversation.prefix,
            turn_cap=settings.turn_cap,
            start_key=conversation.start_key,
        )
    if written is None:
        raise _over_budget(settings)
    return _sent(settings, conversation, rater, planned, written, earlier)


def _sent(
    settings: ConversationSettings,
    conversation: Conversation | _NewConversation,
    rater: User,
    planned: _PlannedTurn,
    written: turn_repository.Written,
    earlier: repository.ConversationRows | None,
) -> Sent:
    """The replies to generate for a turn written, and its answer made from the rows."""
    new, left, right, now = planned.new, planned.left, planned.right, planned.new.now
    message, client_key = new.user_content, new.client_key
    tasks = (
        _task(
            written.left_reply_id,
            written.turn_id,
            ShownSide.LEFT,
            new.context,
            left[1],
            new.deadline,
        ),
        _task(
            written.right_reply_id,
            written.turn_id,
            ShownSide.RIGHT,
            new.context,
            right[1],
            new.deadline,
        ),
    )
    if isinstance(conversation, Conversation):
        as_written(conversation, last_activity_at=now)
    started = conversation

    def new_view() -> views.ConversationView:
        if isinstance(started, Conversation):
            return views.of_rows(started, _with_turn(earlier, written_turn()))
        stored = Conversation(
            id=written.conversation_id,
            project_id=settings.project_id,
            rater_id=rater.id,
            opener_prompt_id=started.opener_prompt_id,
            system_prompt=started.system_prompt,
            prefix=started.prefix,
            turn_cap=settings.turn_cap,
            status=ConversationStatus.ACTIVE,
            start_key=started.start_key,
            created_at=now,
            last_activity_at=now,
            ended_at=None,
        )
        return views.of_rows(stored, _with_turn(None, written_turn()))

    def written_turn() -> views.TurnView:
        turn = ConversationTurn(
            id=written.turn_id,
            conversation_id=written.conversation_id,
            parent_turn_id=new.parent_turn_id,
            depth=new.depth,
            branch=0,
            user_content=message,
            context=new.context,
            client_key=client_key,
            left_endpoint_id=left[0].id,
            right_endpoint_id=right[0].id,
            created_at=now,
        )
        left_reply = _reply_row(turn.id, ShownSide.LEFT, 1, new.left, now, written.left_reply_id)
        right_reply = _reply_row(
            turn.id, ShownSide.RIGHT, 1, new.right, now, written.right_reply_id
        )
        return views.TurnView(turn, left_reply, right_reply, judgment=None, edit=None)

    return Sent(written.conversation_id, written.turn_id, tasks, new_view=new_view)


def _with_turn(
    earlier: repository.ConversationRows | None, turn: views.TurnView
) -> repository.ConversationRows:
    """The conversation's rows with a turn just written (and its replies) added."""
    rows = earlier or repository.ConversationRows([], {}, {}, {})
    replies = {(turn.turn.id, reply.side): reply for reply in (turn.left, turn.right)}
    return dataclasses.replace(
        rows, turns=[*rows.turns, turn.turn], replies={**rows.replies, **replies}
    )


def _repeated(head: repository.Head, message: str, parent_turn_id: int | None) -> bool:
    """The same message again (a form sent twice): it made the last turn, and nothing came
    after it that the page could not know."""
    judged = head.turn.judged_at is not None
    same_place = head.turn.parent_turn_id == parent_turn_id or not judged
    return head.turn.user_content == message and same_place


def _message(text: str | None, field: str) -> str:
    cleaned = (text or "").strip()
    if not cleaned:
        raise InvalidInput("write a message first", field=field)
    return cleaned


async def rater_project(
    session: AsyncSession, project_id: int, rater: User
) -> repository.RaterProject | None:
    """The project a rater asks to start in, with its settings and endpoints (None: not
    one they may rate)."""
    return await repository.rater_project(session, project_id, rater.id, rater.is_admin)


async def start(
    session: AsyncSession,
    found: repository.RaterProject | None,
    project_id: int,
    rater: User,
    data: StartIn,
    key: str | None,
    now: datetime | None = None,
) -> Sent:
    """A new conversation with its first turn (a repeated key gives the first answer
    again), in the project `rater_project` found."""
    now = now or utcnow()
    if found is None:
        raise NotFound(f"project {project_id}: no such project")
    project, settings = found.project, found.settings
    if settings is None or project.kind != ProjectKind.CONVERSATIONS:
        raise Conflict(NOT_A_CONVERSATION_PROJECT)
    if key is not None or data.use_opener:
        # One start at a time per rater, so a repeated key or an opener is seen by the next.
        await repository.lock_rater(session, project.id, rater.id)
    if key is not None:
        existing = await repository.by_start_key(session, rater.id, key)
        if existing is not None:
            head = await repository.head_turn(session, existing.id)
            assert head is not None, "a conversation starts with its first turn"
            return Sent(existing.id, head.turn.id, (), existing)
    opener = None
    system, prefix = settings.system_prompt, []
    if data.use_opener:
        if settings.opener_source == OpenerSource.OWN:
            raise InvalidInput(
                "in this project raters write their first message", field="use_opener"
            )
        opener = await repository.pick_opener(session, project.id, rater.id)
        if opener is None:
            raise Conflict("No openers are left for you in this project; write your own.")
        system = opener.system or system
        prefix = [dict(turn) for turn in opener.turns[:-1]]
        first = _message(str(opener.turns[-1]["content"]), "message")
    else:
        if settings.opener_source == OpenerSource.IMPORTED:
            raise InvalidInput("this project starts from its openers (use_opener)", field="message")
        first = _message(data.message, "message")
    conversation = _NewConversation(opener.id if opener else None, system, prefix, key)
    return await _add_turn(
        session, settings, found.endpoints, conversation, None, rater, first, None, now
    )


# --- a start planned ahead ----------------------------------------------------------------
# A start with an API token reads who asks and the project (one round trip), then writes the
# turn (a second one) before the model is asked. The turn's values depend only on what that
# lookup reads and on the request, so a process keeps what the last start with the token in
# the project read (`StartPlan`) and the next start plans its turn from it: the turn goes in
# the lookup's round trip, written only if what the lookup reads is still the same
# (`turn_repository.starter`); otherwise nothing is written and the start goes as before.


@dataclass(frozen=True)
class StartPlan:
    """What a start read of the project (copies, in no session) and who asked, with that
    read as one text (`state`)."""

    state: str
    rater_id: int
    settings: ConversationSettings
    endpoints: tuple[GenerationEndpoint, ...]


_Row = TypeVar("_Row", ConversationSettings, GenerationEndpoint)


def _copy_of(row: _Row) -> _Row:
    keys = [attribute.key for attribute in sa_inspect(type(row)).column_attrs]
    return type(row)(**{key: getattr(row, key) for key in keys})


def start_plan(
    found: repository.RaterProject | None, rater: User, state: str | None
) -> StartPlan | None:
    """The plan of the next start with the same token (None: such a start is not planned
    ahead, e.g. not a project of the rater's, or one starting from its openers)."""
    if found is None or state is None or found.settings is None:
        return None
    settings = found.settings
    limit = settings.replies_per_rater_per_day
    if (
        found.project.kind != ProjectKind.CONVERSATIONS
        or settings.opener_source == OpenerSource.IMPORTED
        or (limit is not None and limit < 2)
    ):
        return None
    return StartPlan(
        state, rater.id, _copy_of(settings), tuple(_copy_of(e) for e in found.endpoints)
    )


@dataclass(frozen=True)
class StartAhead:
    """A start planned from a `StartPlan`: the turn to write, and what it becomes once
    written (`sent`)."""

    plan: StartPlan
    conversation: _NewConversation
    planned: _PlannedTurn

    def to_write(self) -> turn_repository.PlannedStart:
        settings = self.plan.settings
        return turn_repository.PlannedStart(
            self.plan.state,
            self.planned.budget,
            self.planned.new,
            self.conversation.system_prompt,
            settings.turn_cap,
        )

    def sent(self, rater: User, written: turn_repository.Written) -> Sent:
        return _sent(self.plan.settings, self.conversation, rater, self.planned, written, None)


def start_ahead(
    plan: StartPlan, data: StartIn, key: str | None, now: datetime
) -> StartAhead | None:
    """The start `start` would make from the plan's rows, or None when it would not be
    this plain one (a key, an opener, no message, too few endpoints left)."""
    if key is not None or data.use_opener:
        return None
    message = (data.message or "").strip()
    if not message:
        return None
    settings = plan.settings
    conversation = _NewConversation(None, settings.system_prompt, [], None)
    try:
        planned = _plan_turn(
            settings, plan.endpoints, conversation, None, plan.rater_id, message, None, now
        )
    except Conflict:
        return None
    return StartAhead(plan, conversation, planned)


async def send(
    session: AsyncSession,
    conversation_id: int,
    rater: User,
    data: MessageIn,
    key: str | None,
    now: datetime | None = None,
) -> Sent:
    """The rater's next message. The same message sent again (a reload, a double click, a
    retry with its key) gives back the turn it made the first time."""
    found = await repository.message_context(
        session, conversation_id, rater.id, rater.is_admin, key
    )
    return await send_in(session, found, conversation_id, rater, data, key, now)


async def send_in(
    session: AsyncSession,
    found: repository.MessageContext | None,
    conversation_id: int,
    rater: User,
    data: MessageIn,
    key: str | None,
    now: datetime | None = None,
) -> Sent:
    """`send`, in the conversation `repository.message_context` found (None: not the
    rater's)."""
    now = now or utcnow()
    if found is None:
        raise _not_yours(conversation_id)
    message = _message(data.content, "content")
    conversation, settings, head = found.conversation, found.settings, found.head

    # Read under the conversation's lock: as it is now (answers from the rows, no read back).
    def as_now() -> views.ConversationView:
        return views.of_rows(conversation, found.rows)

    if found.keyed is not None:
        if found.keyed.user_content != message:
            raise KeyReused()
        return Sent(conversation.id, found.keyed.id, (), new_view=as_now)
    judged = head is not None and head.turn.judged_at is not None
    if head is not None and _repeated(head, message, data.parent_turn_id):
        return Sent(conversation.id, head.turn.id, (), new_view=as_now)
    if data.parent_turn_id is not None and (head is None or head.turn.id != data.parent_turn_id):
        raise MovedOn()
    if conversation.status != ConversationStatus.ACTIVE:
        raise Conflict(ENDED)
    if head is not None and not judged:
        raise Conflict(VOTE_FIRST)
    if head is not None and head.turn.depth >= conversation.turn_cap:
        raise Conflict(ENDED)
    return await _add_turn(
        session, settings, found.endpoints, conversation, head, rater, message, key, now, found.rows
    )


async def turn_of(
    session: AsyncSession, conversation_id: int, turn_id: int, rater: User, *, lock: bool = True
) -> tuple[Project, views.ConversationView, views.TurnView]:
    project, view = await owned_view(session, conversation_id, rater, lock=lock)
    turn = view.turn(turn_id)
    if turn is None:
        raise NotFound(f"turn {turn_id}: no such turn in this conversation")
    return project, view, turn


async def vote(
    session: AsyncSession,
    conversation_id: int,
    turn_id: int,
    rater: User,
    body: VoteIn,
    now: datetime | None = None,
) -> Voted:
    """Stores the choice as a judgment on a pair made of this turn, and goes on from the
    reply kept. Voting again with the same choice changes nothing."""
    now = now or utcnow()
    project, view, turn = await turn_of(session, conversation_id, turn_id, rater)
    if turn.judged:
        if turn.shown_choice() == body.choice:
            return Voted(view, stored=False)
        raise Conflict("You have already picked a reply for this turn.")
    if not turn.both_complete(now):
        raise Conflict("Both replies must be complete before you pick one.")
    validate_judgment(project, body)
    decisive = body.choice in SIDES
    continue_side = body.choice if decisive else (body.continue_with or ShownSide.LEFT)
    conversation = view.conversation
    ends = turn.turn.depth >= conversation.turn_cap
    judged = repository.JudgedTurn(
        turn_id=turn.turn.id,
        continue_side=continue_side,
        conversation_id=conversation.id,
        status=ConversationStatus.COMPLETE if ends else conversation.status,
        ended_at=now if ends else conversation.ended_at,
    )
    turn.judgment = await record_vote(
        session, project, conversation, turn, rater, body, judged, now
    )
    return Voted(view, stored=True)


async def edit(
    session: AsyncSession,
    conversation_id: int,
    turn_id: int,
    rater: User,
    content: str,
    now: datetime | None = None,
) -> None:
    """The rater's rewrite of the reply they kept, used from the next turn on and in the
    chosen-path export; the pair keeps the reply as it was shown."""
    _, view, turn = await turn_of(session, conversation_id, turn_id, rater)
    if not turn.judged:
        raise Conflict("Pick the better reply first; then you can edit the one you keep.")
    if view.head is not turn:
        raise Conflict("The conversation has gone on from this reply; it can no longer change.")
    text = _message(content, "content")
    if text != turn.kept_text:
        await repository.add_edit(session, turn.turn.id, text)
    view.conversation.last_activity_at = now or utcnow()
    await session.flush()


async def end(
    session: AsyncSession, conversation_id: int, rater: User, now: datetime | None = None
) -> Conversation:
    conversation, _ = await own_conversation(session, conversation_id, rater, lock=True)
    if conversation.status == ConversationStatus.ACTIVE:
        now = now or utcnow()
        conversation.status, conversation.ended_at = ConversationStatus.ENDED, now
        conversation.last_activity_at = now
        await session.flush()
    return conversation


async def retry(
    session: AsyncSession,
    conversation_id: int,
    turn_id: int,
    side: str,
    rater: User,
    now: datetime | None = None,
) -> Sent:
    """A new attempt for a failed side, from the same endpoint and context."""
    now = now or utcnow()
    project, view, turn = await turn_of(session, conversation_id, turn_id, rater)
    if side not in SIDES:
        raise InvalidInput("must be 'left' or 'right'", field="side")
    if turn.judged:
        raise Conflict("This turn has been judged; its replies stay as they are.")
    current = turn.reply(side)
    status, _ = views.reply_state(current, now)
    if status == ReplyStatus.GENERATING:
        return Sent(
            view.conversation.id, turn.turn.id, (), view.conversation
        )  # asked twice: already running
    if status == ReplyStatus.COMPLETE:
        raise Conflict("This reply is complete; there is nothing to retry.")
    settings = await settings_of(session, project)
    endpoint_id = turn.turn.left_endpoint_id if side == "left" else turn.turn.right_endpoint_id
    endpoints = await repository.endpoints_by_id(session, [endpoint_id] if endpoint_id else [])
    endpoint = endpoints.get(endpoint_id) if endpoint_id else None
    config = _endpoint_config(endpoint, settings) if endpoint else None
    if endpoint is None or config is None:
        raise Conflict(NO_ENDPOINTS)
    await _reserve(session, settings, rater, 1, now)
    if current.status == ReplyStatus.GENERATING:  # abandoned: say so before the next attempt
        interrupted = {
            "status": ReplyStatus.FAILED,
            "failure": ReplyFailure.INTERRUPTED,
            "finished_at": now,
        }
        await repository.finish_replies(session, [(current.id, interrupted)])
    planned = _planned(endpoint, config)
    reply = _reply_row(turn.turn.id, side, current.attempt + 1, planned, now)
    session.add(reply)
    view.conversation.last_activity_at = now
    await session.flush()
    task = _task(reply.id, turn.turn.id, side, turn.turn.context, config, reply.deadline_at)
    return Sent(view.conversation.id, turn.turn.id, (task,), view.conversation)


async def turn_replies(
    session: AsyncSession, conversation_id: int, turn_id: int, rater: User
) -> list[ConversationReply]:
    """The current reply of each side of a turn of the rater's own conversation (404 when
    it is not theirs, or they may no longer rate its project)."""
    replies = await repository.turn_replies(
        session, conversation_id, turn_id, rater.id, rater.is_admin
    )
    return both_replies(replies, conversation_id, turn_id)


def both_replies(
    replies: list[ConversationReply], conversation_id: int, turn_id: int
) -> list[ConversationReply]:
    """`replies` when they are a turn's two (404 otherwise: not the rater's turn)."""
    if len(replies) != 2:
        raise NotFound(f"turn {turn_id}: no such turn in your conversation {conversation_id}")
    return replies


async def stop(session: AsyncSession, conversation_id: int, turn_id: int, rater: User) -> list[int]:
    """Marks the turn's replies still being written to stop; returns their ids."""
    _, _, turn = await turn_of(session, conversation_id, turn_id, rater, lock=False)
    return await repository.request_stop(session, turn.turn.id)
