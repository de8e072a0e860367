"""Limits of an import, the problems found in a file, and the verdict on it."""

from dataclasses import dataclass
from typing import Literal

from pickwise.core.errors import InvalidInput

ImportFormat = Literal["jsonl", "csv"]
# "responses": one prompt with a list of candidate responses per record.
# "pairs": one prompt with one ready-made pair (response_a, response_b) per record.
RecordShape = Literal["responses", "pairs"]


@dataclass(frozen=True, slots=True)
class ImportLimits:
    max_line_bytes: int = 1_000_000
    max_file_bytes: int = 2_000_000_000
    max_errors_kept: int = 100
    max_responses_per_prompt: int = 64

    def __post_init__(self) -> None:
        for name in ("max_line_bytes", "max_file_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_responses_per_prompt < 2:
            raise ValueError("max_responses_per_prompt must be at least 2")
        if self.max_errors_kept < 0:
            raise ValueError("max_errors_kept must not be negative")


@dataclass(frozen=True, slots=True)
class LineError:
    """One problem. `line` is None for problems with the whole file (too large, empty, ...).

    `field` is a JSON path such as `responses[1].content`; in CSV files it is the column name
    (or a path inside a JSON column such as `messages[2].role`).
    """

    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        if self.field is None:
            return f"line {self.line}: {self.message}"
        return f"line {self.line}, field {self.field}: {self.message}"


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The verdict on one file.

    `errors` holds the first `max_errors_kept` problems; `error_count` counts all of them.
    `prompt_count`, `response_count` and `gold_prompt_count` count valid records only.
    `sha256` and `byte_count` cover the whole input, except when it is over `max_file_bytes`:
    reading stops there, and they cover what was read.
    """

    format: ImportFormat | None
    shape: RecordShape | None
    line_count: int
    prompt_count: int
    response_count: int
    gold_prompt_count: int
    byte_count: int
    sha256: str
    errors: tuple[LineError, ...]
    error_count: int

    @property
    def valid(self) -> bool:
        return self.error_count == 0

    def summary(self) -> str:
        if self.valid:
            noun = "prompt" if self.prompt_count == 1 else "prompts"
            return f"the file is valid: {self.prompt_count} {noun}"
        shown = "\n".join(str(error) for error in self.errors)
        hidden = self.error_count - len(self.errors)
        more = f"\n… and {hidden} more" if hidden else ""
        noun = "problem" if self.error_count == 1 else "problems"
        return f"the file was rejected ({self.error_count} {noun}):\n{shown}{more}"


class ErrorLog:
    """Counts every problem but keeps only the first few, so a broken file cannot fill memory."""

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self.kept: list[LineError] = []
        self.count = 0

    def add(self, error: LineError) -> None:
        self.count += 1
        if len(self.kept) < self._keep:
            self.kept.append(error)


class ImportRejected(InvalidInput):
    """Raised by `iter_records` when the file turned out to be invalid."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(
            report.summary(),
            extra={
                "error_count": report.error_count,
                "errors": [
                    {"line": e.line, "field": e.field, "message": e.message} for e in report.errors
                ],
            },
        )
        self.report = report
