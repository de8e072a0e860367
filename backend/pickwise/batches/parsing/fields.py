"""Readers for one field of a decoded record, reporting problems in plain words.

Every reader appends `(field path, message)` to `problems` and returns None when the value is
unusable, so one pass over a record reports all of its problems at once.
"""

from collections.abc import Collection, Mapping
from typing import Any

# (field path or None for the whole record, message)
Problem = tuple[str | None, str]
MAX_ID_LENGTH = 256


def describe_path(path: str) -> str | None:
    return path or None


def child_path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def kind_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def check_known_fields(
    record: Mapping[str, Any], allowed: Collection[str], parent: str, problems: list[Problem]
) -> None:
    for key in record:
        if key not in allowed:
            listing = ", ".join(sorted(allowed))
            problems.append(
                (child_path(parent, key), f"is not a known field (known fields: {listing})")
            )


# The readers below take the parent's path and build the field's path only for a problem:
# they run for every field of every record, and most records have none.


def read_text(
    record: Mapping[str, Any], key: str, parent: str, problems: list[Problem], *, required: bool
) -> str | None:
    """Non-empty text. Content is kept as given; whitespace-only counts as empty."""
    value = record.get(key)
    if isinstance(value, str) and value and not value.isspace():
        return value
    if key not in record:
        if required:
            problems.append((child_path(parent, key), "is missing"))
    elif not isinstance(value, str):
        problems.append((child_path(parent, key), f"must be text, not {kind_of(value)}"))
    else:
        problems.append((child_path(parent, key), "must not be empty"))
    return None


def read_id(
    record: Mapping[str, Any], key: str, parent: str, problems: list[Problem], *, required: bool
) -> str | None:
    """An id: text, or a whole number (many datasets number their rows), returned as text."""
    value = record.get(key)
    if isinstance(value, str) and value and value == value.strip() and len(value) <= MAX_ID_LENGTH:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    path = child_path(parent, key)
    if key not in record:
        if required:
            problems.append((path, "is missing"))
    elif not isinstance(value, str):
        problems.append((path, f"must be text or a whole number, not {kind_of(value)}"))
    elif not value.strip():
        problems.append((path, "must not be empty"))
    elif value != value.strip():
        # " p1" and "p1" would be different ids that look the same.
        problems.append((path, "must not start or end with spaces"))
    else:
        problems.append((path, f"must be at most {MAX_ID_LENGTH} characters long"))
    return None


def read_object(
    record: Mapping[str, Any], key: str, parent: str, problems: list[Problem]
) -> dict[str, Any] | None:
    """An optional JSON object; missing means empty."""
    value = record.get(key, {})
    if isinstance(value, dict):
        return value
    problems.append((child_path(parent, key), f"must be an object ({{...}}), not {kind_of(value)}"))
    return None


def read_list(
    record: Mapping[str, Any], key: str, parent: str, problems: list[Problem]
) -> list[Any] | None:
    """A required, non-empty JSON list."""
    value = record.get(key)
    if isinstance(value, list) and value:
        return value
    path = child_path(parent, key)
    if key not in record:
        problems.append((path, "is missing"))
    elif not isinstance(value, list):
        problems.append((path, f"must be a list ([...]), not {kind_of(value)}"))
    else:
        problems.append((path, "must not be empty"))
    return None
