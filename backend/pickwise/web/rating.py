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
from typing import Any

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
from pickwise.core.db import SessionDep
from pickwise.core.errors import InvalidInput
from pickwise.judgments import idempotency
from pickwise.judgments import service as judgments
from pickwise.judgments.patterns import MAX_JUDGMENTS, rater_choice_patterns
from pickwise.judgments.schemas import FlagIn, JudgmentIn, SkipIn
from pickwise.models import Project, User
from pickwise.pools.quota import quota_state
from pickwise.projects.deps import RaterProject
from pickwise.vocabulary import RationaleMode, ShownChoice, ShownCriterionChoice
from pickwise.web.markdown import render_markdown
from pickwise.web.templating import render

router = APIRouter(prefix="/rate", include_in_schema=False)

FLASH_COOKIE = "pickwise_flash"
FLASH_SECONDS = 120
FLASH_KINDS = ("info", "warning", "feedback")
ROLE_LABELS = {"user": "User", "assistant": "Assistant", "system": "System"}
FIELD_PROBLEMS = {
    "choice": "Choose one of the answer buttons.",
    "rationale": "The reason is too long; keep it under 20,000 characters.",
}
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
    today: int  # judgments by this rater in this project since midnight UTC
    total: int  # all judgments by this rater in this project
    needed: int  # judgments the project still needs from anyone


@dataclass(frozen=True)
class FormValues:
    """What the rater had entered, shown again when a choice is refused."""

    strength: str = ""
    rationale: str = ""
    criteria: tuple[str, ...] = ()


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


async def _progress(session: AsyncSession, project: Project, rater: User) -> Progress:
    midnight = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    counts = await assignments_repository.rater_counts(session, project.id, rater.id, midnight)
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


async def _pair_page(
    request: Request,
    principal: Principal,
    project: Project,
    session: AsyncSession,
    lease: assignments.Lease,
    *,
    values: FormValues | None = None,
    error: str | None = None,
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
    context = {
        **_base_context(principal, project, await _progress(session, project, principal.user)),
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
    }
    return _page(request, project, "rate/pair.html", context, 422 if error else 200)


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
        raise InvalidInput(f"Pick how much better the {choice} answer is, then choose again.")
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
    """Runs a skip or flag once per form and goes back to the page."""
    answered = await _once(request, session, rater, form, body, work)
    if answered is None:
        return _redirect(request, project, Flash("warning", REUSED_FORM_MESSAGE))
    status, answer = answered
    if status >= 400:
        return _redirect(request, project, Flash("warning", str(answer["detail"])))
    return _redirect(request, project, Flash("info", f"{done_message} Here is the next pair."))


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
        progress = await _progress(session, project, rater)
        context = _base_context(principal, project, progress)
        return _page(request, project, "rate/start.html", context)
    quota = await quota_state(session, project.id, rater.id)
    if quota is not None and quota.reached:
        # A study participant who is done gets their completion code.
        done = request.app.url_path_for("participant_done", project_id=project.id)
        return RedirectResponse(done, status_code=303)
    progress = await _progress(session, project, rater)
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
    try:
        body = SkipIn(reason=_field(form, "reason"))
    except ValidationError:
        return _redirect(request, project, Flash("warning", "Pick a reason to skip the pair."))

    async def work() -> tuple[int, dict[str, Any]]:
        await judgments.skip(session, assignment_id, rater, body)
        return 200, {}

    return await _skip_or_flag_once(request, project, session, rater, form, body, work, "Skipped.")


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

    done = "Flagged for review; nobody will be shown this pair until an admin has looked."
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
    context = {
        **_base_context(principal, project, await _progress(session, project, principal.user)),
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
