"""Prompt-only files uploaded through the API: answered by the project's endpoints within the
request, then imported like any batch.

Done inside the request, not as a background job, so it is bounded: at most
`generation_max_prompts_per_upload` prompts without responses per upload (100 by default);
larger files go through `pickwise generate`, which has a progress bar and imports what
succeeded. All or nothing, like every API import: when a prompt gets no complete set of
answers, nothing is imported and the answer (422) lists each failed prompt by line; prompts
already in the project are skipped, so sending the file again retries only what is missing.
"""

import asyncio
import tempfile
from collections.abc import Sequence
from typing import IO, Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.batches import repository as batches_repository
from pickwise.batches import service as batches_service
from pickwise.batches.parsing.reader import format_from_filename
from pickwise.batches.parsing.report import ImportLimits
from pickwise.batches.service import ImportOutcome
from pickwise.conversations.openers import import_openers
from pickwise.core.config import get_settings
from pickwise.core.errors import Conflict, InvalidInput
from pickwise.core.outbound import outbound_client
from pickwise.generation import service
from pickwise.generation.chat import EndpointConfig, MissingApiKey, RetryPolicy
from pickwise.generation.runner import (
    GenerationOptions,
    GenerationReport,
    count_prompt_only,
    generate_jsonl,
)
from pickwise.models import Project, User
from pickwise.vocabulary import ProjectKind

CONCURRENCY = 8
# Shorter than the CLI's 120 s: a client is waiting for this request.
POLICY = RetryPolicy(attempts=4, base_delay=1.0, max_delay=10.0, timeout=60.0)


def _errors(report: GenerationReport) -> dict[str, Any]:
    if report.invalid.count:
        return {
            "error_count": report.invalid.count,
            "errors": [
                {"line": e.line, "field": e.field, "message": e.message}
                for e in report.invalid.kept
            ],
        }
    return {
        "error_count": report.failure_count,
        "errors": [
            {"line": f.line, "field": "responses", "message": "; ".join(f.problems)}
            for f in report.failures
        ],
    }


async def import_prompt_only(
    session: AsyncSession,
    project: Project,
    upload: IO[bytes],
    *,
    filename: str,
    source: str,
    user: User | None,
    file_format: str | None,
    limits: ImportLimits,
) -> ImportOutcome | None:
    """Generates and imports when `upload` (JSONL, seekable, at its start) has prompts without
    responses and the project has active endpoints; None (upload untouched, back at its start)
    otherwise, for the ordinary importer. A conversation project's files are its openers."""
    if project.kind == ProjectKind.CONVERSATIONS:
        if (file_format or format_from_filename(filename) or "jsonl") != "jsonl":
            raise InvalidInput("a conversation project imports openers as JSONL")
        return await import_openers(
            session, project, upload, filename=filename, source=source, user=user, limits=limits
        )
    if (file_format or format_from_filename(filename) or "jsonl") != "jsonl":
        return None
    endpoints = await service.list_endpoints(session, project, active_only=True)
    if not endpoints:
        return None
    limit = get_settings().generation_max_prompts_per_upload
    prompt_only = await asyncio.to_thread(count_prompt_only, upload, limit + 1)
    upload.seek(0)
    if prompt_only == 0:
        return None
    if prompt_only > limit:
        raise InvalidInput(
            f"this file has more than {limit} prompts without responses, the most one upload "
            "may have answered (GENERATION_MAX_PROMPTS_PER_UPLOAD); split it, or run "
            "`pickwise generate` for large files"
        )
    try:
        configs = [EndpointConfig.from_endpoint(endpoint) for endpoint in endpoints]
    except MissingApiKey as exc:
        raise InvalidInput(str(exc), field="api_key_env") from exc
    if len(configs) < 2:
        raise InvalidInput(
            "prompts without responses need two answers each: this project has one active "
            "endpoint; add another"
        )

    async def known_ids(prompt_ids: Sequence[str]) -> set[str]:
        return set(await batches_repository.existing_hashes(session, project.id, prompt_ids))

    options = GenerationOptions(concurrency=CONCURRENCY, policy=POLICY)
    with tempfile.TemporaryFile() as complete:
        async with outbound_client(limits=httpx.Limits(max_connections=CONCURRENCY)) as http:
            report = await generate_jsonl(
                upload, complete, configs, known_ids=known_ids, http=http, options=options
            )
        if report.invalid.count:
            raise InvalidInput(
                f"{report.invalid.count} problem(s) in the file; no endpoint was called",
                extra=_errors(report),
            )
        if report.failure_count:
            stopped = " (stopped early: check the endpoints)" if report.stopped_early else ""
            raise InvalidInput(
                f"{report.failure_count} prompt(s) got no complete set of answers{stopped}; "
                "nothing was imported. Send the file again to retry.",
                extra=_errors(report),
            )
        if report.written == 0:
            raise Conflict("every prompt of this file is already in the project")
        complete.seek(0)
        return await batches_service.import_stream(
            session,
            project,
            complete,
            filename=filename,
            source=source,
            user=user,
            file_format="jsonl",
            limits=limits,
        )
