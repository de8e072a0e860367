"""The rating page: one pair at a time, plain forms that work without JavaScript.

Every action is a POST followed by a 303 back to the page, which shows the rater's current
lease (or the next one). Each rendered form carries a fresh idempotency key, so a double
submit stores one judgment. One-time messages (saved, late, gold feedback) travel in a
short-lived cookie scoped to the project's rating pages and are shown once.
"""

import base64
import binascii
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from pickwise.assignments import repository as assignments_repository
from pickwise.assignments import service as assignments
from pickwise.auth.deps import Principal, PrincipalDep, may_act_on_get
from pickwise.core.clock import utcnow
from pickwise.core.config import get_settings
from pickwise.core.deps import SessionDep
from pickwise.core.errors import InvalidInput
from pickwise.judgments import changes, idempotency
from pickwise.judgments import service as judgments
from pickwise.judgments.patterns import MAX_JUDGMENTS, rater_choice_patterns
from pickwise.judgments.schemas import FlagIn, JudgmentIn, SkipIn
from pickwise.models import Project, User
from pickwise.pools.quota import quota_state
from pickwise.projects.deps import RaterProject
from pickwise.vocabulary import (
    CanonicalSide,
    RationaleMode,
    ShownChoice,
    ShownCriterionChoice,
    SkipReason,
)
from pickwise.web.markdown import render_markdown
from pickwise.web.templating import render

router = APIRouter(prefix="/rate", include_in_schema=False)

FLASH_COOKIE = "pickwise_flash"
TIME_ZONE_COOKIE = "pickwise_tz"
FLASH_SECONDS = 120
FLASH_KINDS = ("info", "warning", "feedback")
ROLE_LABELS = {"user": "User", "assistant": "Assistant", "system": "System"}
FIELD_PROBLEMS = {
    "choice": "Choose one of the answer buttons.",
    "rationale": "The reason is too long; keep it under 20,000 characters.",
}
CHANGED_MESSAGE = "Changed: your choice on the previous pair is now this one. Here is your pair."
SKIP_REASON_MISSING = "Pick a reason to skip the pair."
WITHDRAWN_MESSAGE = (
    "Changed: you skipped the previous pair; another rater will judge it. Here is your pair."
)
REUSED_FORM_MESSAGE = (
    "That page had already been sent with another answer, so this one was not stored. "
    "Here is your current pair."
)


@dataclass(frozen=True)
class Flash:
    kind: str  # one of FLASH_KINDS
    text: str


@dataclass(frozen=True)
class Progress:
    today: int  # judgments by this rater in this project since their midnight
    total: int  # all judgments by this rater in this project
    needed: int  # judgments the project still needs from anyone


@dataclass(frozen=True)
class FormValues:
    """What the rater had entered, shown again when a choice is refused."""

    strength: str = ""
    rationale: str = ""
    criteria: tuple[str, ...] = ()
    skip_reason: str = ""


# --- one-time messages ------------------------------------------------------------------


def _rate_path(request: Request, project_id: int) -> str:
    return str(request.app.url_path_for("rate_page", project_id=project_id))


def _encode_flash(flash: Flash) -> str:
    raw = json.dumps([flash.kind, flash.text]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_flash(request: Request) -> Flash | None:
    value = request.cookies.get(FLASH_COOKIE)
    if not value:
        return None
    try:
        kind, text = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError, TypeError):
        return None
    if kind not in FLASH_KINDS or not isinstance(text, str):
        return None
    return Flash(kind, text)


def _redirect(request: Request, project: Project, flash: Flash | None, to: str = "") -> Response:
    response = RedirectResponse(to or _rate_path(request, project.id), status_code=303)
    if flash is not None:
        response.set_cookie(
            FLASH_COOKIE,
            _encode_flash(flash),
            max_age=FLASH_SECONDS,
            path=_rate_path(request, project.id),
            httponly=True,
            samesite="lax",
            secure=get_settings().secure_cookies,
        )
    return response


def _page(
    request: Request, project: Project, template: str, context: dict[str, Any], status: int = 200
) -> Response:
    """Renders a rating page, showing (and so using up) any one-time message."""
    flash = _read_flash(request)
    response = render(request, template, {**context, "flash": flash}, status_code=status)
    # A page from the back button would carry a stale idempotency key and lease.
    response.headers["Cache-Control"] = "no-store"
    if request.cookies.get(FLASH_COOKIE) is not None:
        response.delete_cookie(FLASH_COOKIE, path=_rate_path(request, project.id))
    return response


