"""The rater loop's hot answers are built as plain dicts from the values, not as pydantic
models dumped again: the models stay the routes' `response_model` (the OpenAPI schema), and
tests/judgments/test_answer_bodies.py checks that each body is its model's own JSON dump
(docs/benchmarks.md, "i33a")."""

from datetime import datetime


def json_datetime(value: datetime) -> str:
    """`value` as pydantic writes a datetime in JSON: ISO 8601, UTC as `Z`."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
