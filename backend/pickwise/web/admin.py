"""Admin pages: create and manage projects (settings, members, imports, flags) and users.

A rejected form re-renders its page with the problems named per field. A successful POST
redirects (303) back with a fixed notice key in the query string (never free text), except
the invite form, which renders the one-time link in its response.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from pickwise.assignments.service import project_progress
from pickwise.auth import service as auth_service
from pickwise.auth.deps import AdminUser, PrincipalDep, get_admin_user
from pickwise.auth.schemas import InviteCreate
from pickwise.batches import repository as batches_repository
from pickwise.batches.report import LineError
from pickwise.batches.service import ImportRejected, import_stream, limits_from_settings
from pickwise.core.db import SessionDep
from pickwise.core.errors import Conflict, InvalidInput, NotFound, PickwiseError
from pickwise.generation.uploads import import_prompt_only
from pickwise.judgments import service as judgments_service
from pickwise.models import Pair, PairFlag, Project, ProjectMember, Prompt, User
from pickwise.projects import repository as projects_repository
from pickwise.projects import service as projects_service
from pickwise.projects.deps import AdminProject
from pickwise.projects.schemas import ProjectCreate, ProjectSettings, ProjectUpdate
from pickwise.users import service as users_service
from pickwise.users.schemas import UserCreate
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
    "gold_rate": "Gold rate",
    "gold_feedback": "Gold feedback",
    "summary_every": "Summary every N judgments",
}
CHECKBOXES = ("allow_tie", "allow_both_bad", "gold_feedback")
LABEL_LISTS = ("strength_scale", "criteria")
MULTILINE = ("description", "guidelines_md")

USER_LABELS: dict[str, str] = {
    "email": "Email",
    "display_name": "Name",
    "role": "Role",
    "password": "Password",
    "project_ids": "Projects",
}
INVITE_LABELS: dict[str, str] = {
    "email": "Email",
    "role": "Role",
    "project_id": "Project",
    "valid_days": "Days valid",
}

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


# ---- form helpers (also used by the account pages) ----


def field_errors(exc: ValidationError) -> dict[str, str]:
    """The first problem per field, keyed by the field's name."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "form"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "string_pattern_mismatch" and name == "slug":
            message = "use lower-case letters, digits and dashes, starting with a letter or digit"
        errors.setdefault(name, message)
    return errors


def detail_errors(detail: str, fields: Sequence[str]) -> dict[str, str]:
    """Service errors read "field: problem"; anything else belongs to the whole form."""
    name, separator, message = detail.partition(": ")
    if separator and name in fields:
        return {name: message}
    return {"form": detail}


def redirect_to(
    request: Request, route: str, query: dict[str, Any] | None = None, **params: Any
) -> RedirectResponse:
    path = str(request.app.url_path_for(route, **{k: str(v) for k, v in params.items()}))
    if query:
        path += "?" + urlencode(query)
    return RedirectResponse(path, status_code=303)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


# ---- projects ----


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


def _submitted_project_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in PROJECT_LABELS:
        if name in CHECKBOXES:
            values[name] = name in form
        elif name in MULTILINE:
            values[name] = _text(form, name).replace("\r\n", "\n")
        else:
            values[name] = _text(form, name).strip()
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
    rows = await session.execute(
        select(PairFlag, Pair.status, Prompt.turns)
        .join(Pair, Pair.id == PairFlag.pair_id)
        .join(Prompt, Prompt.id == Pair.prompt_id)
        .where(PairFlag.project_id == project_id, PairFlag.resolution.is_(None))
        .order_by(PairFlag.pair_id, PairFlag.id)
        .limit(MAX_FLAGS_SHOWN)
    )
    by_pair: dict[int, FlaggedPair] = {}
    for flag, status, turns in rows:
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
    users = await users_service.list_users(session)
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
        errors = detail_errors(exc.detail, list(PROJECT_LABELS))
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
    values = _submitted_project_values(await request.form())
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
        user = await users_service.get_by_email(session, email)
        if user is None:
            raise NotFound(
                f"No account uses {email}; create it or send an invite on the Users page."
            )
        return user
    if user_id.isdigit():
        picked = await session.get(User, int(user_id))
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
    if outcome.nothing_new:
        query: dict[str, Any] = {"unchanged": outcome.prompts_unchanged}
    else:
        query = {"imported": outcome.batch_id}
    return redirect_to(request, "admin_project", query, project_id=project.id)


# ---- users and invites ----


@dataclass
class UsersPage:
    user_values: dict[str, Any] = field(
        default_factory=lambda: {
            "email": "",
            "display_name": "",
            "role": "rater",
            "project_ids": [],
        }
    )
    user_errors: dict[str, str] = field(default_factory=dict)
    invite_values: dict[str, Any] = field(
        default_factory=lambda: {"email": "", "role": "rater", "project_id": "", "valid_days": "7"}
    )
    invite_errors: dict[str, str] = field(default_factory=dict)
    invite_url: str | None = None
    invite_email: str | None = None
    invite_expires_at: datetime | None = None
    created_user_id: str | None = None