# --- page building ----------------------------------------------------------------------


def _rater_zone(request: Request) -> ZoneInfo:
    """The rater's time zone, as their browser said (rate.js sets the cookie); else UTC."""
    name = request.cookies.get(TIME_ZONE_COOKIE, "")
    return ZoneInfo(name) if name in _known_zones() else ZoneInfo("UTC")


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _start_of_day(request: Request) -> datetime:
    """Midnight of the rater's today: "done today" counts from when their day began."""
    local = utcnow().astimezone(_rater_zone(request))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


async def _progress(
    request: Request, session: AsyncSession, project: Project, rater: User
) -> Progress:
    since = _start_of_day(request)
    counts = await assignments_repository.rater_counts(session, project.id, rater.id, since)
    remaining = await assignments_repository.judgments_needed(session, project.id)
    return Progress(counts["today"], counts["total"], remaining)


def _csrf_token(principal: Principal) -> str:
    return principal.web_session.csrf_token if principal.web_session else ""


def _base_context(principal: Principal, project: Project, progress: Progress) -> dict[str, Any]:
    return {
        "principal": principal,
        "project": project,
        "progress": progress,
        "csrf_token": _csrf_token(principal),
    }


def _lease_minutes(lease: assignments.Lease, now: datetime) -> int:
    return max(1, round((lease.expires_at - now).total_seconds() / 60))


@dataclass(frozen=True)
class Editing:
    """The rater's last decision, shown again to change it."""

    previous: dict[str, str]  # see _previous
    until: datetime
    until_text: str  # the deadline on the rater's clock
    was_judged: bool


async def _pair_page(
    request: Request,
    principal: Principal,
    project: Project,
    session: AsyncSession,
    lease: assignments.Lease,
    *,
    values: FormValues | None = None,
    error: str | None = None,
    editing: Editing | None = None,
) -> Response:
    content = lease.content
    left, right = assignments_repository.shown_sides(content, lease.left_side)
    turns = [
        {
            "role": str(turn.get("role", "")),
            "label": ROLE_LABELS.get(str(turn.get("role")), str(turn.get("role", ""))),
            "html": render_markdown(str(turn.get("content", ""))),
        }
        for turn in content.prompt.turns
    ]
    values = values or FormValues(criteria=("",) * len(project.criteria))
    progress = await _progress(request, session, project, principal.user)
    context = {
        **_base_context(principal, project, progress),
        "assignment_id": lease.assignment_id,
        "lease_minutes": _lease_minutes(lease, utcnow()),
        # Only the texts reach the template: model names and gold status never do.
        "system_html": render_markdown(content.prompt.system),
        "turns": turns,
        "left_html": render_markdown(left.content),
        "right_html": render_markdown(right.content),
        "judgment_key": str(uuid.uuid4()),
        "skip_key": str(uuid.uuid4()),
        "flag_key": str(uuid.uuid4()),
        "values": values,
        "error": error,
        "choice_action": request.app.url_path_for(
            "rate_change_judgment" if editing else "rate_submit",
            project_id=project.id,
            assignment_id=lease.assignment_id,
        ),
        "skip_action": request.app.url_path_for(
            "rate_change_skip" if editing else "rate_skip",
            project_id=project.id,
            assignment_id=lease.assignment_id,
        ),
        "editing": editing,
        "undo_url": None if editing else await _undo_url(request, session, project, principal),
        "undo_window": changes.window_words(project.undo_seconds),
    }
    return _page(request, project, "rate/pair.html", context, 422 if error else 200)


async def _undo_url(
    request: Request, session: AsyncSession, project: Project, principal: Principal
) -> str | None:
    """The link (and the u key) to change the rater's last decision, while they may."""
    if await changes.changeable(session, project, principal.user) is None:
        return None
    return str(request.app.url_path_for("rate_change", project_id=project.id))


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def form_values(form: FormData, project: Project) -> FormValues:
    return FormValues(
        strength=_field(form, "strength"),
        rationale=_field(form, "rationale"),
        criteria=tuple(_field(form, f"criterion-{i}") for i in range(len(project.criteria))),
    )


