"""Each kind of bad record is rejected with its line, its field and a plain message."""

import io
from typing import Any

import pytest

from pickwise.batches.parsing.reader import iter_records
from pickwise.batches.parsing.report import ImportLimits, ImportRejected, LineError
from tests.batches.import_files import (
    check,
    csv_file,
    csv_row,
    jsonl,
    only_error,
    pair_record,
    responses_record,
)

GOOD = responses_record("ok")


def without(record: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != key}


def conversation(*roles: str) -> dict[str, Any]:
    messages = [{"role": role, "content": f"{role} text {i}"} for i, role in enumerate(roles)]
    return without(responses_record("p1", messages=messages), "prompt")


def responses(*contents: str) -> list[dict[str, str]]:
    return [{"model": f"m{i}", "content": c} for i, c in enumerate(contents)]


def is_pair_shaped(line: dict[str, Any] | str) -> bool:
    """So the good lines around a bad one have its shape, and no mixing error appears."""
    return isinstance(line, dict) and "responses" not in line and "model_a" in line


# (case id, second line of the file, expected field, words the message must contain)
BAD_JSONL_LINES: list[tuple[str, dict[str, Any] | str, str | None, str]] = [
    ("invalid json", '{"id": "p1", "prompt": ', None, "not valid JSON"),
    ("trailing comma", '{"id": "p1",}', None, "not valid JSON"),
    ("duplicate key", '{"id": "p1", "id": "p2"}', None, 'key "id" appears twice'),
    ("NaN", '{"id": "p1", "metadata": {"x": NaN}}', None, "NaN"),
    ("Infinity", '{"id": "p1", "metadata": {"x": -Infinity}}', None, "-Infinity"),
    ("huge float", '{"id": "p1", "metadata": {"x": 1e999}}', None, "the number 1e999 is too large"),
    ("json array line", "[1, 2]", None, "JSON list"),
    ("json string line", '"hello"', None, "must be a JSON object"),
    ("missing id", without(GOOD, "id"), "id", "is missing"),
    ("id wrong type", responses_record(["p1"]), "id", "must be text or a whole number, not a list"),
    ("id boolean", responses_record(True), "id", "not true/false"),
    ("id empty", responses_record(""), "id", "must not be empty"),
    ("id with spaces", responses_record(" p1"), "id", "must not start or end with spaces"),
    ("id too long", responses_record("x" * 300), "id", "at most 256 characters"),
    ("unknown field", responses_record("p1", colour="red"), "colour", "is not a known field"),
    ("no prompt", without(GOOD, "prompt"), None, "needs a prompt"),
    ("prompt and messages", responses_record("p1", messages=[]), "messages", "not both"),
    ("prompt not text", responses_record("p1", prompt=42), "prompt", "must be text, not a number"),
    ("prompt empty", responses_record("p1", prompt=""), "prompt", "must not be empty"),
    ("prompt whitespace", responses_record("p1", prompt=" \n\t"), "prompt", "must not be empty"),
    ("system empty", responses_record("p1", system="  "), "system", "must not be empty"),
    ("metadata not object", responses_record("p1", metadata=[1]), "metadata", "must be an object"),
    ("no responses", without(GOOD, "responses"), None, "needs responses"),
    ("responses not list", responses_record("p1", responses={}), "responses", "must be a list"),
    ("responses empty", responses_record("p1", responses=[]), "responses", "must not be empty"),
    ("one response", responses_record("p1", responses=responses("A")), "responses", "at least two"),
    ("response not object", responses_record("p1", responses=["A", "B"]), "responses[0]", "object"),
    (
        "response content empty",
        responses_record("p1", responses=responses("A", "   ")),
        "responses[1].content",
        "must not be empty",
    ),
    (
        "response content missing",
        responses_record("p1", responses=[{"model": "m"}, {"model": "m", "content": "B"}]),
        "responses[0].content",
        "is missing",
    ),
    (
        "response model wrong type",
        responses_record(
            "p1", responses=[{"model": 1, "content": "A"}, {"model": "m", "content": "B"}]
        ),
        "responses[0].model",
        "must be text",
    ),
    (
        "response unknown field",
        responses_record(
            "p1",
            responses=[{"model": "m", "content": "A", "score": 1}, {"model": "m", "content": "B"}],
        ),
        "responses[0].score",
        "is not a known field",
    ),
    (
        "response metadata not object",
        responses_record(
            "p1",
            responses=[
                {"model": "m", "content": "A", "metadata": "x"},
                {"model": "m", "content": "B"},
            ],
        ),
        "responses[0].metadata",
        "must be an object",
    ),
    (
        "same content twice",
        responses_record("p1", responses=responses("Same", "Same ")),
        "responses[1].content",
        "is the same as responses[0].content",
    ),
    (
        "same content among three",
        responses_record("p1", responses=responses("A", "B", "A")),
        "responses[2].content",
        "is the same as responses[0].content",
    ),
    (
        "duplicate response ids",
        responses_record(
            "p1",
            responses=[{"id": "1", "model": "m", "content": "A"}, {"model": "m", "content": "B"}],
        ),
        "responses[1].id",
        "already the id of responses[0]",
    ),
    (
        "gold winner unknown",
        responses_record("p1", gold={"winner": "7"}),
        "gold.winner",
        '"7" is not the id of a response',
    ),
    ("gold not object", responses_record("p1", gold="0"), "gold", "must be an object"),
    ("gold missing winner", responses_record("p1", gold={}), "gold.winner", "is missing"),
    (
        "gold unknown field",
        responses_record("p1", gold={"winner": "0", "why": "x"}),
        "gold.why",
        "not a known field",
    ),
    ("messages not list", conversation() | {"messages": "hi"}, "messages", "must be a list"),
    ("messages empty", conversation(), "messages", "must not be empty"),
    (
        "message not object",
        conversation() | {"messages": ["hi"]},
        "messages[0]",
        "must be an object",
    ),
    ("bad role", conversation("user", "bot", "user"), "messages[1].role", 'not "bot"'),
    (
        "starts with assistant",
        conversation("assistant", "user"),
        "messages[0].role",
        'must be "user"',
    ),
    ("two user turns", conversation("user", "user"), "messages[1].role", 'must be "assistant"'),
    (
        "system not first",
        conversation("user", "system", "user"),
        "messages[1].role",
        "only allowed as the first",
    ),
    (
        "ends on assistant",
        conversation("system", "user", "assistant"),
        "messages[2].role",
        "must end with a user message",
    ),
    ("only system", conversation("system"), "messages", "needs a user message"),
    (
        "message unknown field",
        conversation() | {"messages": [{"role": "user", "content": "x", "name": "bob"}]},
        "messages[0].name",
        "not a known field",
    ),
    (
        "message content empty",
        conversation() | {"messages": [{"role": "user", "content": ""}]},
        "messages[0].content",
        "must not be empty",
    ),
    ("system twice", conversation("system", "user") | {"system": "again"}, "system", "given twice"),
    (
        "NUL escape in content",
        responses_record("p1", responses=responses("A\u0000", "B")),
        "responses[0].content",
        "NUL character",
    ),
    ("lone surrogate", '{"id": "p1", "prompt": "\\ud800", "responses": []}', "prompt", "surrogate"),
    (
        "NUL escape in metadata key",
        responses_record("p1", metadata={"a\u0000": 1}),
        "metadata.a\u0000",
        "NUL",
    ),
    (
        "metadata too deep",
        '{"metadata": ' + "[" * 70 + "]" * 70 + "}",
        "metadata",
        "more than 64 levels",
    ),
    ("both shapes", responses_record("p1", response_a="A"), "responses", "not both"),
    ("pair missing model", without(pair_record("p1"), "model_b"), "model_b", "is missing"),
    (
        "pair responses same",
        pair_record("p1", response_b=" Answer A."),
        "response_b",
        "is the same as response_a",
    ),
    (
        "pair gold not a or b",
        pair_record("p1", gold={"winner": "0"}),
        "gold.winner",
        'must be "a" or "b"',
    ),
]