async def _projects_by_user(session: AsyncSession) -> dict[int, list[Project]]:
    rows = await session.execute(
        select(ProjectMember.user_id, Project)
        .join(Project, Project.id == ProjectMember.project_id)
        .order_by(Project.id)
    )
    by_user: dict[int, list[Project]] = {}
    for user_id, project in rows:
        by_user.setdefault(user_id, []).append(project)
    return by_user


async def _render_users(
    request: Request,
    principal: PrincipalDep,
    session: AsyncSession,
    page: UsersPage,
    status_code: int = 200,
) -> HTMLResponse:
    users = await users_service.list_users(session)
    return render(
        request,
        "admin/users.html",
        {
            "principal": principal,
            "page": page,
            "users": users,
            "created": next((u for u in users if str(u.id) == page.created_user_id), None),
            "projects_by_user": await _projects_by_user(session),
            "projects": await projects_repository.list_all(session),
            "user_labels": USER_LABELS,
            "invite_labels": INVITE_LABELS,
        },
        status_code=status_code,
    )


@router.get("/users", response_class=HTMLResponse, name="admin_users")
async def users_page(
    request: Request, principal: PrincipalDep, session: SessionDep, created: str | None = None
) -> HTMLResponse:
    return await _render_users(request, principal, session, UsersPage(created_user_id=created))


@router.post("/users", response_class=HTMLResponse, name="admin_create_user")
async def create_user(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    form = await request.form()
    values: dict[str, Any] = {
        "email": _text(form, "email").strip(),
        "display_name": _text(form, "display_name").strip(),
        "role": _text(form, "role"),
        "project_ids": [v for v in form.getlist("project_ids") if isinstance(v, str)],
    }
    page = UsersPage(user_values=values)
    try:
        data = UserCreate.model_validate({**values, "password": _text(form, "password")})
    except ValidationError as exc:
        page.user_errors = field_errors(exc)
        return await _render_users(request, principal, session, page, 422)
    projects = {project.id: project for project in await projects_repository.list_all(session)}
    if any(project_id not in projects for project_id in data.project_ids):
        page.user_errors = {"project_ids": "one of the projects no longer exists"}
        return await _render_users(request, principal, session, page, 422)
    try:
        user = await users_service.create_user(
            session,
            email=data.email,
            display_name=data.display_name,
            role=data.role,
            password=data.password,
        )
    except PickwiseError as exc:
        page.user_errors = detail_errors(exc.detail, list(USER_LABELS))
        return await _render_users(request, principal, session, page, exc.status_code)
    for project_id in data.project_ids:
        await projects_service.add_member(session, projects[project_id], user)
    return redirect_to(request, "admin_users", {"created": user.id})


@router.post("/users/{user_id}/active", name="admin_set_active")
async def set_active(
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    user_id: int,
    active: Annotated[bool, Form()],
) -> Response:
    """Deactivating ends the account's leases at once; reactivating lets it log in again."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    if user.id == admin.id:
        raise Conflict("You cannot deactivate your own account.")
    await users_service.set_active(session, user, active)
    return redirect_to(request, "admin_users")


@router.post("/users/invites", response_class=HTMLResponse, name="admin_create_invite")
async def create_invite(
    request: Request, principal: PrincipalDep, admin: AdminUser, session: SessionDep
) -> Response:
    form = await request.form()
    values = {name: _text(form, name).strip() for name in INVITE_LABELS}
    page = UsersPage(invite_values=values)
    try:
        data = InviteCreate.model_validate({**values, "project_id": values["project_id"] or None})
    except ValidationError as exc:
        page.invite_errors = field_errors(exc)
        return await _render_users(request, principal, session, page, 422)
    if (
        data.project_id is not None
        and await projects_repository.get(session, data.project_id) is None
    ):
        page.invite_errors = {"project_id": "this project no longer exists"}
        return await _render_users(request, principal, session, page, 422)
    if await users_service.get_by_email(session, data.email) is not None:
        page.invite_errors = {"email": f"an account for {data.email} already exists"}
        return await _render_users(request, principal, session, page, 409)
    token, invite = await auth_service.create_invite(
        session,
        admin=admin,
        email=data.email,
        role=data.role,
        project_id=data.project_id,
        valid_days=data.valid_days,
    )
    # Shown once, on this response only: the database keeps just the token's hash.
    page = UsersPage(
        invite_url=str(request.url_for("invite_page", token=token)),
        invite_email=invite.email,
        invite_expires_at=invite.expires_at,
    )
    return await _render_users(request, principal, session, page)