def judgment_from_form(values: FormValues, choice: str, project: Project) -> JudgmentIn:
    """The form as the API's JudgmentIn; the two slips a rater makes most get plain words."""
    decisive = choice in (ShownChoice.LEFT, ShownChoice.RIGHT)
    if decisive and project.strength_scale and not values.strength:
        raise InvalidInput("Pick how much better the answer you chose is, then choose again.")
    if project.rationale_mode == RationaleMode.REQUIRED and not values.rationale.strip():
        raise InvalidInput("Say briefly why; this project asks for a reason with every choice.")
    strength: int | None = None
    # Strength belongs to a left/right choice only; the radios stay filled in for a tie.
    if decisive and values.strength:
        if not values.strength.isdigit():
            raise InvalidInput("Pick one of the strength options.")
        strength = int(values.strength)
    criteria = {
        name: side
        for name, side in zip(project.criteria, values.criteria, strict=True)
        if side in frozenset(ShownCriterionChoice)
    }
    rationale = values.rationale if project.rationale_mode != RationaleMode.OFF else ""
    try:
        return JudgmentIn(
            choice=choice,
            strength=strength,
            rationale=rationale or None,
            criteria=criteria,
        )
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0])
        raise InvalidInput(FIELD_PROBLEMS.get(field, "Choose one of the answer buttons.")) from exc


async def _refused(
    request: Request,
    principal: Principal,
    project: Project,
    session: AsyncSession,
    values: FormValues,
    message: str,
) -> Response:
    """The same pair again, with the rater's entries and what to fix."""
    lease = await assignments.next_lease(session, project, principal.user)
    if lease is None:
        return _redirect(request, project, Flash("warning", message))
    return await _pair_page(
        request, principal, project, session, lease, values=values, error=message
    )


async def _once(
    request: Request,
    session: AsyncSession,
    rater: User,
    form: FormData,
    body: BaseModel,
    work: Callable[[], Awaitable[tuple[int, dict[str, Any]]]],
) -> tuple[int, dict[str, Any]] | None:
    """Runs `work` once per rendered form (its idempotency key): the first answer again for a
    double submit; None when the form was already sent with another answer."""
    fingerprint = idempotency.request_fingerprint(request.url.path, body)
    key = _field(form, "idempotency_key") or None
    try:
        return await idempotency.run_once(session, rater, key, fingerprint, work)
    except InvalidInput:
        return None


async def _skip_or_flag_once(
    request: Request,
    project: Project,
    session: AsyncSession,
    rater: User,
    form: FormData,
    body: SkipIn | FlagIn,
    work: Callable[[], Awaitable[tuple[int, dict[str, Any]]]],
    done_message: str,
) -> Response:
    """Runs a skip or flag (or a change into a skip) once per form and goes back to the page."""
    answered = await _once(request, session, rater, form, body, work)
    if answered is None:
        return _redirect(request, project, Flash("warning", REUSED_FORM_MESSAGE))
    status, answer = answered
    if status >= 400:
        return _redirect(request, project, Flash("warning", str(answer["detail"])))
    return _redirect(request, project, Flash("info", done_message))


def _skip_from_form(form: FormData) -> SkipIn | None:
    try:
        return SkipIn(reason=_field(form, "reason"))
    except ValidationError:
        return None


# --- routes -----------------------------------------------------------------------------


@router.get("/{project_id}", response_class=HTMLResponse, name="rate_page")
async def rate_page(
    request: Request, principal: PrincipalDep, project: RaterProject, session: SessionDep
) -> Response:
    """The rater's pair. A new one is leased only for a request from this site; one that
    came from another site's link shows a button that asks for it (a POST, CSRF-checked)."""
    rater = principal.user
    may_lease = may_act_on_get(request, principal)
    lease = await assignments.next_lease(session, project, rater, new=may_lease)
    if lease is not None:
        return await _pair_page(request, principal, project, session, lease)
    if not may_lease:
        progress = await _progress(request, session, project, rater)
        context = _base_context(principal, project, progress)
        return _page(request, project, "rate/start.html", context)
    quota = await quota_state(session, project.id, rater.id)
    if quota is not None and quota.reached:
        # A study participant who is done gets their completion code.
        done = request.app.url_path_for("participant_done", project_id=project.id)
        return RedirectResponse(done, status_code=303)
    progress = await _progress(request, session, project, rater)
    return _page(request, project, "rate/no_work.html", _base_context(principal, project, progress))


@router.post("/{project_id}/next", name="rate_next")
async def next_pair(
    request: Request, principal: PrincipalDep, project: RaterProject, session: SessionDep
) -> Response:
    """Lease a pair (the start page's button), then show it."""
    await assignments.next_lease(session, project, principal.user)
    return _redirect(request, project, None)


