"""The rating page: one pair at a time, plain forms that work without JavaScript.

Every answer (a choice, a skip, a flag, or a change of the last one) is a POST whose response
is the rater's next pair, rendered directly: one request per judgment, no redirect. The
answer commits first; the next pair is leased afterwards in a transaction of its own, so a
lease that fails never undoes a stored answer. Each rendered form carries a fresh idempotency
key: a double submit, or a reload that sends the form again, answers with the stored answer
and the pair held since, and stores nothing new. The address bar shows the form's action;
rate.js replaces it with the rating page's own address, so a reload or a bookmark asks for
the current pair instead of sending the form again.

Every so many judgments (the milestone) the answer is the rater's summary instead, at its own
address the same way. No page sets a one-time message cookie any more; one that a version
before this one set (it lived two minutes) is still shown once and cleared.
"""

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo, available_timezones

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Template
from markupsafe import Markup, escape
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from pickwise.assignments import repository as assignments_repository
from pickwise.assignments import service as assignments
from pickwise.auth.deps import (
    CSRF_FIELD,
    Principal,
    PrincipalDep,
    may_act_on_get,
    principal_of,
    session_rater_in_project,
)
from pickwise.core.clock import utcnow
from pickwise.core.db import DriverSql, OpenUnit, Units, open_unit
from pickwise.core.deps import SessionDep, UnitsDep
from pickwise.core.errors import InvalidInput, NotAuthenticated, PickwiseError
from pickwise.judgments import changes, idempotency
from pickwise.judgments import service as judgments
from pickwise.judgments.patterns import MAX_JUDGMENTS, rater_choice_patterns
from pickwise.judgments.schemas import FlagIn, JudgmentIn, SkipIn
from pickwise.models import Project, User
from pickwise.pools.quota import quota_state
from pickwise.projects.deps import RaterProject, no_such_project, project_for_rater
from pickwise.vocabulary import (
    CanonicalSide,
    RationaleMode,
    ShownChoice,
    ShownCriterionChoice,
    SkipReason,
)
from pickwise.web.markdown import render_markdown
from pickwise.web.templating import render, templates, url_path

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/rate", include_in_schema=False)

FLASH_COOKIE = "pickwise_flash"  # read and cleared only (see the module docstring)
TIME_ZONE_COOKIE = "pickwise_tz"
FLASH_KINDS = ("info", "warning", "feedback")
ROLE_LABELS = {"user": "User", "assistant": "Assistant", "system": "System"}
FIELD_PROBLEMS = {
    "choice": "Choose one of the answer buttons.",
    "rationale": "The reason is too long; keep it under 20,000 characters.",
}
CHANGED_MESSAGE = "Changed: your choice on the previous pair is now this one. Here is your pair."
SKIP_REASON_MISSING = "Pick a reason to skip the pair."
FLAG_REASON_MISSING = "Pick a reason to flag the pair."
IDEMPOTENCY_FIELD = "idempotency_key"
WITHDRAWN_MESSAGE = (
    "Changed: you skipped the previous pair; another rater will judge it. Here is your pair."
)
REUSED_FORM_MESSAGE = (
    "That page had already been sent with another answer, so this one was not stored. "
    "Here is your current pair."
)
NEXT_FAILED_MESSAGE = (
    "Your answer is stored, but the next pair could not be shown just now. Reload the rating "
    "page to get it."
)
STORED_BEFORE_REFUSAL = "Your answer is stored."


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


# Where an answer is, in the words of the layout: "Left"/"Right" side by side, "Top"/"Bottom"
# when the answers are stacked on a narrow screen. Both words are in the page; rate.css shows
# the one that matches the layout, so a screen reader reads the same one. Made once: a macro
# in the template cost a call per use, ten uses per page.
def _side_word(wide: str, stacked: str) -> Markup:
    return Markup('<span class="side-wide">{}</span><span class="side-stacked">{}</span>').format(
        wide, stacked
    )


