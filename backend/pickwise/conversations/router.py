"""The live-conversation API: admins configure a project and read its usage, figures and
chosen-path export; raters start conversations, send messages, follow the replies as they
stream, retry or stop them, vote, edit the reply they keep, and end.

Routes that ask for replies (start, messages, retry) and the event stream take no
request-long session: they commit the turn first, let go of their connection and only then
wait on the models (docs/conversations.md).
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.background import BackgroundTask

from pickwise.auth.deps import ApiTokenHeader, CurrentRater
from pickwise.conversations import export, reports, service, streaming, views
from pickwise.conversations.deps import (
    Asking,
    AskingDep,
    DatabaseSlot,
    SendingDep,
    StartingDep,
    UnitPrincipal,
    caller,
    database_slot,
    turn_replies_for,
)
from pickwise.conversations.generation import generator
from pickwise.conversations.schemas import (
    ConversationListItem,
    ConversationRead,
    ConversationSettingsIn,
    ConversationSettingsRead,
    ConversationStats,
    EditIn,
    EndpointUsage,
    MessageIn,
    StartIn,
    VoteIn,
)
from pickwise.conversations.service import Sent
from pickwise.conversations.voting import count_judged_turn
from pickwise.core.clock import utcnow
from pickwise.core.db import Units
from pickwise.core.deps import SessionDep, UnitsDep
from pickwise.core.middleware import release_load_slot
from pickwise.exports.dataset.ndjson import NDJSON_MEDIA_TYPE
from pickwise.exports.dataset.splits import Split
from pickwise.exports.deps import ReadConnection
from pickwise.judgments import idempotency
from pickwise.judgments.router import IdempotencyKeyHeader
from pickwise.models import User
from pickwise.projects.deps import AdminProject, RaterProject
from pickwise.vocabulary import ShownSide

router = APIRouter(prefix="/api/v1", tags=["conversations"])

Wait = Annotated[
    bool,
    Query(
        description="Answer once both replies are written; otherwise at once (follow them "
        "with the turn's `events`)."
    ),
]
EVENT_STREAM = "text/event-stream"
EVENT_STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


# --- admin --------------------------------------------------------------------------------


@router.get("/projects/{project_id}/conversation-settings", response_model=ConversationSettingsRead)
async def get_settings(project: AdminProject, session: SessionDep) -> ConversationSettingsRead:
    return await service.settings_read(session, project)


@router.put(
    "/projects/{project_id}/conversation-settings",
    response_model=ConversationSettingsRead,
    summary="Make this a conversation project, or change its settings",
)
async def put_settings(
    body: ConversationSettingsIn, project: AdminProject, session: SessionDep
) -> ConversationSettingsRead:
    await service.configure(session, project, body)
    return await service.settings_read(session, project)


@router.get("/projects/{project_id}/conversation-usage", response_model=list[EndpointUsage])
async def usage(project: AdminProject, session: SessionDep) -> list[EndpointUsage]:
    """Requests and tokens spent per endpoint (all time, and since midnight UTC)."""
    return await reports.endpoint_usage(session, project.id, utcnow())


@router.get("/projects/{project_id}/conversation-stats", response_model=ConversationStats)
async def stats(project: AdminProject, session: SessionDep) -> ConversationStats:
    """Turns per conversation and where raters stop."""
    return await reports.conversation_stats(session, project.id)


@router.get(
    "/projects/{project_id}/conversation-export",
    summary="Download each conversation's chosen path as NDJSON (SFT messages)",
    response_class=StreamingResponse,
    responses={200: {"content": {NDJSON_MEDIA_TYPE: {}}, "description": '{"messages": [...]}'}},
)
async def download_chosen_paths(
    project: AdminProject,
    connection: ReadConnection,
    split: Annotated[Split | None, Query(description="Only this split (default: both).")] = None,
    test_fraction: Annotated[float, Query(ge=0.0, le=1.0)] = 0.1,
    seed: int = 0,
    include_excluded: bool = False,
) -> StreamingResponse:
    rows = export.sft_ndjson(
        connection,
        project.id,
        split=split,
        test_fraction=test_fraction,
        seed=seed,
        include_excluded=include_excluded,
    )
    name = f"{project.slug}-chosen-paths-{split or 'all'}.jsonl"
    return StreamingResponse(
        rows,
        media_type=NDJSON_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- raters -------------------------------------------------------------------------------


async def _read(units: Units, conversation_id: int, rater: User) -> ConversationRead:
    async with units() as session:
        conversation, _ = await service.own_conversation(session, conversation_id, rater)
        view = await views.load(session, conversation)
    return views.conversation_read(view, utcnow())


async def _asking(
    request: Request,
    asking: Asking,
    units: Units,
    wait: bool,
    ask: Callable[[AsyncSession, User], Awaitable[Sent]],
    *,
    replies: int,
) -> ConversationRead:
    """Writes the turn (or attempt) and, unless the answer waits for the replies, reads the
    conversation back, in the unit that found who asks; commits, the replies' requests on
    their way meanwhile (no transaction is open while a model writes); and answers, at once
    or when they are written.
    (Who asks, the writing and the reading were three transactions: under load every BEGIN
    and COMMIT is a round trip the worker waits for.) The replies' requests go out before
    the answer is built: the model's first token is what the rater waits for."""
    session, rater = asking.unit.session, asking.rater
    generator.check_room(replies)
    sent = await ask(session, rater)
    view = None
    if not wait and sent.new_view is None:
        assert sent.conversation is not None, "without new_view, the conversation is read"
        view = await views.load(session, sent.conversation)
    # The replies' requests go out while the COMMIT is written (nothing they bring is kept
    # unless it goes through): the COMMIT's flush was on the path to the first token.
    await generator.launch(sent.tasks, asking.unit.done())
    if not wait:
        if view is None:
            assert sent.new_view is not None, "checked above"
            view = sent.new_view()
        return views.conversation_read(view, utcnow())
    release_load_slot(request.scope)
    await generator.wait_for_turn(sent.turn_id)
    return await _read(units, sent.conversation_id, rater)


