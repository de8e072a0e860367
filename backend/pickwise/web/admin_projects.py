"""Admin pages of a project: create it, change its settings, manage its members, import
batches, review the pairs raters flagged.

A rejected form re-renders its page with the problems named per field. A successful POST
redirects (303) back with a fixed notice key in the query string (never free text).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from pickwise.assignments.repository import project_progress
from pickwise.auth.deps import AdminUser, PrincipalDep, get_admin_user
from pickwise.batches import repository as batches_repository
from pickwise.batches.parsing.report import LineError
from pickwise.batches.service import ImportRejected, import_stream, limits_from_settings
from pickwise.core.deps import SessionDep
from pickwise.core.errors import Conflict, InvalidInput, NotFound, PickwiseError
from pickwise.core.metrics import IMPORT_ROWS
from pickwise.generation.uploads import import_prompt_only
from pickwise.judgments import repository as judgments_repository
from pickwise.judgments import service as judgments_service
from pickwise.models import PairFlag, Project, User
from pickwise.projects import repository as projects_repository
from pickwise.projects import service as projects_service
from pickwise.projects.deps import AdminProject
from pickwise.projects.schemas import ProjectCreate, ProjectSettings, ProjectUpdate
from pickwise.users import repository as users_repository
from pickwise.web.forms import error_by_field, field_errors, form_text, redirect_to
from pickwise.web.templating import render

router = APIRouter(prefix="/admin", include_in_schema=False, dependencies=[Depends(get_admin_user)])

# The project form, in page order; the labels also name fields in error messages.
PROJECT_LABELS: dict[str, str] = {
    "name": "Name",
    "slug": "Slug",
    "description": "Description",
    "raters_per_pair": "Raters per pair",
    "lease_seconds": "Lease (seconds)",
    "allow_tie": "Allow “tie”",
    "allow_both_bad": "Allow “both bad”",
    "strength_scale": "Strength scale",
    "rationale_mode": "Rationale",
    "criteria": "Criteria",
    "guidelines_md": "Guidelines (Markdown)",
    "pairing_strategy": "Pairing strategy",
    "pairs_per_prompt": "Pairs per prompt",
    "pairing_seed": "Pairing seed",
    "pair_order": "Pair order",
    "gold_rate": "Gold rate",
    "gold_feedback": "Gold feedback",
    "summary_every": "Summary every N judgments",
    "overlap_mode": "Overlap",
    "overlap_min": "Minimum raters",
    "overlap_max": "Maximum raters",
    "overlap_rule": "Stopping rule",
    "overlap_stop_votes": "Votes of the leading choice (m)",
    "overlap_stop_share": "Share of the leading choice (s)",
    "overlap_stop_posterior": "Posterior of the leading choice",
    "undo_seconds": "Time to change a choice (seconds)",
}
CHECKBOXES = ("allow_tie", "allow_both_bad", "gold_feedback")
LABEL_LISTS = ("strength_scale", "criteria")
MULTILINE = ("description", "guidelines_md")

PROJECT_NOTICES = {
    "created": "Project created.",
    "settings": "Settings saved.",
    "member-added": "Member added.",
    "member-removed": "Member removed.",
    "member-excluded": "Member excluded from exports.",
    "member-included": "Member included in exports again.",
    "closed": "Project closed: every lease ended, and nothing more is collected.",
    "reopened": "Project open for rating again.",
    "flag-restored": "Pair restored to the queue.",
    "flag-removed": "Pair removed.",
}
MAX_FLAGS_SHOWN = 200
EXCERPT_CHARS = 240


def _project_values(project: Project | None) -> dict[str, Any]:
    """The project form's values as the inputs show them."""
    if project is None:
        values: dict[str, Any] = {"name": "", "slug": "", "description": ""}
        values.update(ProjectSettings().model_dump())
    else:
        values = {name: getattr(project, name) for name in PROJECT_LABELS}
    for name in LABEL_LISTS:
        values[name] = ", ".join(values[name])
    return values


# Settings a form may lack (one rendered before they existed, a script's POST): they keep
# their value, or take the default for a new project.
OPTIONAL_SETTINGS = ("pair_order", "undo_seconds")


