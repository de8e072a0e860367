"""Records as they come out of a file, before the rules for prompts are applied."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pickwise.batches.byte_lines import TextLine
from pickwise.batches.fields import Problem
from pickwise.batches.json_values import decode_json


@dataclass(slots=True)
class SourceRecord:
    """A decoded record starting on `line_no`, or (with `fields` None) why it could not be read."""

    line_no: int
    fields: dict[str, Any] | None
    problems: tuple[Problem, ...] = ()
    # The JSON text the fields were decoded from, for may_be_unstorable().
    json_text: str = ""


def jsonl_records(lines: Iterable[TextLine]) -> Iterator[SourceRecord]:
    """One JSON object per line; blank lines are skipped."""
    for line in lines:
        if line.text is None:
            yield SourceRecord(line.line_no, None, ((None, line.problem or "cannot be read"),))
            continue
        if not line.text.strip():
            continue
        value, problem = decode_json(line.text)
        if problem is not None:
            yield SourceRecord(line.line_no, None, ((None, problem),))
        elif isinstance(value, list):
            message = (
                "is a JSON list, but each line must hold one JSON object; "
                "a whole-file JSON array is not JSONL"
            )
            yield SourceRecord(line.line_no, None, ((None, message),))
        elif not isinstance(value, dict):
            yield SourceRecord(line.line_no, None, ((None, "must be a JSON object ({...})"),))
        else:
            yield SourceRecord(line.line_no, value, json_text=line.text)
