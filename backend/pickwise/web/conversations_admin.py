"""The admin page of a project's live conversations: settings (which endpoints, sampling, turn
cap, openers, budget), requests and tokens spent per endpoint, turns per conversation and
where raters stop, and the chosen-path download."""

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from pickwise.auth.deps import PrincipalDep, get_admin_user
from pickwise.conversations import reports, repository, service
from pickwise.conversations.schemas import ConversationSettingsIn
from pickwise.core.clock import utcnow
from pickwise.core.deps import SessionDep
from pickwise.core.errors import PickwiseError
from pickwise.generation import service as generation_service
from pickwise.models import Project
from pickwise.projects.deps import AdminProject
from pickwise.vocabulary import OpenerSource, ProjectKind
from pickwise.web.forms import error_by_field, field_errors, redirect_to
from pickwise.web.templating import render

router = APIRouter(
    prefix="/admin/projects/{project_id}/conversations",
    include_in_schema=False,
    dependencies=[Depends(get_admin_user)],
)

LABELS = {
    "endpoint_ids": "Endpoints",
    "system_prompt": "System prompt",
    "turn_cap": "Turns per conversation",
    "opener_source": "First messages",
    "temperature": "Temperature",
    "top_p": "Top p",
    "max_tokens_per_reply": "Max tokens per reply",
    "replies_per_rater_per_day": "Replies per rater per day",
}
OPENER_LABELS = {
    OpenerSource.OWN: "Raters write their own",
    OpenerSource.IMPORTED: "Imported openers",
    OpenerSource.BOTH: "Both: raters choose",
}
OPTIONAL_NUMBERS = ("temperature", "top_p", "max_tokens_per_reply", "replies_per_rater_per_day")


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _submitted(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {
        "endpoint_ids": [
            int(v) for v in form.getlist("endpoint_ids") if isinstance(v, str) and v.isdigit()
        ],
        "system_prompt": _text(form, "system_prompt") or None,
        "turn_cap": _text(form, "turn_cap") or 5,
        "opener_source": _text(form, "opener_source") or OpenerSource.OWN,
    }
    for name in OPTIONAL_NUMBERS:
        values[name] = _text(form, name) or None
    return values


async def _values(session: AsyncSession, project: Project) -> dict[str, Any]:
    if project.kind != ProjectKind.CONVERSATIONS:
        return {"endpoint_ids": [], "turn_cap": 5, "opener_source": OpenerSource.OWN}
    return (await service.settings_read(session, project)).model_dump()


async def _render(
    request: Request,
    principal: Any,
    session: AsyncSession,
    project: Project,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    is_conversations = project.kind == ProjectKind.CONVERSATIONS
    context = {
        "principal": principal,
        "project": project,
        "is_conversations": is_conversations,
        "values": values or await _values(session, project),
        "errors": errors or {},
        "labels": LABELS,
        "opener_labels": OPENER_LABELS,
        "endpoints": await generation_service.list_endpoints(session, project),
        "openers": await repository.count_openers(session, project.id),
        "usage": await reports.endpoint_usage(session, project.id, utcnow()),
        "stats": await reports.conversation_stats(session, project.id),
        "saved": request.query_params.get("saved") == "1",
    }
    status = 422 if errors else 200
    return render(request, "admin/conversations.html", context, status_code=status)


@router.get("", response_class=HTMLResponse, name="admin_conversations")
async def conversations_page(
    request: Request, principal: PrincipalDep, project: AdminProject, session: SessionDep
) -> Response:
    return await _render(request, principal, session, project)


@router.post("", response_class=HTMLResponse, name="admin_conversations_save")
async def save_settings(
    request: Request, principal: PrincipalDep, project: AdminProject, session: SessionDep
) -> Response:
    values = _submitted(await request.form())
    try:
        data = ConversationSettingsIn.model_validate(values)
    except ValidationError as exc:
        return await _render(request, principal, session, project, values, field_errors(exc))
    try:
        async with session.begin_nested():
            await service.configure(session, project, data)
    except PickwiseError as exc:
        errors = error_by_field(exc, LABELS)
        return await _render(request, principal, session, project, values, errors)
    return redirect_to(request, "admin_conversations", {"saved": "1"}, project_id=project.id)
