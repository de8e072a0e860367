"""Streaming parser and validator for import files (JSONL or CSV). No database here.

    report = validate(file, filename=name)           # reads everything, keeps no records

    reader = RecordReader(file, filename=name)       # one pass that also yields the records
    for prompt in reader:
        ...                                          # write, inside one transaction
    reader.report                                    # the same report as validate's

Both run the same checks. The reader stops yielding at the first problem, reads on to find
the rest, and raises `ImportRejected` (carrying the full report) at the end: the caller's
transaction must roll back what it wrote by then. An import reads its file once this way,
rather than validating it first: a bad file costs the writes made before its first problem,
a good one (the common case) is parsed once instead of twice.

Memory does not grow with the file size, except for the ids seen (to find duplicates): 8 bytes
per record. A seekable file keeps only a 64-bit hash of each id and compares them at the end of
the pass; only if two hashes match is the file read again, remembering just the ids with those
hashes, to name the lines. Duplicates therefore show up at the end of a pass: `iter_records` may
yield a record whose id repeats an earlier one before it raises. A source that cannot seek keeps
every id with its line, as it must name the lines in one read.
"""

from array import array
from collections.abc import Iterator
from pathlib import PurePath
from typing import Any, BinaryIO, cast

from pickwise.batches.parsing.byte_lines import ByteLines, ByteSource, too_large
from pickwise.batches.parsing.fields import Problem, read_id
from pickwise.batches.parsing.json_values import may_be_unstorable, unstorable_text
from pickwise.batches.parsing.record_shapes import parse_record, shape_of
from pickwise.batches.parsing.records import ParsedPrompt
from pickwise.batches.parsing.report import (
    ErrorLog,
    ImportFormat,
    ImportLimits,
    ImportRejected,
    LineError,
    RecordShape,
    ValidationReport,
)
from pickwise.batches.parsing.sources import SourceRecord, csv_records, jsonl_records

DEFAULT_LIMITS = ImportLimits()
FORMAT_BY_SUFFIX: dict[str, ImportFormat] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
SHAPE_DESCRIPTIONS: dict[RecordShape, str] = {
    "responses": "a responses list",
    "pairs": "a ready-made pair (response_a, response_b)",
}


def format_from_filename(filename: str | None) -> ImportFormat | None:
    if filename is None:
        return None
    return FORMAT_BY_SUFFIX.get(PurePath(filename).suffix.lower())


def validate(
    source: ByteSource,
    *,
    filename: str | None = None,
    file_format: ImportFormat | None = None,
    limits: ImportLimits = DEFAULT_LIMITS,
) -> ValidationReport:
    """Reads the whole input and reports every problem (the first `max_errors_kept` in full).

    The format is `file_format` if given, else taken from the filename's extension.
    """
    scan = _Scan(source, filename, file_format, limits)
    for _ in scan.records():
        pass
    return scan.exact_report()


def iter_records(
    source: ByteSource,
    *,
    filename: str | None = None,
    file_format: ImportFormat | None = None,
    limits: ImportLimits = DEFAULT_LIMITS,
) -> Iterator[ParsedPrompt]:
    """Yields the validated records in file order; raises ImportRejected if the file is bad."""
    return iter(RecordReader(source, filename=filename, file_format=file_format, limits=limits))


def too_large_report(
    size: int, *, filename: str | None, file_format: ImportFormat | None, limits: ImportLimits
) -> ValidationReport:
    """The verdict on a file whose size is known to be over the limit, without reading it (an
    import writes as it reads, so it must not start on a file it will refuse at the end)."""
    return ValidationReport(
        format=file_format or format_from_filename(filename),
        shape=None,
        line_count=0,
        prompt_count=0,
        response_count=0,
        gold_prompt_count=0,
        byte_count=size,
        sha256="",  # Not read, so not known.
        errors=(LineError(None, None, too_large(limits.max_file_bytes)),),
        error_count=1,
    )


