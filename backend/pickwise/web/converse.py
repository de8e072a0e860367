"""The rater's conversation pages: plain forms that work without JavaScript.

Without JavaScript, sending a message (or retrying a reply) waits until both replies are
written, then shows them whole. With it (static/js/converse.js) the same forms carry
`wait=0`: the page comes back at once and the replies stream in, and the keys of the pair
page choose. Every POST ends in a 303 back to the page; what happened is said by a notice
named in the query string (a fixed list, never free text). Each form carries a fresh key, so
a double submit sends one message and stores one vote.
"""

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.background import BackgroundTask
from starlette.datastructures import FormData

from pickwise.auth.deps import Principal, PrincipalDep
from pickwise.conversations import repository, service, views
from pickwise.conversations.deps import UnitPrincipal
from pickwise.conversations.generation import generator
from pickwise.conversations.router import event_stream
from pickwise.conversations.schemas import MessageIn, StartIn, VoteIn
from pickwise.conversations.service import Sent
from pickwise.conversations.voting import count_judged_turn
from pickwise.core.clock import utcnow
from pickwise.core.db import OpenUnit, Units, open_unit
from pickwise.core.deps import SessionDep, UnitsDep
from pickwise.core.errors import PickwiseError
from pickwise.core.middleware import release_load_slot
from pickwise.models import Project, User
from pickwise.projects.deps import RaterProject, project_for_rater
from pickwise.vocabulary import ConversationStatus, OpenerSource, ReplyStatus
from pickwise.web.forms import form_text
from pickwise.web.markdown import render_markdown
from pickwise.web.rating import FormValues, form_values, judgment_from_form
from pickwise.web.templating import render

router = APIRouter(prefix="/converse", include_in_schema=False)

NOTICES = {
    "saved": ("info", "Saved. Write your next message, or end the conversation."),
    "finished": ("info", "Saved. This conversation has reached its last turn. Thank you!"),
    "edited": ("info", "Your edit is saved; the conversation goes on from it."),
    "ended": ("info", "The conversation has ended. Thank you!"),
    "stopped": ("info", "Stopped. What was written so far is kept."),
    "moved_on": ("warning", service.MOVED_ON),
}
SIDE_LABELS = {"left": "Reply A (left)", "right": "Reply B (right)"}
CHOICE_LABELS = {
    "left": "you preferred the left reply",
    "right": "you preferred the right reply",
    "tie": "you called it a tie",
    "both_bad": "you found both bad",
}


@dataclass(frozen=True)
class Problem:
    """An error shown on the page instead of a redirect (the rater's input is kept)."""

    message: str
    status: int


def _path(request: Request, name: str, **params: Any) -> str:
    return str(request.app.url_path_for(name, **{k: str(v) for k, v in params.items()}))


def _redirect(request: Request, name: str, notice: str | None = None, **params: Any) -> Response:
    path = _path(request, name, **params)
    return RedirectResponse(f"{path}?notice={notice}" if notice else path, status_code=303)


def _back(
    request: Request, project_id: int, conversation_id: int, notice: str | None = None
) -> Response:
    """303 to the conversation's page, with a notice."""
    params = {"project_id": project_id, "conversation_id": conversation_id}
    return _redirect(request, "converse_page", notice, **params)


def _notice(request: Request) -> tuple[str, str] | None:
    return NOTICES.get(request.query_params.get("notice", ""))