SIDE_WORDS = {"left": _side_word("Left", "Top"), "right": _side_word("Right", "Bottom")}
SIDE_WORDS_LOWER = {"left": _side_word("left", "top"), "right": _side_word("right", "bottom")}
# A criterion's options: the sides in the words above, a tie by its label.
CRITERION_LABELS = {
    side: SIDE_WORDS.get(side) or escape(side.label) for side in ShownCriterionChoice
}


# The parts of the pair page that are the same for every pair of a project (the strength
# options, the skip and flag reasons, the keyboard shortcuts): macros of PAIR_PARTS, each
# rendered once per set of arguments. A macro sees only its arguments and the environment's
# globals, so what it rendered for them stands; the template is part of the key, so an edited
# file (reloaded in development) renders anew. Bounded: a refused form's strength is the
# rater's own text.
PAIR_PARTS = "rate/_pair_parts.html"
KEPT_PARTS = 512


@lru_cache(maxsize=KEPT_PARTS)
def _pair_part(parts: Template, name: str, *args: Hashable) -> Markup:
    return Markup(getattr(parts.module, name)(*args))


def _pair_parts(project: Project, values: FormValues, editing: bool) -> dict[str, Markup]:
    parts = templates.env.get_template(PAIR_PARTS)
    scale = tuple(project.strength_scale)
    shortcuts = (
        scale,
        SIDE_WORDS["left"],
        SIDE_WORDS["right"],
        project.allow_tie,
        project.allow_both_bad,
        bool(project.criteria),
        str(project.rationale_mode),
        bool(project.undo_seconds),
        changes.window_words(project.undo_seconds),
        editing,
    )
    return {
        "strength_options": _pair_part(parts, "strength_options", scale, values.strength),
        "skip_reasons": _pair_part(parts, "skip_reasons", values.skip_reason),
        "flag_reasons": _pair_part(parts, "flag_reasons"),
        "shortcut_list": _pair_part(parts, "shortcut_list", *shortcuts),
    }


# --- one-time messages ------------------------------------------------------------------


def _rate_path(request: Request, project_id: int) -> str:
    return str(url_path(request, "rate_page", project_id=project_id))


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


def _redirect(request: Request, project: Project) -> Response:
    return RedirectResponse(_rate_path(request, project.id), status_code=303)


def _page(
    request: Request,
    project: Project,
    template: str,
    context: dict[str, Any],
    status: int = 200,
    flash: Flash | None = None,
    address: str | None = None,
) -> Response:
    """Renders a rating page with `flash`, or else any one-time message (using it up).
    `address`: the page's own URL (the rating page's unless said)."""
    flash = flash or _read_flash(request)
    # The answer to a form shows a page of its own: rate.js puts that page's address in the
    # address bar, so a reload asks for it instead of sending the form again.
    page_url = (address or _rate_path(request, project.id)) if request.method == "POST" else None
    # The page the rater is on, for the links' aria-current: that address without its query.
    page_path = page_url.partition("?")[0] if page_url else None
    context = {**context, "flash": flash, "page_url": page_url, "page_path": page_path}
    response = render(request, template, context, status_code=status)
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


@dataclass(frozen=True)
class Judged:
    """A rater's judgments in a project: all of them, and those of their today."""

    total: int
    today: int

    def plus(self, stored_now: bool) -> "Judged":
        return Judged(self.total + 1, self.today + 1) if stored_now else self


async def _judged(
    request: Request, session: AsyncSession, project_id: int, rater_id: int
) -> Judged:
    since = _start_of_day(request)
    counts = await assignments_repository.rater_counts(session, project_id, rater_id, since)
    return Judged(counts["total"], counts["today"])


async def _progress_of(session: AsyncSession, project_id: int, judged: Judged) -> Progress:
    return Progress(judged.today, judged.total, await _judgments_needed(session, project_id))


async def _progress(
    request: Request, session: AsyncSession, project: Project, rater: User
) -> Progress:
    judged = await _judged(request, session, project.id, rater.id)
    return await _progress_of(session, project.id, judged)