@router.post("/{project_id}/assignments/{assignment_id}/judgment", name="rate_submit")
async def submit_judgment(
    request: Request,
    assignment_id: int,
    principal: PrincipalDep,
    project: RaterProject,
    session: SessionDep,
) -> Response:
    rater = principal.user
    form = await request.form()
    values = form_values(form, project)
    try:
        body = judgment_from_form(values, _field(form, "choice"), project)
    except InvalidInput as exc:
        return await _refused(request, principal, project, session, values, exc.detail)

    async def work() -> tuple[int, dict[str, Any]]:
        stored = await judgments.submit(session, assignment_id, rater, body)
        return 201, {"judgment_id": stored.judgment_id, "gold_feedback": stored.gold_feedback}

    answered = await _once(request, session, rater, form, body, work)
    if answered is None:
        return _redirect(request, project, Flash("warning", REUSED_FORM_MESSAGE))
    status, answer = answered
    if status == 422:
        return await _refused(request, principal, project, session, values, answer["detail"])
    if status >= 400:
        # Late (409) or no longer this rater's pair: say so, and show the next pair.
        return _redirect(request, project, Flash("warning", str(answer["detail"])))
    counts = await assignments_repository.rater_counts(session, project.id, rater.id, utcnow())
    total = counts["total"]
    summary_due = bool(project.summary_every) and total % project.summary_every == 0
    if answer.get("gold_feedback"):
        flash = Flash("feedback", str(answer["gold_feedback"]))
    else:
        flash = Flash("info", "Saved." if summary_due else "Saved. Here is the next pair.")
    if summary_due:
        summary = request.app.url_path_for("rate_summary", project_id=project.id)
        return _redirect(request, project, flash, to=f"{summary}?after={total}")
    return _redirect(request, project, flash)


@router.post("/{project_id}/assignments/{assignment_id}/skip", name="rate_skip")
async def skip_pair(
    request: Request,
    assignment_id: int,
    principal: PrincipalDep,
    project: RaterProject,
    session: SessionDep,
) -> Response:
    rater = principal.user
    form = await request.form()
    body = _skip_from_form(form)
    if body is None:
        return _redirect(request, project, Flash("warning", SKIP_REASON_MISSING))

    async def work() -> tuple[int, dict[str, Any]]:
        await judgments.skip(session, assignment_id, rater, body)
        return 200, {}

    done = "Skipped. Here is the next pair."
    return await _skip_or_flag_once(request, project, session, rater, form, body, work, done)


@router.post("/{project_id}/assignments/{assignment_id}/flag", name="rate_flag")
async def flag_pair(
    request: Request,
    assignment_id: int,
    principal: PrincipalDep,
    project: RaterProject,
    session: SessionDep,
) -> Response:
    rater = principal.user
    form = await request.form()
    try:
        body = FlagIn(reason=_field(form, "reason"), note=_field(form, "note"))
    except ValidationError:
        return _redirect(request, project, Flash("warning", "Pick a reason to flag the pair."))

    async def work() -> tuple[int, dict[str, Any]]:
        await judgments.flag(session, assignment_id, rater, body)
        return 200, {}

    done = (
        "Flagged for review; nobody will be shown this pair until an admin has looked. "
        "Here is the next pair."
    )
    return await _skip_or_flag_once(request, project, session, rater, form, body, work, done)


@router.get("/{project_id}/summary", response_class=HTMLResponse, name="rate_summary")
async def summary_page(
    request: Request,
    principal: PrincipalDep,
    project: RaterProject,
    session: SessionDep,
    after: str | None = None,
) -> Response:
    """What your choices teach: the rater's own patterns, visible to nobody else."""
    patterns = await rater_choice_patterns(session, project.id, principal.user.id)
    progress = await _progress(request, session, project, principal.user)
    context = {
        **_base_context(principal, project, progress),
        "patterns": patterns,
        "max_judgments": MAX_JUDGMENTS,
        "milestone": after is not None,
    }
    return _page(request, project, "rate/summary.html", context)


@router.get("/{project_id}/guidelines", response_class=HTMLResponse, name="rate_guidelines")
async def guidelines_page(
    request: Request, principal: PrincipalDep, project: RaterProject
) -> Response:
    context = {
        "principal": principal,
        "project": project,
        "guidelines_html": render_markdown(project.guidelines_md),
    }
    return _page(request, project, "rate/guidelines.html", context)


# --- changing the last choice or skip (judgments.changes) -------------------------------


def _previous(project: Project, found: changes.Changeable) -> dict[str, str]:
    """What the rater decided, for the page to say in the words of its layout: the choice as
    shown (or "skip"), its strength label, a skip's reason."""
    judgment = found.judgment
    if judgment is None:
        reason = found.assignment.skip_reason
        return {"choice": "skip", "reason": SkipReason(reason).label if reason else ""}
    scale = list(project.strength_scale)
    strength = judgment.strength
    return {
        "choice": changes.shown_choice(judgment),
        "strength": scale[strength] if strength is not None and strength < len(scale) else "",
    }