class RecordReader:
    """One pass over one file: iterating yields the valid records in file order, then sets
    `report` (the whole file's, as `validate` gives it) and raises ImportRejected if the file
    is bad. Single use."""

    def __init__(
        self,
        source: ByteSource,
        *,
        filename: str | None = None,
        file_format: ImportFormat | None = None,
        limits: ImportLimits = DEFAULT_LIMITS,
    ) -> None:
        self._scan = _Scan(source, filename, file_format, limits)
        self.report: ValidationReport | None = None

    @property
    def bytes_read(self) -> int:
        """How far the pass has read (for progress; read ahead of the records yielded)."""
        return self._scan.bytes_read

    def __iter__(self) -> Iterator[ParsedPrompt]:
        scan = self._scan
        for record in scan.records():
            if scan.errors.count == 0:
                yield record
        self.report = scan.exact_report()
        if not self.report.valid:
            raise ImportRejected(self.report)


def _start_offset(source: ByteSource) -> int | None:
    """Where a seekable source starts, so it can be read again; None if it cannot seek."""
    seekable = getattr(source, "seekable", None)
    if seekable is None or not seekable():
        return None
    return cast(BinaryIO, source).tell()


def _hash_of(external_id: str) -> int:
    # Python's string hash: 64 bits, fixed within the process, which is all a pass needs.
    return hash(external_id) & 0xFFFF_FFFF_FFFF_FFFF


# Up to this many ids a set finds the repeats (≈ 5 MB at most). Above it numpy sorts a copy of
# the 8-byte hashes instead of a set's ~50 bytes an id; importing numpy costs every command
# that reads a file ~0.1 s of start-up, so small files (most imports) do without it.
SET_LIMIT = 100_000


def _repeated(hashes: "array[int]") -> frozenset[int]:
    """The hashes that occur more than once."""
    if len(hashes) <= SET_LIMIT:
        seen: set[int] = set()
        repeated: set[int] = set()
        for value in hashes:
            if value in seen:
                repeated.add(value)
            seen.add(value)
        return frozenset(repeated)
    import numpy as np

    ordered = np.sort(np.frombuffer(hashes, dtype=np.uint64))
    repeats = ordered[1:][ordered[1:] == ordered[:-1]]
    return frozenset(int(value) for value in np.unique(repeats))


