"""Records as they come out of a file, before the rules for prompts are applied: one JSON
object per line (JSONL), or CSV files of ready-made pairs.

CSV: a header row names the columns, then one pair per record. A quoted cell may span several
lines, so a record's line number is the line it starts on. Line breaks inside quoted cells
are read as "\\n" whatever the file's line endings.
"""

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pickwise.batches.parsing.byte_lines import TextLine
from pickwise.batches.parsing.fields import Problem
from pickwise.batches.parsing.json_values import decode_json
from pickwise.batches.parsing.record_shapes import PAIR_FIELDS


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


REQUIRED_COLUMNS = ("id", "response_a", "response_b", "model_a", "model_b")
KNOWN_COLUMNS = PAIR_FIELDS
# The csv module's own limit (128 KiB per cell by default) would reject long responses; the
# record size is limited by _LineFeeder instead. The setting is process-wide, so only raise it.
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))

BadLineHandler = Callable[[int, str], None]


class _LineFeeder:
    """Feeds checked lines to csv.reader and notes what went wrong in the current record.

    Unreadable lines and the rest of an over-long record are fed as empty lines, so memory
    stays bounded and the reader can carry on to the next record.
    """

    def __init__(
        self, lines: Iterator[TextLine], max_record_bytes: int, on_bad_line: BadLineHandler
    ) -> None:
        self._lines = lines
        self._max_record_bytes = max_record_bytes
        self._on_bad_line = on_bad_line
        self.start_record()

    def start_record(self) -> None:
        self.record_bytes = 0
        self.record_too_long = False
        self.record_has_bad_line = False

    def __iter__(self) -> Iterator[str]:
        for line in self._lines:
            if line.text is None:
                self._on_bad_line(line.line_no, line.problem or "cannot be read")
                self.record_has_bad_line = True
                yield "\n"
                continue
            # The line breaks between a record's lines count, the one ending it does not.
            self.record_bytes += line.byte_length + (1 if self.record_bytes else 0)
            if self.record_bytes > self._max_record_bytes:
                self.record_too_long = True
            yield "\n" if self.record_too_long else line.text + "\n"


def csv_records(
    lines: Iterable[TextLine], max_record_bytes: int, on_bad_line: BadLineHandler
) -> Iterator[SourceRecord]:
    """Yields one record per data row. Unreadable lines go to `on_bad_line` as they are met."""
    line_iterator = iter(lines)
    feeder = _LineFeeder(line_iterator, max_record_bytes, on_bad_line)
    reader = csv.reader(feeder, strict=True)
    header: list[str] | None = None
    while True:
        feeder.start_record()
        start_line = reader.line_num + 1
        csv_problem: str | None = None
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row, csv_problem = [], f"is not valid CSV: {exc}"
        if feeder.record_too_long:
            message = f"this record is longer than the limit of {max_record_bytes:,} bytes"
            yield SourceRecord(start_line, None, ((None, message),))
        elif feeder.record_has_bad_line:
            pass  # Already reported, line by line.
        elif csv_problem is not None:
            yield SourceRecord(start_line, None, ((None, csv_problem),))
        elif all(not cell.strip() for cell in row):
            pass  # Blank rows, including the ",,,," rows spreadsheets leave at the end.
        elif header is None:
            header, header_problems = _read_header(row)
            if header_problems:
                yield SourceRecord(start_line, None, tuple(header_problems))
                for _ in line_iterator:  # Rows cannot be read without a header; just hash them.
                    pass
                return
        else:
            yield _record_from_row(start_line, header, row)


def _read_header(row: list[str]) -> tuple[list[str], list[Problem]]:
    names = [cell.strip() for cell in row]
    problems: list[Problem] = []
    known = ", ".join(sorted(KNOWN_COLUMNS))
    seen: set[str] = set()
    for name in names:
        if name in seen:
            problems.append((name, "appears twice in the header"))
        elif name not in KNOWN_COLUMNS:
            problems.append((name or "(empty)", f"is not a known column (known columns: {known})"))
        seen.add(name)
    missing = [name for name in REQUIRED_COLUMNS if name not in seen]
    if missing:
        problems.append(
            (None, f"the header (first row) is missing the column(s): {', '.join(missing)}")
        )
    if "prompt" not in seen and "messages" not in seen:
        problems.append((None, "the header (first row) needs a prompt or a messages column"))
    return names, problems


def _record_from_row(line_no: int, header: list[str], row: list[str]) -> SourceRecord:
    if len(row) != len(header):
        message = f"has {len(row)} values, but the header has {len(header)} columns"
        return SourceRecord(line_no, None, ((None, message),))
    cells = dict(zip(header, row, strict=True))
    record: dict[str, Any] = {name: cells[name] for name in REQUIRED_COLUMNS}
    problems: list[Problem] = []
    _add_conversation(cells, record, problems)
    if cells.get("system", "").strip():
        record["system"] = cells["system"]
    if cells.get("metadata", "").strip():
        record["metadata"] = _decoded_cell(cells, "metadata", problems)
    gold = cells.get("gold", "").strip()
    if gold in ("a", "b"):
        record["gold"] = {"winner": gold}
    elif gold:
        problems.append(("gold", f'must be "a", "b" or empty, not "{gold}"'))
    json_text = cells.get("messages", "") + cells.get("metadata", "")
    return SourceRecord(line_no, record, tuple(problems), json_text)


def _add_conversation(
    cells: dict[str, str], record: dict[str, Any], problems: list[Problem]
) -> None:
    """An empty cell in one of prompt/messages means "use the other column"."""
    prompt = cells.get("prompt", "")
    if cells.get("messages", "").strip():
        record["messages"] = _decoded_cell(cells, "messages", problems)
        if prompt.strip():
            record["prompt"] = prompt
    elif "prompt" in cells:
        record["prompt"] = prompt
    else:
        record["messages"] = []


def _decoded_cell(cells: dict[str, str], column: str, problems: list[Problem]) -> Any:
    """The cell's JSON value; on a problem the raw text, which the rules then ignore."""
    value, problem = decode_json(cells[column])
    if problem is not None:
        problems.append((column, problem))
        return cells[column]
    return value
