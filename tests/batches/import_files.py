"""Builders for import files made in the tests themselves (no fixture files)."""

import csv
import io
import json
from typing import Any

from pickwise.batches.parsing.reader import validate
from pickwise.batches.parsing.report import ImportFormat, ImportLimits, LineError, ValidationReport

CSV_HEADER = ("id", "prompt", "response_a", "response_b", "model_a", "model_b")


def responses_record(prompt_id: Any = "p1", **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": prompt_id,
        "prompt": f"Question {prompt_id}?",
        "responses": [
            {"model": "model-x", "content": f"Answer one to {prompt_id}."},
            {"model": "model-y", "content": f"Answer two to {prompt_id}."},
        ],
    }
    record.update(overrides)
    return record


def pair_record(prompt_id: Any = "p1", **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": prompt_id,
        "prompt": f"Question {prompt_id}?",
        "response_a": "Answer A.",
        "response_b": "Answer B.",
        "model_a": "model-x",
        "model_b": "model-y",
    }
    record.update(overrides)
    return record


def jsonl(*records: dict[str, Any] | str) -> bytes:
    """One line per record; a str is written as it is (for broken lines)."""
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    return ("\n".join(lines) + "\n").encode("utf-8")


def csv_file(*rows: dict[str, str], header: tuple[str, ...] = CSV_HEADER) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(column, "") for column in header])
    return out.getvalue().encode("utf-8")


def csv_row(prompt_id: str = "p1", **overrides: str) -> dict[str, str]:
    row = {
        "id": prompt_id,
        "prompt": f"Question {prompt_id}?",
        "response_a": "Answer A.",
        "response_b": "Answer B.",
        "model_a": "model-x",
        "model_b": "model-y",
    }
    row.update(overrides)
    return row


def check(
    data: bytes,
    filename: str = "batch.jsonl",
    *,
    file_format: ImportFormat | None = None,
    limits: ImportLimits | None = None,
) -> ValidationReport:
    return validate(
        io.BytesIO(data),
        filename=filename,
        file_format=file_format,
        limits=limits or ImportLimits(),
    )


def only_error(report: ValidationReport) -> LineError:
    assert not report.valid
    assert report.error_count == 1, [str(e) for e in report.errors]
    return report.errors[0]


def has_error(report: ValidationReport, line: int | None, field: str | None) -> bool:
    return any(e.line == line and e.field == field for e in report.errors)