@pytest.mark.parametrize(
    ("second_line", "field", "words"),
    [case[1:] for case in BAD_JSONL_LINES],
    ids=[case[0] for case in BAD_JSONL_LINES],
)
def test_bad_jsonl_line_is_rejected_with_line_and_field(
    second_line: dict[str, Any] | str, field: str | None, words: str
) -> None:
    neighbour = pair_record("ok") if is_pair_shaped(second_line) else GOOD
    report = check(jsonl(neighbour, second_line, neighbour | {"id": "ok2"}))

    errors = [e for e in report.errors if e.line == 2]
    assert not report.valid
    assert [e.line for e in report.errors] == [2] * len(report.errors), report.summary()
    assert any(e.field == field and words in e.message for e in errors), report.summary()


def test_error_reads_as_a_sentence() -> None:
    report = check(jsonl(GOOD, responses_record("p1", responses=responses("A", ""))))
    assert str(only_error(report)) == "line 2, field responses[1].content: must not be empty"


def test_every_problem_of_a_line_is_reported() -> None:
    record = {"id": "", "prompt": "", "responses": responses("A", ""), "extra": 1}
    report = check(jsonl(record))
    assert {e.field for e in report.errors} == {"id", "prompt", "responses[1].content", "extra"}


def test_too_many_responses() -> None:
    record = responses_record("p1", responses=responses(*"ABCDE"))
    error = only_error(check(jsonl(record), limits=ImportLimits(max_responses_per_prompt=4)))
    assert (error.line, error.field) == (1, "responses")
    assert "has 5 responses; the limit is 4" in error.message


def test_duplicate_prompt_ids_name_the_first_line() -> None:
    report = check(jsonl(responses_record("p1"), responses_record("p2"), responses_record("p1")))
    error = only_error(report)
    assert error == LineError(3, "id", '"p1" is already used on line 1')


def test_duplicate_of_a_bad_record_is_still_reported() -> None:
    bad = responses_record("p1", prompt="")
    report = check(jsonl(bad, responses_record("p2"), responses_record("p1")))
    assert [(e.line, e.field) for e in report.errors] == [(1, "prompt"), (3, "id")]