# "Still needed in this project" counts the project's open slots: every one of them, in a big
# project hundreds of thousands of index entries, on every page after every judgment. It is a
# figure to show, not to act on, so each worker keeps it for a few seconds.
NEEDED_SECONDS = 5.0
_needed_seen: dict[int, tuple[float, int]] = {}  # project id: (when counted, count)
# One count at a time per project and worker. Without it, every page rendered while a count
# ran (~100 ms of Postgres CPU in the bench's project of 60,000 slots) counted too: 16 raters
# made ~12 counts each time the figure expired, 6.5 ms of Postgres CPU per judgment of the
# page loop, twice the API loop's whole cost. Locks per event loop (tests run several).
_needed_counting: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


async def _judgments_needed(session: AsyncSession, project_id: int) -> int:
    seen = _needed_seen.get(project_id)
    if seen is not None and time.monotonic() - seen[0] < NEEDED_SECONDS:
        return seen[1]
    locks = _needed_counting.setdefault(asyncio.get_running_loop(), {})
    counting = locks.setdefault(project_id, asyncio.Lock())
    if seen is not None and counting.locked():
        return seen[1]  # a few hundred ms older than the count under way: as good to show
    async with counting:
        seen = _needed_seen.get(project_id)
        if seen is not None and time.monotonic() - seen[0] < NEEDED_SECONDS:
            return seen[1]  # counted while this page waited
        needed = await assignments_repository.judgments_needed(session, project_id)
        _needed_seen[project_id] = (time.monotonic(), needed)
        return needed


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
    flash: Flash | None = None,
    progress: Progress | None = None,
    undo: bool | None = None,
) -> Response:
    """`progress` when already counted; `undo`: whether the last decision may be changed,
    when already known (else it is read)."""
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
    progress = progress or await _progress(request, session, project, principal.user)
    if editing:
        undo_url = None
    elif undo is None:
        undo_url = await _undo_url(request, session, project, principal)
    else:
        undo_url = str(url_path(request, "rate_change", project_id=project.id)) if undo else None
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
        "choice_action": url_path(
            request,
            "rate_change_judgment" if editing else "rate_submit",
            project_id=project.id,
            assignment_id=lease.assignment_id,
        ),
        "skip_action": url_path(
            request,
            "rate_change_skip" if editing else "rate_skip",
            project_id=project.id,
            assignment_id=lease.assignment_id,
        ),
        "editing": editing,
        "undo_url": undo_url,
        "undo_window": changes.window_words(project.undo_seconds),
        "side_words": SIDE_WORDS,
        "side_words_lower": SIDE_WORDS_LOWER,
        "criterion_labels": CRITERION_LABELS,
        **_pair_parts(project, values, editing is not None),
    }
    # A change refused (no strength, say) is still the change page.
    address = str(url_path(request, "rate_change", project_id=project.id))
    status = 422 if error else 200
    return _page(
        request, project, "rate/pair.html", context, status, flash, address if editing else None
    )


async def _undo_url(
    request: Request, session: AsyncSession, project: Project, principal: Principal
) -> str | None:
    """The link (and the u key) to change the rater's last decision, while they may."""
    if await changes.changeable(session, project, principal.user) is None:
        return None
    return str(url_path(request, "rate_change", project_id=project.id))


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


async def _current_page(
    request: Request,
    principal: Principal,
    project: Project,
    session: AsyncSession,
    *,
    may_lease: bool = True,
    flash: Flash | None = None,
    values: FormValues | None = None,
    error: str | None = None,
    progress: Progress | None = None,
    undo: bool | None = None,
    reserved_id: int | None = None,
) -> Response:
    """The rater's pair (a new one leased when they hold none and `may_lease`), with `error`
    and their entries when a choice was refused; else what stands for it: the start page,
    a study participant's completion page, or "no work left". `reserved_id`: an assignment id
    taken by the choice just committed, for the new lease (`next_lease`)."""
    rater = principal.user
    lease = await assignments.next_lease(
        session, project, rater, new=may_lease, reserved_id=reserved_id
    )
    if lease is not None:
        return await _pair_page(
            request,
            principal,
            project,
            session,
            lease,
            values=values,
            error=error,
            flash=flash,
            progress=progress,
            undo=undo,
        )
    flash = flash or (Flash("warning", error) if error else None)
    progress = progress or await _progress(request, session, project, rater)
    context = _base_context(principal, project, progress)
    if not may_lease:
        return _page(request, project, "rate/start.html", context, flash=flash)
    quota = await quota_state(session, project.id, rater.id)
    if quota is not None and quota.reached:
        # A study participant who is done gets their completion code.
        done = url_path(request, "participant_done", project_id=project.id)
        return RedirectResponse(done, status_code=303)
    return _page(request, project, "rate/no_work.html", context, flash=flash)


