"""The chat endpoints of a project: made, changed and listed by admins."""

import re

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.db import add_unique
from pickwise.core.errors import Conflict, InvalidInput, NotFound
from pickwise.core.outbound import check_url
from pickwise.generation import repository
from pickwise.generation.schemas import EndpointCreate, EndpointUpdate
from pickwise.models import GenerationEndpoint, Project
from pickwise.models.base import apply_changes
from pickwise.models.generation import ENDPOINT_NAME_PATTERN
from pickwise.projects import repository as projects_repository

_REQUIRED_FIELDS = frozenset({"base_url", "model", "is_active"})


async def list_endpoints(
    session: AsyncSession, project: Project, *, active_only: bool = False
) -> list[GenerationEndpoint]:
    return await repository.endpoints_of(session, project.id, active_only=active_only)


async def get_endpoint_or_404(
    session: AsyncSession, project: Project, endpoint_id: int
) -> GenerationEndpoint:
    endpoint = await projects_repository.in_project(
        session, GenerationEndpoint, project.id, endpoint_id
    )
    if endpoint is None:
        raise NotFound(f"endpoint {endpoint_id}: no such endpoint in this project")
    return endpoint


async def create_endpoint(
    session: AsyncSession, project: Project, data: EndpointCreate
) -> GenerationEndpoint:
    await check_url(data.base_url, "base_url")
    name = data.name or data.model
    if not re.fullmatch(ENDPOINT_NAME_PATTERN, name):
        raise InvalidInput(
            "the model name is not usable as a name here; give a name of letters, "
            "digits and _ . : / @ + -",
            field="name",
        )
    endpoint = GenerationEndpoint(
        project_id=project.id, name=name, **data.model_dump(exclude={"name"})
    )
    taken = Conflict(f"this project already has an endpoint called {name!r}", field="name")
    await add_unique(session, endpoint, taken)
    return endpoint


async def update_endpoint(
    session: AsyncSession, endpoint: GenerationEndpoint, data: EndpointUpdate
) -> GenerationEndpoint:
    if data.base_url is not None:
        await check_url(data.base_url, "base_url")
    apply_changes(endpoint, data.model_dump(exclude_unset=True), required=_REQUIRED_FIELDS)
    await session.flush()
    return endpoint


async def delete_endpoint(session: AsyncSession, endpoint: GenerationEndpoint) -> None:
    """Answers already imported keep their model name and settings in their metadata."""
    await session.delete(endpoint)
    await session.flush()