def _page(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    response = render(request, template, context, status_code=status)
    # From the back button a page would carry stale keys and a stale turn.
    response.headers["Cache-Control"] = "no-store"
    return response


def _csrf(principal: Principal) -> str:
    return principal.web_session.csrf_token if principal.web_session else ""


# --- building pages ------------------------------------------------------------------------


def _reply(view: views.TurnView, side: str, now: Any) -> dict[str, Any]:
    reply = view.reply(side)
    read = views.reply_read(reply, view.judged, now)
    return {
        "side": side,
        "label": SIDE_LABELS[side],
        "status": read.status.value,
        "problem": read.problem,
        "can_retry": read.can_retry,
        "html": render_markdown(read.content) if read.content else "",
        "kept": view.turn.continue_side == side,
    }


def _turn(view: views.TurnView, now: Any) -> dict[str, Any]:
    choice = view.shown_choice()
    return {
        "id": view.turn.id,
        "depth": view.turn.depth,
        "user_html": render_markdown(view.turn.user_content),
        "left": _reply(view, "left", now),
        "right": _reply(view, "right", now),
        "judged": view.judged,
        "choice_label": CHOICE_LABELS.get(choice or "", ""),
        "kept_side": view.turn.continue_side,
        "kept_text": view.kept_text if view.judged else "",
        "kept_html": render_markdown(view.kept_text) if view.judged else "",
        "edited": view.edit is not None,
        "generating": any(
            views.reply_state(r, now)[0] == ReplyStatus.GENERATING for r in (view.left, view.right)
        ),
        "can_vote": not view.judged and view.both_complete(now),
    }


async def _budget(session: AsyncSession, project: Project, rater: User) -> int | None:
    """Replies the rater may still start today, or None without a daily limit."""
    settings = await repository.get_settings(session, project.id)
    if settings is None or settings.replies_per_rater_per_day is None:
        return None
    used = await repository.replies_today(session, project.id, rater.id, utcnow().date())
    return max(settings.replies_per_rater_per_day - used, 0)


async def _conversation_page(
    request: Request,
    principal: Principal,
    session: AsyncSession,
    conversation_id: int,
    *,
    values: FormValues | None = None,
    draft: str = "",
    problem: Problem | None = None,
) -> Response:
    conversation, project = await service.own_conversation(session, conversation_id, principal.user)
    view = await views.load(session, conversation)
    now = utcnow()
    turns = [_turn(turn, now) for turn in view.turns]
    current = turns[-1] if turns and not turns[-1]["judged"] else None
    context = {
        "principal": principal,
        "project": project,
        "conversation": conversation,
        "system_html": render_markdown(conversation.system_prompt or ""),
        "prefix": [
            {"role": turn["role"], "html": render_markdown(str(turn["content"]))}
            for turn in conversation.prefix
        ],
        "history": turns if current is None else turns[:-1],
        "current": current,
        "head": turns[-1] if turns else None,
        "can_send": view.can_send,
        "finished": conversation.status != ConversationStatus.ACTIVE,
        "complete": conversation.status == ConversationStatus.COMPLETE,
        "turn_count": len(turns),
        "budget": await _budget(session, project, principal.user),
        "csrf_token": _csrf(principal),
        "message_key": str(uuid.uuid4()),
        "vote_key": str(uuid.uuid4()),
        "values": values or FormValues(criteria=("",) * len(project.criteria)),
        "draft": draft,
        "notice": _notice(request),
        "problem": problem,
    }
    return _page(request, "converse/conversation.html", context, problem.status if problem else 200)


async def _home_page(
    request: Request,
    principal: Principal,
    session: AsyncSession,
    project: Project,
    *,
    draft: str = "",
    problem: Problem | None = None,
) -> Response:
    settings = await service.settings_of(session, project)
    items = await service.list_items(session, project, principal.user)
    context = {
        "principal": principal,
        "project": project,
        "settings": settings,
        "own_allowed": settings.opener_source != OpenerSource.IMPORTED,
        "openers_allowed": settings.opener_source != OpenerSource.OWN,
        "conversations": items,
        "active": [item for item in items if item.status == ConversationStatus.ACTIVE],
        "budget": await _budget(session, project, principal.user),
        "csrf_token": _csrf(principal),
        "start_key": str(uuid.uuid4()),
        "draft": draft,
        "notice": _notice(request),
        "problem": problem,
    }
    return _page(request, "converse/home.html", context, problem.status if problem else 200)


async def _problem_page(
    request: Request,
    principal: Principal,
    units: Units,
    conversation_id: int,
    problem: Problem,
    **kwargs: Any,
) -> Response:
    async with units() as session:
        return await _conversation_page(
            request, principal, session, conversation_id, problem=problem, **kwargs
        )


async def _after_sending(request: Request, sent: Sent, form: FormData, unit: OpenUnit) -> None:
    """Commits the unit that wrote the turn, the replies' requests on their way meanwhile
    (`Generator.launch`); without JavaScript (wait=1) returns only once they are written."""
    await generator.launch(sent.tasks, unit.done())
    if form_text(form, "wait") != "0":
        release_load_slot(request.scope)
        await generator.wait_for_turn(sent.turn_id)


# --- routes --------------------------------------------------------------------------------


@router.get("/{project_id}", response_class=HTMLResponse, name="converse_home")
async def home(
    request: Request, principal: PrincipalDep, project: RaterProject, session: SessionDep
) -> Response:
    return await _home_page(request, principal, session, project)


@router.post("/{project_id}/start", name="converse_start")
async def start(
    request: Request, project_id: int, principal: UnitPrincipal, units: UnitsDep
) -> Response:
    form = await request.form()
    data = StartIn(
        message=form_text(form, "message")[:50_000] or None,
        use_opener=form_text(form, "use_opener") == "1",
    )
    try:
        generator.check_room(2)
        async with open_unit(units) as unit:
            found = await service.rater_project(unit.session, project_id, principal.user)
            key = form_text(form, "start_key") or None
            sent = await service.start(unit.session, found, project_id, principal.user, data, key)
            await _after_sending(request, sent, form, unit)
    except PickwiseError as exc:
        async with units() as session:
            project = await project_for_rater(project_id, session, principal.user)
            problem = Problem(exc.detail, exc.status_code)
            return await _home_page(
                request, principal, session, project, draft=data.message or "", problem=problem
            )
    return _redirect(
        request, "converse_page", project_id=project_id, conversation_id=sent.conversation_id
    )


@router.get("/{project_id}/c/{conversation_id}", response_class=HTMLResponse, name="converse_page")
async def conversation_page(
    request: Request,
    project_id: int,
    conversation_id: int,
    principal: PrincipalDep,
    session: SessionDep,
) -> Response:
    return await _conversation_page(request, principal, session, conversation_id)


@router.post("/{project_id}/c/{conversation_id}/messages", name="converse_send")
async def send(
    request: Request,
    project_id: int,
    conversation_id: int,
    principal: UnitPrincipal,
    units: UnitsDep,
) -> Response:
    form = await request.form()
    content = form_text(form, "content")
    parent = form_text(form, "parent_turn_id")
    try:
        data = MessageIn(content=content, parent_turn_id=int(parent) if parent.isdigit() else None)
    except ValidationError:
        problem = Problem("Write a message first (at most 50,000 characters).", 422)
        return await _problem_page(
            request, principal, units, conversation_id, problem, draft=content[:50_000]
        )
    try:
        generator.check_room(2)
        async with open_unit(units) as unit:
            key = form_text(form, "idempotency_key") or None
            sent = await service.send(unit.session, conversation_id, principal.user, data, key)
            await _after_sending(request, sent, form, unit)
    except PickwiseError as exc:
        if isinstance(exc, service.MovedOn | service.KeyReused):  # a second tab, an old page
            return _back(request, project_id, conversation_id, "moved_on")
        problem = Problem(exc.detail, exc.status_code)
        return await _problem_page(
            request, principal, units, conversation_id, problem, draft=content
        )
    return _back(request, project_id, conversation_id)


@router.get("/{project_id}/c/{conversation_id}/turns/{turn_id}/stream", name="converse_stream")
async def stream(
    request: Request, project_id: int, conversation_id: int, turn_id: int, units: UnitsDep
) -> Response:
    return await event_stream(request, units, conversation_id, turn_id, render_markdown)


@router.post("/{project_id}/c/{conversation_id}/turns/{turn_id}/retry", name="converse_retry")
async def retry(
    request: Request,
    project_id: int,
    conversation_id: int,
    turn_id: int,
    principal: UnitPrincipal,
    units: UnitsDep,
) -> Response:
    form = await request.form()
    try:
        generator.check_room(1)
        async with open_unit(units) as unit:
            sent = await service.retry(
                unit.session, conversation_id, turn_id, form_text(form, "side"), principal.user
            )
            await _after_sending(request, sent, form, unit)
    except PickwiseError as exc:
        problem = Problem(exc.detail, exc.status_code)
        return await _problem_page(request, principal, units, conversation_id, problem)
    return _back(request, project_id, conversation_id)


@router.post("/{project_id}/c/{conversation_id}/turns/{turn_id}/stop", name="converse_stop")
async def stop(
    request: Request,
    project_id: int,
    conversation_id: int,
    turn_id: int,
    principal: UnitPrincipal,
    units: UnitsDep,
) -> Response:
    async with units() as session:
        stopping = await service.stop(session, conversation_id, turn_id, principal.user)
    generator.stop(stopping)
    await generator.wait_for_turn(turn_id)
    return _back(request, project_id, conversation_id, "stopped")


@router.post("/{project_id}/c/{conversation_id}/turns/{turn_id}/judgment", name="converse_vote")
async def vote(
    request: Request,
    project_id: int,
    conversation_id: int,
    turn_id: int,
    principal: PrincipalDep,
    session: SessionDep,
) -> Response:
    form = await request.form()
    _, project = await service.own_conversation(session, conversation_id, principal.user)
    values = form_values(form, project)
    try:
        judgment = judgment_from_form(values, form_text(form, "choice"), project)
        continue_with = form_text(form, "continue_with")
        body = VoteIn(
            **judgment.model_dump(),
            continue_with=continue_with if continue_with in ("left", "right") else None,
        )
        voted = await service.vote(session, conversation_id, turn_id, principal.user, body)
    except PickwiseError as exc:
        problem = Problem(exc.detail, exc.status_code)
        return await _conversation_page(
            request, principal, session, conversation_id, values=values, problem=problem
        )
    notice = "saved" if voted.view.active else "finished"
    response = _back(request, project_id, conversation_id, notice)
    if voted.stored:
        response.background = BackgroundTask(count_judged_turn, project.id)
    return response


@router.post("/{project_id}/c/{conversation_id}/turns/{turn_id}/edit", name="converse_edit")
async def edit(
    request: Request,
    project_id: int,
    conversation_id: int,
    turn_id: int,
    principal: PrincipalDep,
    session: SessionDep,
) -> Response:
    form = await request.form()
    try:
        await service.edit(
            session, conversation_id, turn_id, principal.user, form_text(form, "content")[:50_000]
        )
    except PickwiseError as exc:
        problem = Problem(exc.detail, exc.status_code)
        return await _conversation_page(
            request, principal, session, conversation_id, problem=problem
        )
    return _back(request, project_id, conversation_id, "edited")


@router.post("/{project_id}/c/{conversation_id}/end", name="converse_end")
async def end(
    request: Request,
    project_id: int,
    conversation_id: int,
    principal: PrincipalDep,
    session: SessionDep,
) -> Response:
    await service.end(session, conversation_id, principal.user)
    return _redirect(request, "converse_home", "ended", project_id=project_id)
