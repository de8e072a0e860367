from fastapi import APIRouter

from pickwise.core.deps import SessionDep
from pickwise.generation import service
from pickwise.generation.schemas import EndpointCreate, EndpointRead, EndpointUpdate
from pickwise.projects.deps import AdminProject

router = APIRouter(prefix="/api/v1/projects/{project_id}/generation-endpoints", tags=["generation"])


@router.get("", response_model=list[EndpointRead])
async def list_endpoints(project: AdminProject, session: SessionDep) -> list[EndpointRead]:
    return [
        EndpointRead.model_validate(endpoint)
        for endpoint in await service.list_endpoints(session, project)
    ]


@router.post("", response_model=EndpointRead, status_code=201)
async def create_endpoint(
    body: EndpointCreate, project: AdminProject, session: SessionDep
) -> EndpointRead:
    return EndpointRead.model_validate(await service.create_endpoint(session, project, body))


@router.patch("/{endpoint_id}", response_model=EndpointRead)
async def update_endpoint(
    endpoint_id: int, body: EndpointUpdate, project: AdminProject, session: SessionDep
) -> EndpointRead:
    endpoint = await service.get_endpoint_or_404(session, project, endpoint_id)
    return EndpointRead.model_validate(await service.update_endpoint(session, endpoint, body))


@router.delete("/{endpoint_id}", status_code=204)
async def delete_endpoint(endpoint_id: int, project: AdminProject, session: SessionDep) -> None:
    endpoint = await service.get_endpoint_or_404(session, project, endpoint_id)
    await service.delete_endpoint(session, endpoint)