class _Scan:
    """One read of one file: applies every rule and keeps the counts for the report."""

    def __init__(
        self,
        source: ByteSource,
        filename: str | None,
        file_format: ImportFormat | None,
        limits: ImportLimits,
        suspects: frozenset[int] | None = None,
    ) -> None:
        self._source = source
        self._start = _start_offset(source)
        self._input = ByteLines(source, limits)
        self._filename = filename
        self._file_format = file_format
        self._limits = limits
        self.format = file_format or format_from_filename(filename)
        self.errors = ErrorLog(limits.max_errors_kept)
        self.shape: RecordShape | None = None
        self._shape_line = 0
        self._reported_mixed_shapes = False
        # Line of the first record with each id, for "already used on line N": every id when
        # the source cannot be read again, else only ids whose hash is among `suspects` (on the
        # second read); on a first read of a seekable source, just the hashes.
        self._line_by_id: dict[str, int] = {}
        self._suspects = suspects
        self._id_hashes: array[int] | None = (
            array("Q") if suspects is None and self._start is not None else None
        )
        self._prompt_count = 0
        self._response_count = 0
        self._gold_prompt_count = 0

    def records(self) -> Iterator[ParsedPrompt]:
        lines = self._input.lines()
        if self.format == "jsonl":
            source_records = jsonl_records(lines)
        elif self.format == "csv":
            source_records = csv_records(lines, self._limits.max_line_bytes, self._bad_line)
        else:
            for _ in lines:  # Still hash it, and spot compressed data, the likelier mistake.
                pass
            source_records = iter(())
        for source_record in source_records:
            prompt = self._checked(source_record)
            if prompt is not None:
                yield prompt
        self._add_file_problems()

    @property
    def bytes_read(self) -> int:
        return self._input.byte_count

    def exact_report(self) -> ValidationReport:
        """The report, after reading the file again if two ids may be the same."""
        if self._id_hashes is None:
            return self.report()
        suspects = _repeated(self._id_hashes)
        if not suspects:
            return self.report()
        assert self._start is not None
        cast(BinaryIO, self._source).seek(self._start)
        rescan = _Scan(self._source, self._filename, self._file_format, self._limits, suspects)
        for _ in rescan.records():
            pass
        return rescan.report()

    def report(self) -> ValidationReport:
        return ValidationReport(
            format=self.format,
            shape=self.shape,
            line_count=self._input.line_count,
            prompt_count=self._prompt_count,
            response_count=self._response_count,
            gold_prompt_count=self._gold_prompt_count,
            byte_count=self._input.byte_count,
            sha256=self._input.sha256,
            errors=tuple(self.errors.kept),
            error_count=self.errors.count,
        )

    def _bad_line(self, line_no: int, problem: str) -> None:
        self.errors.add(LineError(line_no, None, problem))

    def _add_file_problems(self) -> None:
        if self._input.file_problem is not None:
            self.errors.add(LineError(None, None, self._input.file_problem))
        elif self.format is None:
            name = f'"{self._filename}"' if self._filename else "the file"
            message = (
                f"cannot tell the format of {name} from its name: "
                "use a .jsonl, .ndjson or .csv file, or choose the format"
            )
            self.errors.add(LineError(None, None, message))
        elif self.errors.count == 0 and self._prompt_count == 0:
            self.errors.add(LineError(None, None, "the file has no records"))

    def _checked(self, source_record: SourceRecord) -> ParsedPrompt | None:
        problems: list[Problem] = []
        prompt = None
        if source_record.fields is not None:
            prompt = self._parsed(source_record, source_record.fields, problems)
        if source_record.problems:
            # A field the source already found fault with (a CSV cell) is not reported twice.
            reported = {field for field, _ in source_record.problems}
            problems = [*source_record.problems, *(p for p in problems if p[0] not in reported)]
        if problems:
            for field, message in problems:
                self.errors.add(LineError(source_record.line_no, field, message))
            return None
        return None if prompt is None else self._counted(prompt)

    def _parsed(
        self, source_record: SourceRecord, fields: dict[str, Any], problems: list[Problem]
    ) -> ParsedPrompt | None:
        line_no = source_record.line_no
        if may_be_unstorable(source_record.json_text):
            problems.extend(unstorable_text(fields))
            if problems:
                return None
        shape = shape_of(fields, problems)
        if shape is None:
            return None
        if self.shape is None:
            self.shape, self._shape_line = shape, line_no
        elif shape != self.shape and not self._reported_mixed_shapes:
            # Once is enough: after it, every line of the other shape would repeat it.
            self._reported_mixed_shapes = True
            problems.append(
                (
                    None,
                    f"has {SHAPE_DESCRIPTIONS[shape]}, but line {self._shape_line} has "
                    f"{SHAPE_DESCRIPTIONS[self.shape]}; one file must use one shape",
                )
            )
            return None
        max_responses = self._limits.max_responses_per_prompt
        prompt = parse_record(shape, fields, line_no, max_responses, problems)
        # Ids of bad records count too, so a later duplicate is still reported.
        external_id = prompt.external_id if prompt else read_id(fields, "id", "", [], required=True)
        if external_id is not None:
            if self._id_hashes is not None:
                self._id_hashes.append(_hash_of(external_id))
                return prompt
            if self._suspects is not None and _hash_of(external_id) not in self._suspects:
                return prompt
            first_line = self._line_by_id.setdefault(external_id, line_no)
            if first_line != line_no:
                problems.append(("id", f'"{external_id}" is already used on line {first_line}'))
                return None
        return prompt

    def _counted(self, prompt: ParsedPrompt) -> ParsedPrompt:
        self._prompt_count += 1
        self._response_count += len(prompt.responses)
        if prompt.gold_winner is not None:
            self._gold_prompt_count += 1
        return prompt