@dataclass(frozen=True)
class Answering:
    """A rating form's POST: who sends it, to which project, their judgments there before
    this answer, and the unit of work that stores the answer; the route commits it
    (`_after_answer`) before the next pair is leased. `claim`: the form's idempotency key,
    claimed with the answer's locks in the round trip of who asks (`answering_with_claim`);
    None when it was not (the route claims it in `_once`). `fingerprint`: the form's
    `_form_fingerprint` when already made for the claim (`_once` needs it again; a JSON dump
    and a SHA-256 of the form, ~45 µs a choice)."""

    principal: Principal
    project: Project
    judged: Judged
    unit: OpenUnit
    # The units the route goes on in after `unit` (the next lease): carried, not declared by
    # the route, so FastAPI solves fewer dependencies (see `answering`).
    units: Units
    claim: judgments.ClaimedWithLocks | None = None
    fingerprint: str | None = None


async def _rater_in_project(
    project_id: int,
    request: Request,
    session: AsyncSession,
    calls: Sequence[tuple[DriverSql, dict[str, Any]]] = (),
) -> tuple[Principal, Project, Judged, list[list[tuple[Any, ...]]] | None]:
    """Who asks (CSRF checked for a POST), their project and their judgments in it: for a
    browser's login cookie, in one statement, with the rows of `calls` sent in its round trip
    (None: they were not sent, as for an API token)."""
    since = _start_of_day(request)
    found = await session_rater_in_project(request, session, project_id, since, calls)
    if found is not None:
        by_cookie, seen, answers = found
        if seen.project is None:
            raise no_such_project(project_id)
        return by_cookie, seen.project, Judged(seen.judged, seen.judged_since), answers
    # An API token (or no valid login, refused here).
    principal = await principal_of(request, session)
    if principal is None:
        raise NotAuthenticated()
    project = await project_for_rater(project_id, session, principal.user)
    judged = await _judged(request, session, project.id, principal.user.id)
    return principal, project, judged, None


async def answering(project_id: int, request: Request, units: UnitsDep) -> AsyncIterator[Answering]:
    """A rating form's POST, found in the answer's own unit of work, which this opens.

    One dependency that opens the unit and carries the units, not the unit, who asks and the
    units each declared: FastAPI solves every declared dependency and its sub-dependencies on
    every request, cached or not (~25 µs each; the choice, skip and flag routes had four, now
    two: this and `get_units`, which tests override), as the API's answer routes
    (judgments.deps, docs/benchmarks.md "i33b", "i33d")."""
    # An error in the route before `done` rolls the unit back, as for `SessionDep`.
    async with open_unit(units) as unit:
        yield await _answering_in(project_id, request, unit, units)


async def _answering_in(
    project_id: int, request: Request, unit: OpenUnit, units: Units
) -> Answering:
    principal, project, judged, _ = await _rater_in_project(project_id, request, unit.session)
    return Answering(principal, project, judged, unit, units)


async def answering_with_claim(
    project_id: int, assignment_id: int, request: Request, units: UnitsDep
) -> AsyncIterator[Answering]:
    """`answering` for a choice, skip or flag on the assignment: the form's idempotency key is
    claimed, and the answer's locks taken if that took effect, in the round trip that finds
    who asks (a replay locks nothing; a forged form claims nothing). The claim needs what the
    form sent (`_form_fingerprint`), so the form is read first."""
    form = await request.form()
    key = _field(form, IDEMPOTENCY_FIELD)
    async with open_unit(units) as unit:
        if not idempotency.valid_key(key):
            yield await _answering_in(project_id, request, unit, units)
            return
        fingerprint = _form_fingerprint(request, form)
        calls = judgments.session_claim_and_lock_calls(key, fingerprint, assignment_id)
        principal, project, judged, answers = await _rater_in_project(
            project_id, request, unit.session, calls
        )
        session = unit.session
        claim = None if answers is None else judgments.claimed_with_locks_of(session, answers)
        yield Answering(principal, project, judged, unit, units, claim, fingerprint)