def _submitted_project_values(form: FormData, project: Project | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in PROJECT_LABELS:
        if name in OPTIONAL_SETTINGS and name not in form:
            values[name] = _project_values(project)[name]
        elif name in CHECKBOXES:
            values[name] = name in form
        elif name in MULTILINE:
            values[name] = form_text(form, name).replace("\r\n", "\n")
        else:
            values[name] = form_text(form, name).strip()
    return values


def _project_input(values: dict[str, Any]) -> dict[str, Any]:
    data = dict(values)
    for name in LABEL_LISTS:
        data[name] = [label.strip() for label in values[name].split(",") if label.strip()]
    return data


@dataclass
class ProjectPage:
    """What one rendering of the project page shows besides the project itself."""

    settings_values: dict[str, Any] | None = None
    settings_errors: dict[str, str] = field(default_factory=dict)
    member_error: str | None = None
    import_error: str | None = None
    import_errors: Sequence[LineError] = ()
    import_error_count: int = 0
    notice: str | None = None
    imported_batch_id: str | None = None


@dataclass
class FlaggedPair:
    pair_id: int
    status: str
    excerpt: str
    flags: list[PairFlag]

    @property
    def first_flagged_at(self) -> datetime:
        return self.flags[0].created_at


def _excerpt(turns: list[Any]) -> str:
    user_turns = [t for t in turns if isinstance(t, dict) and t.get("role") == "user"]
    text = str(user_turns[-1].get("content", "")) if user_turns else ""
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS].rstrip() + "…"


async def _open_flags(session: AsyncSession, project_id: int) -> list[FlaggedPair]:
    by_pair: dict[int, FlaggedPair] = {}
    for flag, status, turns in await judgments_repository.open_flags(
        session, project_id, MAX_FLAGS_SHOWN
    ):
        pair = by_pair.get(flag.pair_id)
        if pair is None:
            pair = by_pair[flag.pair_id] = FlaggedPair(flag.pair_id, status, _excerpt(turns), [])
        pair.flags.append(flag)
    return list(by_pair.values())


async def _render_project(
    request: Request,
    principal: PrincipalDep,
    session: AsyncSession,
    project: Project,
    page: ProjectPage,
    status_code: int = 200,
) -> HTMLResponse:
    batches = await batches_repository.list_batches(session, project.id)
    users = await users_repository.list_all(session)
    members = await projects_repository.members(session, project.id)
    member_ids = {user.id for user, _ in members}
    return render(
        request,
        "admin/project.html",
        {
            "principal": principal,
            "project": project,
            "page": page,
            "progress": await project_progress(session, project.id),
            "values": page.settings_values or _project_values(project),
            "errors": page.settings_errors,
            "labels": PROJECT_LABELS,
            "members": members,
            "candidates": [u for u in users if u.id not in member_ids and u.is_active],
            "users_by_id": {user.id: user for user in users},
            "batches": batches,
            "imported": next((b for b in batches if str(b.id) == page.imported_batch_id), None),
            "flagged": await _open_flags(session, project.id),
            "max_flags_shown": MAX_FLAGS_SHOWN,
        },
        status_code=status_code,
    )


def _render_new_project(
    request: Request,
    principal: PrincipalDep,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "admin/project_new.html",
        {
            "principal": principal,
            "values": values,
            "errors": errors,
            "labels": PROJECT_LABELS,
        },
        status_code=status_code,
    )


@router.get("/projects/new", response_class=HTMLResponse, name="admin_new_project")
async def new_project_page(request: Request, principal: PrincipalDep) -> HTMLResponse:
    return _render_new_project(request, principal, _project_values(None), {})


