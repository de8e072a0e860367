from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from pickwise.exports import service
from pickwise.exports.dataset.ndjson import NDJSON_MEDIA_TYPE
from pickwise.exports.deps import ReadConnection
from pickwise.exports.schemas import ExportQuery, PreviewRead
from pickwise.projects.deps import AdminProject

router = APIRouter(prefix="/api/v1/projects/{project_id}/export", tags=["exports"])

QueryOptions = Annotated[ExportQuery, Query()]


@router.get(
    "",
    summary="Download an export as NDJSON (streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {NDJSON_MEDIA_TYPE: {}}, "description": "One JSON row a line."}},
)
async def download(
    project: AdminProject, query: QueryOptions, connection: ReadConnection
) -> StreamingResponse:
    options = query.options()
    selection = await service.selection_for(connection, project, query)
    chunks = service.stream_ndjson(connection, project, selection, options, query.only_split())
    filename = f"{project.slug}-{options.format.value}-{query.split}.jsonl"
    return StreamingResponse(
        chunks,
        media_type=NDJSON_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/preview", response_model=PreviewRead, summary="What an export would hold")
async def preview(
    project: AdminProject, query: QueryOptions, connection: ReadConnection
) -> PreviewRead:
    selection = await service.selection_for(connection, project, query)
    result = await service.preview(connection, project, selection, query.options())
    return PreviewRead(**result.__dict__, summary=result.summary)
