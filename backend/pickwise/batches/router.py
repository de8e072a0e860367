from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from pickwise.auth.deps import AdminUser
from pickwise.batches import repository, service
from pickwise.batches.parsing.spooling import spool_upload
from pickwise.batches.schemas import BatchRead, ImportResult
from pickwise.core.deps import SessionDep
from pickwise.core.metrics import IMPORT_ROWS
from pickwise.generation.uploads import import_prompt_only
from pickwise.projects.deps import AdminProject

router = APIRouter(prefix="/api/v1/projects/{project_id}/batches", tags=["batches"])


@router.get("", response_model=list[BatchRead])
async def list_batches(project: AdminProject, session: SessionDep) -> list[BatchRead]:
    batches = await repository.list_batches(session, project.id)
    return [BatchRead.model_validate(batch) for batch in batches]


@router.post(
    "",
    response_model=ImportResult,
    status_code=201,
    summary="Import a batch (streamed request body: JSONL or CSV)",
    description=(
        "Send the file as the raw request body. All or nothing: a file with any bad line is "
        "rejected with 422 and line-numbered `errors` (the first 100, plus `error_count`), "
        "and nothing is stored. Re-sending the same file adds nothing: the answer is then "
        "200 with `nothing_new` true and `batch_id` null, and no batch is added. In a "
        "project with chat endpoints, JSONL lines without responses are answered by the "
        "endpoints first (at most 100 such prompts per upload by default; see "
        "docs/integrations.md)."
    ),
    responses={200: {"model": ImportResult, "description": "Nothing new: no batch was added."}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {"schema": {"type": "string", "format": "binary"}},
                "text/csv": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def import_batch(
    request: Request,
    response: Response,
    project: AdminProject,
    admin: AdminUser,
    session: SessionDep,
    filename: Annotated[str, Query(min_length=1, max_length=500)] = "upload.jsonl",
    format: Annotated[Literal["jsonl", "csv"] | None, Query()] = None,
    source: Annotated[Literal["api", "client"], Query(description="Who sent it.")] = "api",
) -> ImportResult:
    limits = service.limits_from_settings()
    with await spool_upload(request.stream(), limits) as spooled:
        # Prompts without responses, for a project with chat endpoints: answered first.
        outcome = await import_prompt_only(
            session,
            project,
            spooled,
            filename=filename,
            source=source,
            user=admin,
            file_format=format,
            limits=limits,
        ) or await service.import_stream(
            session,
            project,
            spooled,  # type: ignore[arg-type]
            filename=filename,
            source=source,
            user=admin,
            file_format=format,
            limits=limits,
        )
    IMPORT_ROWS.inc(outcome.rows_new)
    if outcome.nothing_new:
        response.status_code = 200
    return ImportResult(
        **outcome.__dict__, nothing_new=outcome.nothing_new, summary=outcome.summary
    )