# scope="function": the unit commits (or rolls back) before the response is sent.
AnsweringDep = Annotated[Answering, Depends(answering, scope="function")]
AnsweringWithClaimDep = Annotated[Answering, Depends(answering_with_claim, scope="function")]


@dataclass(frozen=True)
class Visit:
    """A rating page's GET: who asks, their project and their judgments in it. The rating
    page and the summary come every so many judgments (the milestone): one statement."""

    principal: Principal
    project: Project
    judged: Judged

    async def progress(self, session: AsyncSession) -> Progress:
        return await _progress_of(session, self.project.id, self.judged)


async def visiting(project_id: int, request: Request, session: SessionDep) -> Visit:
    principal, project, judged, _ = await _rater_in_project(project_id, request, session)
    return Visit(principal, project, judged)


VisitDep = Annotated[Visit, Depends(visiting)]


async def _after_answer(
    request: Request,
    answer: Answering,
    flash: Flash,
    *,
    stored: bool,
    judged: Judged | None = None,
    undo: bool | None = None,
    milestone: bool = False,
    reserved_id: int | None = None,
) -> Response:
    """Commits the answer, then shows the rater's next pair in the same response, leased in
    a unit of its own. That lease may fail (the project closed meanwhile); the answer stands
    and the page says so. `judged`: the rater's judgments after this answer, when the route
    knows them (else they are counted). With `milestone` (a judgment; needs `judged`), every
    `summary_every` judgments the rater's summary comes instead. `undo`: see `_pair_page`.
    `reserved_id`: the next assignment's id, taken by the choice's own statement: the next
    lease then commits in its claim's round trip, without waiting for the WAL flush, as the
    API's `?next=true` does (assignments.service.next_lease)."""
    next_unit = await answer.unit.done_then(answer.units)
    principal, project = answer.principal, answer.project
    project_id = project.id  # a rollback may expire the object
    try:
        async with next_unit as session:
            progress = None
            if judged is not None:
                # Counted as the form came in, plus what it stored: "done today" and the
                # milestones without another count per page. (Two tabs answering at once may
                # show a count one short until the next page.)
                progress = await _progress_of(session, project.id, judged)
                total = progress.total
                if milestone and project.summary_every and total % project.summary_every == 0:
                    return await _milestone_summary(
                        request, principal, project, session, flash, progress
                    )
            return await _current_page(
                request,
                principal,
                project,
                session,
                flash=flash,
                progress=progress,
                undo=undo,
                reserved_id=reserved_id,
            )
    except PickwiseError as exc:
        detail = f"{STORED_BEFORE_REFUSAL} {exc.detail}" if stored else exc.detail
        return _error_page(request, exc.status_code, detail, type(exc).__name__)
    except Exception:
        if not stored:
            raise
        logger.exception("the next pair after an answer on project %s failed", project_id)
        return _error_page(request, 503, NEXT_FAILED_MESSAGE, "NextPairFailed")


async def _milestone_summary(
    request: Request,
    principal: Principal,
    project: Project,
    session: AsyncSession,
    flash: Flash,
    progress: Progress,
) -> Response:
    """Every so many judgments, the rater's own patterns instead of the next pair: the
    choice's answer is the summary page itself, shown at its own address
    (`…/summary?after=N`, which rate.js puts in the address bar). It used to be a redirect to
    that address: a third request per milestone, finding who asks again."""
    if flash.kind == "info":
        flash = Flash("info", "Saved.")
    return await _summary(request, principal, project, session, progress, progress.total, flash)


