"""Export errors: bad options are the caller's mistake (400); the rest are bugs upstream."""

from pickwise.core.errors import BadRequest


class InvalidExportOptions(BadRequest):
    pass
