"""Admin page: pick an export's format and options, preview the counts, download a zip."""

import asyncio
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import ValidationError
from starlette.background import BackgroundTask

from pickwise.auth.deps import PrincipalDep
from pickwise.batches import repository as batches_repository
from pickwise.core.config import get_settings
from pickwise.core.deps import SessionDep
from pickwise.exports import service
from pickwise.exports.dataset.aggregation import AggregationMode, DropReason
from pickwise.exports.dataset.formats import ExportFormat
from pickwise.exports.dataset.writer import zip_export
from pickwise.exports.deps import ReadConnection
from pickwise.exports.schemas import ExportQuery
from pickwise.projects.deps import AdminProject
from pickwise.web.forms import problems
from pickwise.web.pair_filters import FILTER_LABELS, MultiParams
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
            "selection": query.pair_filter(),
            "filter_labels": FILTER_LABELS,
            "explorer_query": "?" + urlencode(query.pair_filter().as_params()),
        },
        status_code=status_code,
    )


# Options that repeat in a query string or form.
LIST_OPTIONS = ("batch_id", "batch", "status")


def _query_from(params: MultiParams) -> tuple[ExportQuery, list[str]]:
    """The export's options and the explorer's filter, from a query string or a form."""
    data: dict[str, Any] = {}
    for name in ExportQuery.model_fields:
        values = [value for value in params.getlist(name) if isinstance(value, str)]
        if values:
            data[name] = values if name in LIST_OPTIONS else values[-1]
    try:
        return ExportQuery.model_validate(data), []
    except ValidationError as exc:
        return ExportQuery(), problems(exc)


@router.get("", response_class=HTMLResponse, name="export_page")
async def export_page(
    request: Request, principal: PrincipalDep, session: SessionDep, project: AdminProject
) -> HTMLResponse:
    """The form, holding the explorer's filter when opened from "Export this selection"."""
    query, errors = _query_from(request.query_params)
    status = 422 if errors else 200
    return await _page(
        request, principal, session, project, query, errors=errors, status_code=status
    )


@router.post("", response_model=None)
async def export_download(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    project: AdminProject,
    connection: ReadConnection,
) -> Response:
    form = await request.form()
    query, errors = _query_from(form)
    if errors:
        return await _page(
            request, principal, session, project, query, errors=errors, status_code=422
        )
    selection = await service.selection_for(connection, project, query)
    if form.get("action") == "preview":
        counts = await service.preview(connection, project, selection, query.options())
        return await _page(request, principal, session, project, query, preview=counts)
    out_root = get_settings().exports_dir
    out_root.mkdir(parents=True, exist_ok=True)
    result = await service.write_folder(
        connection, project, selection, query.options(), out_root, record=query.record()
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
