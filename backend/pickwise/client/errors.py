from dataclasses import dataclass
from typing import Any

from pickwise.client.models import ImportSummary


@dataclass(frozen=True)
class LineError:
    """One problem the server found in an uploaded batch.

    `line` counts lines of that batch (from 1); `row` is the position (from 0) of the row in
    what was passed to `add_prompts`, across all its batches.
    """

    line: int | None
    field: str | None
    message: str
    row: int | None = None

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row is not None else f"line {self.line}"
        if self.line is None and self.row is None:
            return self.message
        return (
            f"{where}, {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class PickwiseAPIError(Exception):
    """The server refused a request (or could not be reached: then `status_code` is None).

    `error` is the server's error class ("InvalidInput", "Conflict", …) and `detail` its
    message. A rejected batch adds `line_errors` (the first 100) and `error_count`; batches
    of the same `add_prompts` call sent before it are in `imported` (they are stored).
    """

    def __init__(
        self,
        status_code: int | None,
        detail: str,
        *,
        error: str | None = None,
        line_errors: list[LineError] | None = None,
        error_count: int = 0,
        body: Any = None,
        imported: list[ImportSummary] | None = None,
    ) -> None:
        self.status_code = status_code
        self.detail = detail
        self.error = error
        self.line_errors = line_errors or []
        self.error_count = error_count or len(self.line_errors)
        self.body = body
        self.imported = imported or []
        super().__init__(str(self))

    def __str__(self) -> str:
        head = f"{self.status_code} {self.error}: " if self.status_code else ""
        shown = "".join(f"\n  {error}" for error in self.line_errors[:10])
        hidden = self.error_count - min(len(self.line_errors), 10)
        more = f"\n  … and {hidden} more" if hidden > 0 else ""
        return f"{head}{self.detail.splitlines()[0] if self.detail else ''}{shown}{more}"