@router.post("/projects", response_class=HTMLResponse, name="admin_create_project")
async def create_project(
    request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    values = _submitted_project_values(await request.form())
    try:
        data = ProjectCreate.model_validate(_project_input(values))
    except ValidationError as exc:
        return _render_new_project(request, principal, values, field_errors(exc), 422)
    try:
        project = await projects_service.create_project(session, data)
    except PickwiseError as exc:
        errors = error_by_field(exc, PROJECT_LABELS)
        return _render_new_project(request, principal, values, errors, exc.status_code)
    return redirect_to(request, "admin_project", {"done": "created"}, project_id=project.id)


@router.get("/projects/{project_id}", response_class=HTMLResponse, name="admin_project")
async def project_page(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    project: AdminProject,
    done: str | None = None,
    imported: str | None = None,
    unchanged: int | None = None,
) -> HTMLResponse:
    notice = PROJECT_NOTICES.get(done or "")
    if unchanged is not None:
        notice = (
            f"Nothing new: all {unchanged:,} prompts of the file are already in this project, "
            "unchanged; no batch was added."
        )
    page = ProjectPage(notice=notice, imported_batch_id=imported)
    return await _render_project(request, principal, session, project, page)


@router.post("/projects/{project_id}/settings", name="admin_project_settings")
async def update_settings(
    request: Request, principal: PrincipalDep, session: SessionDep, project: AdminProject
) -> Response:
    values = _submitted_project_values(await request.form(), project)
    values["slug"] = project.slug  # not editable: exports and API clients refer to it
    try:
        checked = ProjectCreate.model_validate(_project_input(values))
    except ValidationError as exc:
        page = ProjectPage(settings_values=values, settings_errors=field_errors(exc))
        return await _render_project(request, principal, session, project, page, 422)
    update = ProjectUpdate.model_validate(checked.model_dump(exclude={"slug"}))
    await projects_service.update_project(session, project, update)
    return redirect_to(request, "admin_project", {"done": "settings"}, project_id=project.id)


async def _user_to_add(session: AsyncSession, email: str, user_id: str) -> User:
    if email:
        user = await users_repository.get_by_email(session, email)
        if user is None:
            raise NotFound(
                f"No account uses {email}; create it or send an invite on the Users page."
            )
        return user
    if user_id.isdigit():
        picked = await users_repository.get(session, int(user_id))
        if picked is None:
            raise NotFound(f"user {user_id} does not exist")
        return picked
    raise InvalidInput("Pick a user from the list or type an email address.")


@router.post("/projects/{project_id}/members", name="admin_add_member")
async def add_member(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    project: AdminProject,
    email: Annotated[str, Form()] = "",
    user_id: Annotated[str, Form()] = "",
) -> Response:
    try:
        user = await _user_to_add(session, email.strip(), user_id)
    except PickwiseError as exc:
        page = ProjectPage(member_error=exc.detail)
        return await _render_project(request, principal, session, project, page, exc.status_code)
    await projects_service.add_member(session, project, user)
    return redirect_to(request, "admin_project", {"done": "member-added"}, project_id=project.id)


@router.post("/projects/{project_id}/members/{user_id}/remove", name="admin_remove_member")
async def remove_member(
    request: Request, session: SessionDep, project: AdminProject, user_id: int
) -> Response:
    await projects_service.remove_member(session, project, user_id)
    return redirect_to(request, "admin_project", {"done": "member-removed"}, project_id=project.id)


@router.post("/projects/{project_id}/members/{user_id}/exclude", name="admin_exclude_member")
async def exclude_member(
    request: Request, session: SessionDep, project: AdminProject, user_id: int
) -> Response:
    await projects_service.set_excluded(session, project, user_id, True)
    return redirect_to(request, "admin_project", {"done": "member-excluded"}, project_id=project.id)


@router.post("/projects/{project_id}/members/{user_id}/include", name="admin_include_member")
async def include_member(
    request: Request, session: SessionDep, project: AdminProject, user_id: int
) -> Response:
    await projects_service.set_excluded(session, project, user_id, False)
    return redirect_to(request, "admin_project", {"done": "member-included"}, project_id=project.id)


@router.post("/projects/{project_id}/closed", name="admin_close_project")
async def close_project(
    request: Request,
    session: SessionDep,
    project: AdminProject,
    closed: Annotated[bool, Form()],
) -> Response:
    await projects_service.update_project(session, project, ProjectUpdate(is_archived=closed))
    notice = "closed" if closed else "reopened"
    return redirect_to(request, "admin_project", {"done": notice}, project_id=project.id)


@router.post("/projects/{project_id}/flags/{pair_id}", name="admin_resolve_flag")
async def resolve_flag(
    request: Request,
    session: SessionDep,
    project: AdminProject,
    pair_id: int,
    resolution: Annotated[str, Form()],
) -> Response:
    await judgments_service.resolve_flags(session, project, pair_id, resolution)
    return redirect_to(
        request, "admin_project", {"done": f"flag-{resolution}"}, project_id=project.id
    )


@router.post("/projects/{project_id}/import", name="admin_import")
async def import_batch(
    request: Request,
    principal: PrincipalDep,
    admin: AdminUser,
    session: SessionDep,
    project: AdminProject,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    if file is None or not file.filename:
        page = ProjectPage(import_error="Choose a file to import.")
        return await _render_project(request, principal, session, project, page, 422)
    try:
        # A savepoint, because the rejection is caught here and the request still commits:
        # a file rejected half-way (e.g. a conflicting prompt id) must leave nothing behind.
        async with session.begin_nested():
            # Prompts without responses, for a project with chat endpoints: answered first.
            outcome = await import_prompt_only(
                session,
                project,
                file.file,
                filename=file.filename,
                source="web",
                user=admin,
                file_format=None,
                limits=limits_from_settings(),
            ) or await import_stream(
                session, project, file.file, filename=file.filename, source="web", user=admin
            )
    except ImportRejected as exc:
        page = ProjectPage(
            import_errors=exc.report.errors, import_error_count=exc.report.error_count
        )
        return await _render_project(request, principal, session, project, page, 422)
    except (InvalidInput, Conflict) as exc:
        # From answering prompts without responses: the endpoints' failures, per line.
        errors = exc.extra.get("errors")
        if errors:
            page = ProjectPage(import_errors=errors, import_error_count=exc.extra["error_count"])
        else:
            page = ProjectPage(import_error=exc.detail)
        return await _render_project(request, principal, session, project, page, 422)
    IMPORT_ROWS.inc(outcome.rows_new)
    if outcome.nothing_new:
        query: dict[str, Any] = {"unchanged": outcome.prompts_unchanged}
    else:
        query = {"imported": outcome.batch_id}
    return redirect_to(request, "admin_project", query, project_id=project.id)