def _values_of(project: Project, found: changes.Changeable) -> FormValues:
    judgment = found.judgment
    if judgment is None:
        return FormValues(
            criteria=("",) * len(project.criteria),
            skip_reason=found.assignment.skip_reason or "",
        )
    # The side and its strength are chosen again (two keys); what was written stays.
    criteria = changes.shown_criteria(judgment)
    return FormValues(
        rationale=judgment.rationale or "",
        criteria=tuple(criteria.get(name, "") for name in project.criteria),
    )


async def _change_page(
    request: Request,
    principal: PrincipalDep,
    project: Project,
    session: AsyncSession,
    *,
    values: FormValues | None = None,
    error: str | None = None,
) -> Response:
    """The rater's last decision shown again, to change; a 409 page when it cannot be."""
    found = await changes.changeable(session, project, principal.user)
    if found is None:
        progress = await _progress(request, session, project, principal.user)
        context = {
            **_base_context(principal, project, progress),
            "undo_window": changes.window_words(project.undo_seconds),
        }
        return _page(request, project, "rate/no_change.html", context, status=409)
    assignment = found.assignment
    local_until = found.until.astimezone(_rater_zone(request))
    lease = assignments.Lease(
        assignment.id,
        assignment.pair_id,
        CanonicalSide(assignment.left_side),
        assignment.is_gold,
        found.until,
        await assignments_repository.pair_content(session, assignment.pair_id),
    )
    editing = Editing(
        previous=_previous(project, found),
        until=found.until,
        until_text=f"{local_until:%H:%M:%S}",
        was_judged=found.judgment is not None,
    )
    return await _pair_page(
        request,
        principal,
        project,
        session,
        lease,
        values=values or _values_of(project, found),
        error=error,
        editing=editing,
    )


@router.get("/{project_id}/change", response_class=HTMLResponse, name="rate_change")
async def change_page(
    request: Request, principal: PrincipalDep, project: RaterProject, session: SessionDep
) -> Response:
    """The previous pair again, with the rater's choice or skip, to change it (the `u` key)."""
    return await _change_page(request, principal, project, session)


@router.post("/{project_id}/assignments/{assignment_id}/change", name="rate_change_judgment")
async def change_judgment(
    request: Request,
    assignment_id: int,
    principal: PrincipalDep,
    project: RaterProject,
    session: SessionDep,
) -> Response:
    rater = principal.user
    form = await request.form()
    values = form_values(form, project)
    try:
        body = judgment_from_form(values, _field(form, "choice"), project)
    except InvalidInput as exc:
        return await _change_page(
            request, principal, project, session, values=values, error=exc.detail
        )

    async def work() -> tuple[int, dict[str, Any]]:
        stored = await changes.change_judgment(session, assignment_id, rater, body)
        return 200, {"judgment_id": stored.judgment_id, "gold_feedback": stored.gold_feedback}

    answered = await _once(request, session, rater, form, body, work)
    if answered is None:
        return _redirect(request, project, Flash("warning", REUSED_FORM_MESSAGE))
    status, answer = answered
    if status == 422:
        return await _change_page(
            request, principal, project, session, values=values, error=answer["detail"]
        )
    if status >= 400:
        # Too late, or decided on another pair since: say so, and back to the current pair.
        return _redirect(request, project, Flash("warning", str(answer["detail"])))
    if answer.get("gold_feedback"):
        return _redirect(request, project, Flash("feedback", str(answer["gold_feedback"])))
    return _redirect(request, project, Flash("info", CHANGED_MESSAGE))


@router.post("/{project_id}/assignments/{assignment_id}/change-to-skip", name="rate_change_skip")
async def change_to_skip(
    request: Request,
    assignment_id: int,
    principal: PrincipalDep,
    project: RaterProject,
    session: SessionDep,
) -> Response:
    rater = principal.user
    form = await request.form()
    body = _skip_from_form(form)
    if body is None:
        return _redirect(request, project, Flash("warning", SKIP_REASON_MISSING))

    async def work() -> tuple[int, dict[str, Any]]:
        await changes.change_to_skip(session, assignment_id, rater, body)
        return 200, {}

    return await _skip_or_flag_once(
        request, project, session, rater, form, body, work, WITHDRAWN_MESSAGE
    )
