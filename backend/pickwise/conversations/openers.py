"""Openers: first messages imported as a batch of prompts without responses (JSONL lines with
`id` and `prompt` or `messages`, optional `system` and `metadata`; docs/import-format.md).

In a conversation project the ordinary import takes such files (API, admin page, CLI). Like
every import it is all or nothing and idempotent: a bad line rejects the whole file (each
problem named by line and field), an id already there with the same content is counted as
unchanged, and with other content it is a conflict. A rater who asks for an opener gets the
least used one they have not had; its system prompt and earlier turns start the conversation.
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import IO, Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.batches import repository as batches_repository
from pickwise.batches.parsing.conversation import read_conversation
from pickwise.batches.parsing.fields import Problem, check_known_fields, read_id, read_object
from pickwise.batches.parsing.json_values import decode_json
from pickwise.batches.parsing.records import compute_content_hash
from pickwise.batches.parsing.report import (
    ErrorLog,
    ImportLimits,
    ImportRejected,
    LineError,
    ValidationReport,
)
from pickwise.batches.service import ImportOutcome
from pickwise.models import Batch, Project, Prompt, User

OPENER_FIELDS = frozenset({"id", "prompt", "messages", "system", "metadata"})
# Judged turns' prompts take these ids (conversations.voting.turn_external_id).
RESERVED_PREFIX = "conversation:"
CHUNK = 1_000


@dataclass(frozen=True)
class _Opener:
    line_no: int
    external_id: str
    system: str | None
    turns: list[dict[str, str]]
    metadata: dict[str, Any]
    content_hash: str


def _parse(line_no: int, raw: bytes, limits: ImportLimits) -> tuple[_Opener | None, list[Problem]]:
    problems: list[Problem] = []
    if len(raw) > limits.max_line_bytes:
        return None, [(None, f"is longer than {limits.max_line_bytes} bytes")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, [(None, "is not valid UTF-8 text")]
    record, problem = decode_json(text)
    if problem is not None:
        return None, [(None, problem)]
    if not isinstance(record, dict):
        return None, [(None, "must be a JSON object ({...})")]
    if not {"responses", "response_a", "response_b"}.isdisjoint(record):
        return None, [(None, "an opener has no responses: the models answer it live")]
    check_known_fields(record, OPENER_FIELDS, "", problems)
    external_id = read_id(record, "id", "", problems, required=True)
    conversation = read_conversation(record, problems)
    metadata = read_object(record, "metadata", "", problems)
    if external_id is not None and external_id.startswith(RESERVED_PREFIX):
        problems.append(("id", f'must not start with "{RESERVED_PREFIX}" (kept for judged turns)'))
    if problems or external_id is None or conversation is None or metadata is None:
        return None, problems
    system, turns = conversation
    content_hash = compute_content_hash(
        system=system,
        turns=turns,
        metadata=metadata,
        responses=(),
        gold_winner=None,
        explicit_pairs=None,
    )
    as_dicts = [{"role": turn.role, "content": turn.content} for turn in turns]
    return _Opener(line_no, external_id, system, as_dicts, metadata, content_hash), []


def _read(upload: IO[bytes], limits: ImportLimits) -> tuple[list[_Opener], ValidationReport]:
    errors = ErrorLog(limits.max_errors_kept)
    openers: list[_Opener] = []
    first_line: dict[str, int] = {}
    digest = hashlib.sha256()
    size = lines = 0
    for line_no, raw in enumerate(upload, start=1):
        digest.update(raw)
        size += len(raw)
        lines = line_no
        if size > limits.max_file_bytes:
            errors.add(
                LineError(None, None, f"the file is larger than {limits.max_file_bytes} bytes")
            )
            break
        if not raw.strip():
            continue
        opener, problems = _parse(line_no, raw, limits)
        for field, message in problems:
            errors.add(LineError(line_no, field, message))
        if opener is None:
            continue
        if opener.external_id in first_line:
            errors.add(
                LineError(line_no, "id", f"repeats the id of line {first_line[opener.external_id]}")
            )
            continue
        first_line[opener.external_id] = line_no
        openers.append(opener)
    if not openers and not errors.count:
        errors.add(LineError(None, None, "the file has no openers"))
    report = ValidationReport(
        format="jsonl",
        shape=None,
        line_count=lines,
        prompt_count=len(openers),
        response_count=0,
        gold_prompt_count=0,
        byte_count=size,
        sha256=digest.hexdigest(),
        errors=tuple(errors.kept),
        error_count=errors.count,
    )
    return openers, report


def _chunks(openers: list[_Opener]) -> Iterator[list[_Opener]]:
    for start in range(0, len(openers), CHUNK):
        yield openers[start : start + CHUNK]


async def import_openers(
    session: AsyncSession,
    project: Project,
    upload: IO[bytes],
    *,
    filename: str,
    source: str,
    user: User | None,
    limits: ImportLimits,
) -> ImportOutcome:
    """Stores the file's openers as the prompts of a new batch (all or nothing)."""
    openers, report = _read(upload, limits)
    if not report.valid:
        raise ImportRejected(report)
    batch = Batch(
        project_id=project.id,
        filename=filename[:500],
        sha256=report.sha256,
        size_bytes=report.byte_count,
        source=source,
        created_by_id=user.id if user else None,
    )
    session.add(batch)
    await session.flush()
    conflicts = ErrorLog(limits.max_errors_kept)
    new = unchanged = 0
    for chunk in _chunks(openers):
        known = await batches_repository.existing_hashes(
            session, project.id, [opener.external_id for opener in chunk]
        )
        rows = []
        for opener in chunk:
            stored = known.get(opener.external_id)
            if stored == opener.content_hash:
                unchanged += 1
            elif stored is not None:
                message = "this id is already in the project with other content"
                conflicts.add(LineError(opener.line_no, "id", message))
            else:
                rows.append(
                    {
                        "project_id": project.id,
                        "batch_id": batch.id,
                        "external_id": opener.external_id,
                        "system": opener.system,
                        "turns": opener.turns,
                        "content_hash": opener.content_hash,
                        "metadata_": opener.metadata,
                    }
                )
        if rows:
            await session.execute(insert(Prompt), rows)
            new += len(rows)
    if conflicts.count:
        kept = tuple(conflicts.kept)
        raise ImportRejected(replace(report, errors=kept, error_count=conflicts.count))
    batch.prompts_new, batch.prompts_unchanged = new, unchanged
    await session.flush()
    return ImportOutcome(
        batch_id=batch.id,
        prompts_new=new,
        prompts_unchanged=unchanged,
        responses_new=0,
        pairs_new=0,
        sha256=report.sha256,
    )
