from typing import Annotated

from fastapi import APIRouter, Query, Request

from pickwise.auth.deps import AdminUser
from pickwise.core.deps import SessionDep
from pickwise.pools import repository, service
from pickwise.pools.schemas import ParticipantRead, PoolCreate, PoolLink, PoolRead, PoolUpdate
from pickwise.projects.deps import AdminProject

router = APIRouter(prefix="/api/v1/projects/{project_id}/pools", tags=["rater pools"])


def entry_url(request: Request, token: str) -> str:
    return str(request.url_for("pool_join", token=token))


def pool_link(request: Request, pool: PoolRead, token: str) -> PoolLink:
    url = entry_url(request, token)
    # Prolific fills in {{%PROLIFIC_PID%}} itself; the braces must stay literal.
    return PoolLink(
        pool=pool, entry_url=url, prolific_url=f"{url}?PROLIFIC_PID={{{{%PROLIFIC_PID%}}}}"
    )


@router.get("", response_model=list[PoolRead])
async def list_pools(project: AdminProject, session: SessionDep) -> list[PoolRead]:
    return [
        PoolRead.model_validate(pool).model_copy(
            update={"participants": participants, "completed": completed}
        )
        for pool, participants, completed in await repository.list_pools(session, project.id)
    ]


@router.post(
    "",
    response_model=PoolLink,
    status_code=201,
    summary="Make an entry link (shown once)",
)
async def create_pool(
    body: PoolCreate, request: Request, project: AdminProject, admin: AdminUser, session: SessionDep
) -> PoolLink:
    token, pool = await service.create_pool(session, project, body, admin)
    return pool_link(request, PoolRead.model_validate(pool), token)


@router.patch("/{pool_id}", response_model=PoolRead)
async def update_pool(
    pool_id: int, body: PoolUpdate, project: AdminProject, session: SessionDep
) -> PoolRead:
    pool = await service.get_pool_or_404(session, project, pool_id)
    return PoolRead.model_validate(await service.update_pool(session, pool, body))


@router.post(
    "/{pool_id}/rotate",
    response_model=PoolLink,
    summary="Replace the entry link (the old one stops working; participants stay)",
)
async def rotate_link(
    pool_id: int, request: Request, project: AdminProject, session: SessionDep
) -> PoolLink:
    pool = await service.get_pool_or_404(session, project, pool_id)
    token = await service.rotate_token(session, pool)
    return pool_link(request, PoolRead.model_validate(pool), token)


@router.get("/{pool_id}/participants", response_model=list[ParticipantRead])
async def list_participants(
    pool_id: int,
    project: AdminProject,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[ParticipantRead]:
    pool = await service.get_pool_or_404(session, project, pool_id)
    rows = await repository.participants(session, pool, limit=limit, offset=offset)
    return [
        ParticipantRead(
            user_id=row.user.id,
            external_id=row.participant.external_id,
            display_name=row.user.display_name,
            pseudonym=row.user.pseudonym,
            judgments=row.judgments,
            quota=pool.quota,
            completed_at=row.participant.completed_at,
            excluded=row.excluded,
            joined_at=row.participant.created_at,
        )
        for row in rows
    ]
