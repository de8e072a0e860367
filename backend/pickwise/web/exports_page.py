"""Admin page: pick an export's format and options, preview the counts, download a zip."""

import asyncio
import shutil
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import ValidationError
from starlette.background import BackgroundTask

from pickwise.auth.deps import PrincipalDep
from pickwise.batches import repository as batches_repository
from pickwise.core.config import get_settings
from pickwise.core.db import SessionDep
from pickwise.exports import service
from pickwise.exports.dataset.aggregation import AggregationMode, DropReason
from pickwise.exports.dataset.formats import ExportFormat
from pickwise.exports.dataset.writer import zip_export
from pickwise.exports.deps import ReadConnection
from pickwise.exports.schemas import ExportQuery
from pickwise.projects.deps import AdminProject
from pickwise.web.forms import problems
from pickwise.web.templating import render
from pickwise.webhooks.service import queue_export_written

router = APIRouter(prefix="/admin/projects/{project_id}/export", include_in_schema=False)


async def _page(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    project: AdminProject,
    query: ExportQuery,
    *,
    preview: service.Preview | None = None,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "admin/export.html",
        {
            "principal": principal,
            "project": project,
            "query": query,
            "formats": list(ExportFormat),
            "modes": list(AggregationMode),
            "drop_reasons": {reason.value: reason.description for reason in DropReason},
            "batches": await batches_repository.list_batches(session, project.id),
            "preview": preview,
            "errors": errors or [],
        },
        status_code=status_code,
    )


@router.get("", response_class=HTMLResponse, name="export_page")
async def export_page(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    project: AdminProject,
    query: Annotated[ExportQuery, Query()],
) -> HTMLResponse:
    return await _page(request, principal, session, project, query)


@router.post("", response_model=None)
async def export_download(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    project: AdminProject,
    connection: ReadConnection,
    format: Annotated[str, Form()],
    aggregation: Annotated[str, Form()] = "majority",
    min_votes: Annotated[int, Form()] = 1,
    min_agreement: Annotated[float, Form()] = 0.0,
    test_fraction: Annotated[float, Form()] = 0.1,
    seed: Annotated[int, Form()] = 0,
    batch_id: Annotated[list[int] | None, Form()] = None,
    include_gold: Annotated[bool, Form()] = False,
    include_excluded: Annotated[bool, Form()] = False,
    action: Annotated[str, Form()] = "export",
) -> Response:
    try:
        query = ExportQuery.model_validate(
            {
                "format": format,
                "aggregation": aggregation,
                "min_votes": min_votes,
                "min_agreement": min_agreement,
                "test_fraction": test_fraction,
                "seed": seed,
                "batch_id": batch_id or [],
                "include_gold": include_gold,
                "include_excluded": include_excluded,
            }
        )
    except ValidationError as exc:
        return await _page(
            request,
            principal,
            session,
            project,
            ExportQuery(),
            errors=problems(exc),
            status_code=422,
        )
    if action == "preview":
        counts = await service.preview(
            connection, project, query.selection(project.id), query.options()
        )
        return await _page(request, principal, session, project, query, preview=counts)
    out_root = get_settings().exports_dir
    out_root.mkdir(parents=True, exist_ok=True)
    result = await service.write_folder(
        connection, project, query.selection(project.id), query.options(), out_root
    )
    await queue_export_written(session, project, result.path, result.manifest)
    # Compressing is CPU work that grows with the export: off the event loop.
    archive = await asyncio.to_thread(zip_export, result.path)
    # The folder and zip are scratch files of this request; the app keeps no local state.
    cleanup = BackgroundTask(_remove, result.path, archive)
    return FileResponse(
        archive, media_type="application/zip", filename=archive.name, background=cleanup
    )


def _remove(folder: Path, archive: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    archive.unlink(missing_ok=True)
