"""Admin page of a project's integrations: study links (rater pools), webhooks, chat endpoints.

Secrets (a new study link, a webhook's signing secret) are shown once, in the answer to the
form that made them; everything else redirects back to the page.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from pickwise.auth.deps import AdminUser, PrincipalDep
from pickwise.core.deps import SessionDep
from pickwise.core.errors import PickwiseError
from pickwise.generation import service as generation_service
from pickwise.generation.schemas import EndpointCreate, EndpointUpdate
from pickwise.models import Project
from pickwise.pools import repository as pools_repository
from pickwise.pools import service as pools_service
from pickwise.pools.router import pool_link
from pickwise.pools.schemas import PoolCreate, PoolRead, PoolUpdate
from pickwise.projects.deps import AdminProject
from pickwise.vocabulary import WebhookEvent
from pickwise.web.forms import problems
from pickwise.web.templating import render
from pickwise.webhooks import repository as webhooks_repository
from pickwise.webhooks import service as webhooks_service
from pickwise.webhooks.schemas import WebhookCreate, WebhookUpdate

router = APIRouter(prefix="/admin/projects/{project_id}/integrations", include_in_schema=False)

FormText = Annotated[str, Form()]


def _blank_none(value: str) -> str | None:
    return value.strip() or None


async def _page(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    project: Project,
    *,
    shown_once: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    pools = [
        PoolRead.model_validate(pool).model_copy(
            update={"participants": participants, "completed": completed}
        )
        for pool, participants, completed in await pools_repository.list_pools(session, project.id)
    ]
    return render(
        request,
        "admin/integrations.html",
        {
            "principal": principal,
            "project": project,
            "pools": pools,
            "webhooks": await webhooks_service.list_webhooks(session, project),
            "delivery_counts": await webhooks_repository.delivery_counts(session, project.id),
            "endpoints": await generation_service.list_endpoints(session, project),
            "events": list(WebhookEvent),
            "shown_once": shown_once,
            "error": error,
        },
        status_code=status_code,
    )


def _back(request: Request, project: Project) -> RedirectResponse:
    return RedirectResponse(
        request.url_for("integrations_page", project_id=project.id).path, status_code=303
    )


@router.get("", response_class=HTMLResponse, name="integrations_page")
async def integrations_page(
    request: Request, principal: PrincipalDep, session: SessionDep, project: AdminProject
) -> Response:
    return await _page(request, principal, session, project)


@router.post("/pools", response_class=HTMLResponse, name="integrations_create_pool")
async def create_pool(
    request: Request,
    principal: PrincipalDep,
    admin: AdminUser,
    session: SessionDep,
    project: AdminProject,
    name: FormText,
    quota: FormText,
    completion_code: FormText = "",
    completion_url: FormText = "",
    max_participants: FormText = "",
) -> Response:
    try:
        data = PoolCreate.model_validate(
            {
                "name": name,
                "quota": quota,
                "completion_code": completion_code,
                "completion_url": completion_url,
                "max_participants": _blank_none(max_participants),
            }
        )
    except ValidationError as exc:
        return await _page(
            request, principal, session, project, error="; ".join(problems(exc)), status_code=422
        )
    token, pool = await pools_service.create_pool(session, project, data, admin)
    link = pool_link(request, PoolRead.model_validate(pool), token)
    return await _page(
        request, principal, session, project, shown_once={"kind": "link", "link": link}
    )


@router.post(
    "/pools/{pool_id}/rotate", response_class=HTMLResponse, name="integrations_rotate_pool_link"
)
async def rotate_pool_link(
    pool_id: int,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    project: AdminProject,
) -> Response:
    pool = await pools_service.get_pool_or_404(session, project, pool_id)
    token = await pools_service.rotate_token(session, pool)
    link = pool_link(request, PoolRead.model_validate(pool), token)
    return await _page(
        request, principal, session, project, shown_once={"kind": "link", "link": link}
    )


@router.post("/pools/{pool_id}/active", name="integrations_set_pool_active")
async def set_pool_active(
    pool_id: int,
    request: Request,
    session: SessionDep,
    project: AdminProject,
    is_active: Annotated[bool, Form()],
) -> Response:
    pool = await pools_service.get_pool_or_404(session, project, pool_id)
    await pools_service.update_pool(session, pool, PoolUpdate(is_active=is_active))
    return _back(request, project)


@router.post("/webhooks", response_class=HTMLResponse, name="integrations_create_webhook")
async def create_webhook(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    project: AdminProject,
    url: FormText,
    events: Annotated[list[str] | None, Form()] = None,
    description: FormText = "",
) -> Response:
    try:
        data = WebhookCreate.model_validate(
            {"url": url.strip(), "events": events or [], "description": description}
        )
    except ValidationError as exc:
        return await _page(
            request, principal, session, project, error="; ".join(problems(exc)), status_code=422
        )
    try:
        webhook = await webhooks_service.create_webhook(session, project, data)
    except PickwiseError as exc:
        return await _page(
            request, principal, session, project, error=exc.detail, status_code=exc.status_code
        )
    return await _page(
        request,
        principal,
        session,
        project,
        shown_once={"kind": "secret", "webhook": webhook, "secret": webhook.secret},
    )


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    response_class=HTMLResponse,
    name="integrations_rotate_webhook_secret",
)
async def rotate_webhook_secret(
    webhook_id: int,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    project: AdminProject,
) -> Response:
    webhook = await webhooks_service.get_webhook_or_404(session, project, webhook_id)
    secret = await webhooks_service.rotate_secret(session, webhook)
    return await _page(
        request,
        principal,
        session,
        project,
        shown_once={"kind": "secret", "webhook": webhook, "secret": secret},
    )


@router.post("/webhooks/{webhook_id}/ping", name="integrations_ping_webhook")
async def ping_webhook(
    webhook_id: int, request: Request, session: SessionDep, project: AdminProject
) -> Response:
    webhook = await webhooks_service.get_webhook_or_404(session, project, webhook_id)
    await webhooks_service.queue_ping(session, project, webhook)
    return _back(request, project)


@router.post("/webhooks/{webhook_id}/active", name="integrations_set_webhook_active")
async def set_webhook_active(
    webhook_id: int,
    request: Request,
    session: SessionDep,
    project: AdminProject,
    is_active: Annotated[bool, Form()],
) -> Response:
    webhook = await webhooks_service.get_webhook_or_404(session, project, webhook_id)
    await webhooks_service.update_webhook(session, webhook, WebhookUpdate(is_active=is_active))
    return _back(request, project)


@router.post("/webhooks/{webhook_id}/delete", name="integrations_delete_webhook")
async def delete_webhook(
    webhook_id: int, request: Request, session: SessionDep, project: AdminProject
) -> Response:
    webhook = await webhooks_service.get_webhook_or_404(session, project, webhook_id)
    await webhooks_service.delete_webhook(session, webhook)
    return _back(request, project)


@router.post("/endpoints", response_class=HTMLResponse, name="integrations_create_endpoint")
async def create_endpoint(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    project: AdminProject,
    base_url: FormText,
    model: FormText,
    name: FormText = "",
    api_key_env: FormText = "",
    temperature: FormText = "",
    top_p: FormText = "",
    max_tokens: FormText = "",
) -> Response:
    try:
        data = EndpointCreate.model_validate(
            {
                "name": _blank_none(name),
                "base_url": base_url.strip(),
                "model": model.strip(),
                "api_key_env": _blank_none(api_key_env),
                "temperature": _blank_none(temperature),
                "top_p": _blank_none(top_p),
                "max_tokens": _blank_none(max_tokens),
            }
        )
        await generation_service.create_endpoint(session, project, data)
    except ValidationError as exc:
        return await _page(
            request, principal, session, project, error="; ".join(problems(exc)), status_code=422
        )
    except PickwiseError as exc:
        return await _page(
            request, principal, session, project, error=exc.detail, status_code=exc.status_code
        )
    return _back(request, project)


@router.post("/endpoints/{endpoint_id}/active", name="integrations_set_endpoint_active")
async def set_endpoint_active(
    endpoint_id: int,
    request: Request,
    session: SessionDep,
    project: AdminProject,
    is_active: Annotated[bool, Form()],
) -> Response:
    endpoint = await generation_service.get_endpoint_or_404(session, project, endpoint_id)
    await generation_service.update_endpoint(session, endpoint, EndpointUpdate(is_active=is_active))
    return _back(request, project)


@router.post("/endpoints/{endpoint_id}/delete", name="integrations_delete_endpoint")
async def delete_endpoint(
    endpoint_id: int, request: Request, session: SessionDep, project: AdminProject
) -> Response:
    endpoint = await generation_service.get_endpoint_or_404(session, project, endpoint_id)
    await generation_service.delete_endpoint(session, endpoint)
    return _back(request, project)