@router.post(
    "/projects/{project_id}/conversations",
    response_model=ConversationRead,
    status_code=201,
    summary="Start a conversation (its first message gets two replies)",
    responses={429: {"description": "The rater's replies for today are used up."}},
)
async def start_conversation(
    project_id: int,
    body: StartIn,
    request: Request,
    starting: StartingDep,
    units: UnitsDep,
    wait: Wait = False,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ConversationRead:
    async def ask(session: AsyncSession, rater: User) -> Sent:
        if starting.sent is not None:
            return starting.sent  # written in the lookup's round trip, as planned
        return await service.start(
            session, starting.project, project_id, rater, body, idempotency_key
        )

    return await _asking(request, starting, units, wait, ask, replies=2)


@router.get("/projects/{project_id}/conversations", response_model=list[ConversationListItem])
async def list_conversations(
    project: RaterProject, rater: CurrentRater, session: SessionDep
) -> list[ConversationListItem]:
    """The rater's own conversations in this project, latest first."""
    return await service.list_items(session, project, rater)


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationRead,
    dependencies=[DatabaseSlot],
)
async def get_conversation(
    conversation_id: int, session: SessionDep, request: Request, _documented: ApiTokenHeader
) -> ConversationRead:
    rater = (await caller(request, session)).user
    return await service.conversation_read(session, conversation_id, rater)


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=ConversationRead,
    status_code=201,
    summary="Send the next message (after the last turn's vote)",
    responses={
        409: {"description": "The conversation moved on, has ended, or waits for a vote."},
        429: {"description": "The rater's replies for today are used up."},
    },
)
async def send_message(
    conversation_id: int,
    body: MessageIn,
    request: Request,
    sending: SendingDep,
    units: UnitsDep,
    wait: Wait = False,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ConversationRead:
    async def ask(session: AsyncSession, rater: User) -> Sent:
        return await service.send_in(
            session, sending.found, conversation_id, rater, body, idempotency_key
        )

    return await _asking(request, sending, units, wait, ask, replies=2)


@router.get(
    "/conversations/{conversation_id}/turns/{turn_id}/events",
    summary="The turn's replies as server-sent events (text as it comes)",
    response_class=StreamingResponse,
    responses={200: {"content": {EVENT_STREAM: {}}, "description": "text, reply, done events"}},
)
async def turn_events(
    conversation_id: int,
    turn_id: int,
    request: Request,
    units: UnitsDep,
    _documented: ApiTokenHeader,
) -> StreamingResponse:
    return await event_stream(request, units, conversation_id, turn_id, None)


async def event_stream(
    request: Request,
    units: Units,
    conversation_id: int,
    turn_id: int,
    render: streaming.Render | None,
) -> StreamingResponse:
    """The page's stream and the API's: one source, `render` adds each reply's HTML."""
    async with database_slot(request), units() as session:
        replies = await turn_replies_for(request, session, conversation_id, turn_id)
    release_load_slot(request.scope)
    events = streaming.turn_events(generator, units, replies, render)
    return StreamingResponse(events, media_type=EVENT_STREAM, headers=EVENT_STREAM_HEADERS)


class RetryIn(BaseModel):
    side: ShownSide


@router.post(
    "/conversations/{conversation_id}/turns/{turn_id}/retry",
    response_model=ConversationRead,
    summary="Ask again for a reply that failed",
)
async def retry_reply(
    conversation_id: int,
    turn_id: int,
    body: RetryIn,
    request: Request,
    asking: AskingDep,
    units: UnitsDep,
    wait: Wait = False,
) -> ConversationRead:
    async def ask(session: AsyncSession, rater: User) -> Sent:
        return await service.retry(session, conversation_id, turn_id, body.side, rater)

    return await _asking(request, asking, units, wait, ask, replies=1)


@router.post(
    "/conversations/{conversation_id}/turns/{turn_id}/stop",
    response_model=ConversationRead,
    summary="Stop the replies still being written (what came so far is kept)",
)
async def stop_replies(
    conversation_id: int, turn_id: int, principal: UnitPrincipal, units: UnitsDep
) -> ConversationRead:
    async with units() as session:
        stopping = await service.stop(session, conversation_id, turn_id, principal.user)
    generator.stop(stopping)
    await generator.wait_for_turn(turn_id)
    return await _read(units, conversation_id, principal.user)


@router.post(
    "/conversations/{conversation_id}/turns/{turn_id}/judgment",
    dependencies=[DatabaseSlot],
    response_model=ConversationRead,
    summary="Pick the better reply; the conversation goes on from it",
    responses={409: {"description": "The replies are not complete, or already judged."}},
)
async def vote(
    conversation_id: int,
    turn_id: int,
    body: VoteIn,
    request: Request,
    rater: CurrentRater,
    session: SessionDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    counted: list[int] = []

    async def work() -> tuple[int, dict[str, Any]]:
        voted = await service.vote(session, conversation_id, turn_id, rater, body)
        if voted.stored:
            counted.append(voted.view.conversation.project_id)
        return 200, views.conversation_read(voted.view, utcnow()).model_dump(mode="json")

    fingerprint = idempotency.request_fingerprint(request.url.path, body)
    status, answer = await idempotency.run_once(session, rater, idempotency_key, fingerprint, work)
    after = BackgroundTask(count_judged_turn, counted[0]) if counted else None
    return JSONResponse(answer, status_code=status, background=after)


@router.put(
    "/conversations/{conversation_id}/turns/{turn_id}/edit",
    dependencies=[DatabaseSlot],
    response_model=ConversationRead,
    summary="Rewrite the reply kept (before the next message); the original stays stored",
)
async def edit_reply(
    conversation_id: int, turn_id: int, body: EditIn, rater: CurrentRater, session: SessionDep
) -> ConversationRead:
    await service.edit(session, conversation_id, turn_id, rater, body.content)
    return await service.conversation_read(session, conversation_id, rater)


@router.post(
    "/conversations/{conversation_id}/end",
    response_model=ConversationRead,
    dependencies=[DatabaseSlot],
)
async def end_conversation(
    conversation_id: int, rater: CurrentRater, session: SessionDep
) -> ConversationRead:
    await service.end(session, conversation_id, rater)
    return await service.conversation_read(session, conversation_id, rater)