def test_integer_and_text_ids_are_the_same_id() -> None:
    report = check(jsonl(responses_record("5"), responses_record(5)))
    assert only_error(report).line == 2


def test_mixing_shapes_is_an_error_on_the_line_that_switches() -> None:
    data = jsonl(
        responses_record("p1"), responses_record("p2"), pair_record("p3"), pair_record("p4")
    )
    error = only_error(check(data))  # Reported once, not on every later line.
    assert (error.line, error.field) == (3, None)
    assert "but line 1 has a responses list; one file must use one shape" in error.message


def test_iter_records_raises_with_the_report_and_yields_nothing_after_an_error() -> None:
    data = jsonl(responses_record("p1"), "{broken", responses_record("p3"))
    yielded = []
    with pytest.raises(ImportRejected) as raised:
        for prompt in iter_records(io.BytesIO(data), filename="b.jsonl"):
            yielded.append(prompt.external_id)
    assert yielded == ["p1"]
    assert raised.value.report.error_count == 1
    assert raised.value.status_code == 422
    assert "line 2" in raised.value.detail
    assert raised.value.extra["errors"][0]["line"] == 2


# CSV: (case id, file, expected line, expected field, words)
BAD_CSV_FILES: list[tuple[str, bytes, int, str | None, str]] = [
    (
        "unknown column",
        csv_file(csv_row(), header=(*csv_file().decode().split("\n")[0].split(","), "x")),
        1,
        "x",
        "not a known column",
    ),
    (
        "missing column",
        b"id,prompt,response_a,response_b,model_a\np1,q,a,b,m\n",
        1,
        None,
        "missing the column(s): model_b",
    ),
    (
        "no prompt column",
        b"id,response_a,response_b,model_a,model_b\np1,a,b,m,n\n",
        1,
        None,
        "needs a prompt or a messages",
    ),
    (
        "duplicate column",
        b"id,id,prompt,response_a,response_b,model_a,model_b\n",
        1,
        "id",
        "appears twice",
    ),
    (
        "wrong cell count",
        csv_file(csv_row()) + b"p2,q,a,b,m\n",
        3,
        None,
        "has 5 values, but the header has 6",
    ),
    ("bad quoting", csv_file(csv_row()) + b'p2,"q"x,a,b,m,n\n', 3, None, "not valid CSV"),
    ("unclosed quote", csv_file(csv_row()) + b'p2,"q,a,b,m,n\n', 3, None, "not valid CSV"),
    (
        "empty prompt",
        csv_file(csv_row(), csv_row("p2", prompt=" ")),
        3,
        "prompt",
        "must not be empty",
    ),
    (
        "empty response",
        csv_file(csv_row(), csv_row("p2", response_b="")),
        3,
        "response_b",
        "must not be empty",
    ),
    (
        "same responses",
        csv_file(csv_row("p1", response_b="Answer A.")),
        2,
        "response_b",
        "is the same",
    ),
    ("duplicate id", csv_file(csv_row("p1"), csv_row("p1")), 3, "id", "already used on line 2"),
    (
        "bad gold",
        csv_file(csv_row("p1", gold="c"), header=(*csv_row().keys(), "gold")),
        2,
        "gold",
        'must be "a", "b" or empty',
    ),
    (
        "metadata not json",
        csv_file(csv_row("p1", metadata="{x"), header=(*csv_row().keys(), "metadata")),
        2,
        "metadata",
        "not valid JSON",
    ),
    (
        "metadata not object",
        csv_file(csv_row("p1", metadata="[1]"), header=(*csv_row().keys(), "metadata")),
        2,
        "metadata",
        "must be an object",
    ),
    (
        "messages not json",
        csv_file(csv_row("p1", prompt="", messages="[{"), header=(*csv_row().keys(), "messages")),
        2,
        "messages",
        "not valid JSON",
    ),
    (
        "messages bad role order",
        csv_file(
            csv_row("p1", prompt="", messages='[{"role":"assistant","content":"x"}]'),
            header=(*csv_row().keys(), "messages"),
        ),
        2,
        "messages[0].role",
        'must be "user"',
    ),
    (
        "messages column empty",
        csv_file(
            csv_row("p1"),
            header=("id", "messages", "response_a", "response_b", "model_a", "model_b"),
        ),
        2,
        "messages",
        "must not be empty",
    ),
]


@pytest.mark.parametrize(
    ("data", "line", "field", "words"),
    [case[1:] for case in BAD_CSV_FILES],
    ids=[case[0] for case in BAD_CSV_FILES],
)
def test_bad_csv_is_rejected_with_line_and_field(
    data: bytes, line: int, field: str | None, words: str
) -> None:
    report = check(data, "pairs.csv")
    assert not report.valid
    assert any(e.line == line and e.field == field and words in e.message for e in report.errors), (
        report.summary()
    )


def test_csv_messages_error_is_not_repeated_by_the_rules() -> None:
    data = csv_file(csv_row("p1", prompt="", messages="[{"), header=(*csv_row().keys(), "messages"))
    assert only_error(check(data, "pairs.csv")).field == "messages"