async def _summary(
    request: Request,
    principal: Principal,
    project: Project,
    session: AsyncSession,
    progress: Progress,
    after: int | None,
    flash: Flash | None = None,
) -> Response:
    """The summary page; `after`: the judgments it comes after, at a milestone."""
    patterns = await rater_choice_patterns(session, project.id, principal.user.id)
    context = {
        **_base_context(principal, project, progress),
        "patterns": patterns,
        "max_judgments": MAX_JUDGMENTS,
        "milestone": after is not None,
    }
    address = str(url_path(request, "rate_summary", project_id=project.id))
    if after is not None:
        address = f"{address}?after={after}"
    return _page(request, project, "rate/summary.html", context, flash=flash, address=address)


def _error_page(request: Request, status: int, detail: str, error: str) -> Response:
    context = {"status_code": status, "detail": detail, "error": error}
    response = render(request, "error.html", context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


# A form's answer, given the lease's locks when they were taken with its key's claim.
FormWork = Callable[[judgments.LeaseLocks | None], Awaitable[tuple[int, dict[str, Any]]]]


def _form_fingerprint(request: Request, form: FormData) -> str:
    """What a rating form sent, as its idempotency key's request hash: every field but the
    CSRF token and the key itself, with the form's action. A form sent again (a double
    submit, a reload) sends the same; the same form sent with another answer does not."""
    fields = sorted(
        (name, value)
        for name, value in form.multi_items()
        if isinstance(value, str) and name not in (CSRF_FIELD, IDEMPOTENCY_FIELD)
    )
    canonical = json.dumps([request.url.path, fields])
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _once(
    request: Request,
    answer: Answering,
    form: FormData,
    work: FormWork,
    *,
    locking: int | None = None,
    written_by_work: judgments.KeyedAnswer | None = None,
) -> tuple[int, dict[str, Any]] | None:
    """Runs `work` once per rendered form (its idempotency key): the first answer again for a
    double submit; None when the form was already sent with another answer. `locking`: the
    assignment a submit, skip or flag answers, whose locks go out with the key's claim (taken
    already when `answer.claim` is). `written_by_work`: see `idempotency.run_once`."""
    session, rater = answer.unit.session, answer.principal.user
    fingerprint = answer.fingerprint or _form_fingerprint(request, form)
    key = _field(form, IDEMPOTENCY_FIELD) or None
    claim = answer.claim
    try:
        if claim is None and locking is not None:
            return await idempotency.run_once_locking(
                session, rater, key, fingerprint, locking, work, written_by_work=written_by_work
            )
        locks = None if claim is None else claim.locks
        return await idempotency.run_once(
            session,
            rater,
            key,
            fingerprint,
            lambda: work(locks),
            claimed=None if claim is None else claim.claimed,
            written_by_work=written_by_work,
        )
    except InvalidInput:
        return None


async def _refused(answer: Answering, form: FormData) -> None:
    """A form refused before its work ran (no choice, no reason): its key, when claimed
    already, is given back (`idempotency.release_claim`)."""
    if answer.claim is not None and answer.claim.claimed:
        key = _field(form, IDEMPOTENCY_FIELD)
        await idempotency.release_claim(answer.unit.session, answer.principal.user, key)


async def _skip_or_flag_once(
    request: Request,
    answer: Answering,
    form: FormData,
    work: FormWork,
    done_message: str,
    *,
    judged: Judged | None,
    locking: int | None = None,
) -> Response:
    """Runs a skip or flag (or a change into a skip) once per form, then shows the next pair.
    `judged`: the rater's judgments after it, when known (see `_after_answer`); `locking`:
    see `_once`."""
    answered = await _once(request, answer, form, work, locking=locking)
    if answered is None:
        flash = Flash("warning", REUSED_FORM_MESSAGE)
        return await _after_answer(request, answer, flash, stored=False, judged=judged)
    status, result = answered
    if status >= 400:
        flash = Flash("warning", str(result["detail"]))
        return await _after_answer(request, answer, flash, stored=False, judged=judged)
    flash = Flash("info", done_message)
    return await _after_answer(request, answer, flash, stored=True, judged=judged)


def _skip_from_form(form: FormData) -> SkipIn | None:
    try:
        return SkipIn(reason=_field(form, "reason"))
    except ValidationError:
        return None


# --- routes -----------------------------------------------------------------------------


@router.get("/{project_id}", response_class=HTMLResponse, name="rate_page")
async def rate_page(request: Request, visit: VisitDep, session: SessionDep) -> Response:
    """The rater's pair. A new one is leased only for a request from this site; one that
    came from another site's link shows a button that asks for it (a POST, CSRF-checked)."""
    principal, project = visit.principal, visit.project
    may_lease = may_act_on_get(request, principal)
    progress = await visit.progress(session)
    return await _current_page(
        request, principal, project, session, may_lease=may_lease, progress=progress
    )


@router.post("/{project_id}/next", name="rate_next")
async def next_pair(
    request: Request, principal: PrincipalDep, project: RaterProject, session: SessionDep
) -> Response:
    """Lease a pair (the start page's button), then show it."""
    await assignments.next_lease(session, project, principal.user)
    return _redirect(request, project)


@router.post("/{project_id}/assignments/{assignment_id}/judgment", name="rate_submit")
async def submit_judgment(
    request: Request, assignment_id: int, answer: AnsweringWithClaimDep
) -> Response:
    principal, project, session = answer.principal, answer.project, answer.unit.session
    rater = principal.user
    form = await request.form()
    values = form_values(form, project)
    try:
        body = judgment_from_form(values, _field(form, "choice"), project)
    except InvalidInput as exc:
        await _refused(answer, form)
        return await _current_page(
            request, principal, project, session, values=values, error=exc.detail
        )

    made_now = False
    reserved_id: int | None = None
    key = _field(form, IDEMPOTENCY_FIELD)
    keyed = judgments.KeyedAnswer(rater.id, key, _choice_answer) if key else None

    async def work(locks: judgments.LeaseLocks | None) -> tuple[int, dict[str, Any]]:
        nonlocal made_now, reserved_id
        stored = await judgments.submit(
            session, assignment_id, rater, body, locks=locks, answer=keyed, reserve_next=True
        )
        made_now = True
        reserved_id = stored.next_assignment_id
        return 201, _choice_answer(stored)

    answered = await _once(
        request, answer, form, work, locking=assignment_id, written_by_work=keyed
    )
    if answered is None:
        flash = Flash("warning", REUSED_FORM_MESSAGE)
        return await _after_answer(request, answer, flash, stored=False)
    status, result = answered
    if status == 422:
        return await _current_page(
            request, principal, project, session, values=values, error=result["detail"]
        )
    if status >= 400:
        # Late (409) or no longer this rater's pair: say so, and show the next pair.
        flash = Flash("warning", str(result["detail"]))
        return await _after_answer(request, answer, flash, stored=False)
    gold_feedback = result.get("gold_feedback")
    if gold_feedback:
        flash = Flash("feedback", str(gold_feedback))
    else:
        flash = Flash("info", "Saved. Here is the next pair.")
    # A choice stored just now (not a replay) is the rater's last decision, in its window.
    undo = changes.changeable_just_made(project, bool(gold_feedback)) if made_now else None
    judged = answer.judged.plus(made_now)
    return await _after_answer(
        request,
        answer,
        flash,
        stored=True,
        judged=judged,
        undo=undo,
        milestone=True,
        reserved_id=reserved_id,
    )


def _choice_answer(stored: judgments.StoredJudgment) -> dict[str, Any]:
    """A choice's answer, kept under its form's key for a form sent again."""
    return {"judgment_id": stored.judgment_id, "gold_feedback": stored.gold_feedback}


@router.post("/{project_id}/assignments/{assignment_id}/skip", name="rate_skip")
async def skip_pair(
    request: Request, assignment_id: int, answer: AnsweringWithClaimDep
) -> Response:
    rater, session = answer.principal.user, answer.unit.session
    form = await request.form()
    body = _skip_from_form(form)
    if body is None:
        await _refused(answer, form)
        return await _after_answer(
            request, answer, Flash("warning", SKIP_REASON_MISSING), stored=False
        )

    async def work(locks: judgments.LeaseLocks | None) -> tuple[int, dict[str, Any]]:
        await judgments.skip(session, assignment_id, rater, body, locks=locks)
        return 200, {}

    done = "Skipped. Here is the next pair."
    # A skip stores no judgment: the rater's count stands.
    return await _skip_or_flag_once(
        request, answer, form, work, done, judged=answer.judged, locking=assignment_id
    )


@router.post("/{project_id}/assignments/{assignment_id}/flag", name="rate_flag")
async def flag_pair(
    request: Request, assignment_id: int, answer: AnsweringWithClaimDep
) -> Response:
    rater, session = answer.principal.user, answer.unit.session
    form = await request.form()
    try:
        body = FlagIn(reason=_field(form, "reason"), note=_field(form, "note"))
    except ValidationError:
        await _refused(answer, form)
        flash = Flash("warning", FLAG_REASON_MISSING)
        return await _after_answer(request, answer, flash, stored=False)

    async def work(locks: judgments.LeaseLocks | None) -> tuple[int, dict[str, Any]]:
        await judgments.flag(session, assignment_id, rater, body, locks=locks)
        return 200, {}

    done = (
        "Flagged for review; nobody will be shown this pair until an admin has looked. "
        "Here is the next pair."
    )
    return await _skip_or_flag_once(
        request, answer, form, work, done, judged=answer.judged, locking=assignment_id
    )


@router.get("/{project_id}/summary", response_class=HTMLResponse, name="rate_summary")
async def summary_page(
    request: Request, visit: VisitDep, session: SessionDep, after: str | None = None
) -> Response:
    """What your choices teach: the rater's own patterns, visible to nobody else."""
    progress = await visit.progress(session)
    milestone = None if after is None else progress.total
    return await _summary(request, visit.principal, visit.project, session, progress, milestone)


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
async def change_judgment(request: Request, assignment_id: int, answer: AnsweringDep) -> Response:
    principal, project, session = answer.principal, answer.project, answer.unit.session
    rater = principal.user
    form = await request.form()
    values = form_values(form, project)
    try:
        body = judgment_from_form(values, _field(form, "choice"), project)
    except InvalidInput as exc:
        return await _change_page(
            request, principal, project, session, values=values, error=exc.detail
        )

    async def work(_locks: judgments.LeaseLocks | None) -> tuple[int, dict[str, Any]]:
        stored = await changes.change_judgment(session, assignment_id, rater, body)
        return 200, {"judgment_id": stored.judgment_id, "gold_feedback": stored.gold_feedback}

    answered = await _once(request, answer, form, work)
    if answered is None:
        flash = Flash("warning", REUSED_FORM_MESSAGE)
        return await _after_answer(request, answer, flash, stored=False)
    status, result = answered
    if status == 422:
        return await _change_page(
            request, principal, project, session, values=values, error=result["detail"]
        )
    if status >= 400:
        # Too late, or decided on another pair since: say so, and back to the current pair.
        flash = Flash("warning", str(result["detail"]))
        return await _after_answer(request, answer, flash, stored=False)
    if result.get("gold_feedback"):
        flash = Flash("feedback", str(result["gold_feedback"]))
    else:
        flash = Flash("info", CHANGED_MESSAGE)
    return await _after_answer(request, answer, flash, stored=True)


@router.post("/{project_id}/assignments/{assignment_id}/change-to-skip", name="rate_change_skip")
async def change_to_skip(request: Request, assignment_id: int, answer: AnsweringDep) -> Response:
    rater, session = answer.principal.user, answer.unit.session
    form = await request.form()
    body = _skip_from_form(form)
    if body is None:
        return await _after_answer(
            request, answer, Flash("warning", SKIP_REASON_MISSING), stored=False
        )

    async def work(_locks: judgments.LeaseLocks | None) -> tuple[int, dict[str, Any]]:
        await changes.change_to_skip(session, assignment_id, rater, body)
        return 200, {}

    # A judgment taken back is one fewer: counted afresh.
    return await _skip_or_flag_once(request, answer, form, work, WITHDRAWN_MESSAGE, judged=None)
