"""Files that must be accepted, and what they parse to."""

import hashlib
import io

import pytest

from pickwise.batches.parsing.reader import format_from_filename, iter_records, validate
from pickwise.batches.parsing.records import Message, ParsedResponse
from pickwise.batches.parsing.report import ImportLimits
from tests.batches.import_files import (
    check,
    csv_file,
    csv_row,
    jsonl,
    pair_record,
    responses_record,
)


def test_responses_shape_parses_with_default_response_ids() -> None:
    data = jsonl(responses_record("p1", metadata={"topic": "maths", "level": [1, 2]}))

    [prompt] = iter_records(io.BytesIO(data), filename="batch.jsonl")

    assert prompt.line_no == 1
    assert prompt.external_id == "p1"
    assert prompt.system is None
    assert prompt.turns == (Message("user", "Question p1?"),)
    assert prompt.metadata == {"topic": "maths", "level": [1, 2]}
    assert prompt.responses == (
        ParsedResponse("0", "model-x", "Answer one to p1.", {}),
        ParsedResponse("1", "model-y", "Answer two to p1.", {}),
    )
    assert prompt.gold_winner is None
    assert prompt.explicit_pairs is None
    assert len(prompt.content_hash) == 64


def test_multi_turn_conversation_with_system_prompt() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "What is 2+2?"},
    ]
    record = responses_record("p1", messages=messages)
    del record["prompt"]

    [prompt] = iter_records(io.BytesIO(jsonl(record)), filename="batch.jsonl")

    assert prompt.system == "Be brief."
    assert prompt.turns == (
        Message("user", "Hi"),
        Message("assistant", "Hello!"),
        Message("user", "What is 2+2?"),
    )


def test_system_field_next_to_prompt() -> None:
    [prompt] = iter_records(
        io.BytesIO(jsonl(responses_record("p1", system="Be brief."))), filename="b.jsonl"
    )
    assert prompt.system == "Be brief."


def test_explicit_response_ids_integer_ids_and_gold_winner() -> None:
    record = responses_record(
        7,
        responses=[
            {"id": "short", "model": "m1", "content": "A", "metadata": {"temperature": 0.7}},
            {"id": 2, "model": "m2", "content": "B"},
            {"id": "long", "model": "m3", "content": "C"},
        ],
        gold={"winner": "long"},
    )

    [prompt] = iter_records(io.BytesIO(jsonl(record)), filename="batch.jsonl")

    assert prompt.external_id == "7"
    assert [r.external_id for r in prompt.responses] == ["short", "2", "long"]
    assert prompt.responses[0].metadata == {"temperature": 0.7}
    assert prompt.gold_winner == "long"


def test_pairs_shape_gets_response_ids_a_and_b() -> None:
    data = jsonl(pair_record("p1", gold={"winner": "b"}, metadata={"source": "arena"}))

    [prompt] = iter_records(io.BytesIO(data), filename="pairs.ndjson")

    assert prompt.responses == (
        ParsedResponse("a", "model-x", "Answer A.", {}),
        ParsedResponse("b", "model-y", "Answer B.", {}),
    )
    assert prompt.explicit_pairs == (("a", "b"),)
    assert prompt.gold_winner == "b"
    assert prompt.metadata == {"source": "arena"}


def test_bom_crlf_and_blank_lines_are_accepted() -> None:
    data = b"\xef\xbb\xbf" + jsonl(responses_record("p1"), "", responses_record("p2")).replace(
        b"\n", b"\r\n"
    )

    report = check(data)

    assert report.valid, report.summary()
    assert report.prompt_count == 2
    assert report.line_count == 3
    prompts = list(iter_records(io.BytesIO(data), filename="batch.jsonl"))
    assert [p.line_no for p in prompts] == [1, 3]
    assert prompts[1].responses[1].content == "Answer two to p2."


def test_last_line_without_newline() -> None:
    data = jsonl(responses_record("p1"), responses_record("p2")).rstrip(b"\n")
    assert check(data).prompt_count == 2


def test_report_counts_hash_and_size() -> None:
    data = jsonl(responses_record("p1"), responses_record("p2", gold={"winner": "0"}))

    report = check(data)

    assert report.valid
    assert report.format == "jsonl"
    assert report.shape == "responses"
    assert (report.prompt_count, report.response_count, report.gold_prompt_count) == (2, 4, 1)
    assert report.byte_count == len(data)
    assert report.sha256 == hashlib.sha256(data).hexdigest()
    assert report.errors == ()
    assert report.summary() == "the file is valid: 2 prompts"


def test_csv_with_multiline_cells_system_gold_metadata_and_messages() -> None:
    messages = (
        '[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"}, '
        '{"role": "user", "content": "Tell me a joke"}]'
    )
    header = (
        *("id", "system", "prompt", "messages", "response_a", "response_b"),
        *("model_a", "model_b", "gold", "metadata"),
    )
    data = csv_file(
        csv_row("p1", response_a="Line one\nline two", system="Be fun", gold="a"),
        csv_row("p2", prompt="", messages=messages, metadata='{"source": "arena"}'),
        header=header,
    ).replace(b"\n", b"\r\n")

    report = check(data, "pairs.CSV")
    assert report.valid, report.summary()
    assert report.format == "csv"
    assert report.shape == "pairs"
    first, second = iter_records(io.BytesIO(data), filename="pairs.csv")

    assert first.line_no == 2
    assert first.system == "Be fun"
    assert first.responses[0].content == "Line one\nline two"
    assert first.gold_winner == "a"
    assert first.explicit_pairs == (("a", "b"),)
    assert second.line_no == 4  # The quoted cell above spans lines 2 and 3.
    assert second.turns[-1] == Message("user", "Tell me a joke")
    assert second.metadata == {"source": "arena"}


def test_csv_trailing_empty_rows_from_spreadsheets_are_ignored() -> None:
    data = csv_file(csv_row("p1")) + b",,,,,\n\n"
    assert check(data, "pairs.csv").prompt_count == 1


def test_same_pair_from_csv_and_jsonl_hash_the_same() -> None:
    from_csv = next(iter_records(io.BytesIO(csv_file(csv_row("p1"))), filename="a.csv"))
    from_jsonl = next(iter_records(io.BytesIO(jsonl(pair_record("p1"))), filename="a.jsonl"))
    assert from_csv.content_hash == from_jsonl.content_hash
    assert from_csv.turns == from_jsonl.turns


def test_source_can_be_chunks_cut_anywhere() -> None:
    data = jsonl(*(responses_record(f"p{i}") for i in range(20)))
    one_byte_chunks = (data[i : i + 1] for i in range(len(data)))

    report = validate(one_byte_chunks, filename="batch.jsonl")

    assert report.valid
    assert report.prompt_count == 20
    assert report.sha256 == hashlib.sha256(data).hexdigest()


def test_explicit_format_overrides_the_file_name() -> None:
    report = validate(
        io.BytesIO(jsonl(responses_record())), filename="data.txt", file_format="jsonl"
    )
    assert report.valid


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("a.jsonl", "jsonl"),
        ("A.NDJSON", "jsonl"),
        ("x/y.csv", "csv"),
        ("a.json", None),
        (None, None),
    ],
)
def test_format_from_filename(filename: str | None, expected: str | None) -> None:
    assert format_from_filename(filename) == expected


def test_line_of_exactly_the_limit_is_accepted() -> None:
    line = jsonl(responses_record("p1")).rstrip(b"\n")
    limits = ImportLimits(max_line_bytes=len(line))
    assert check(line + b"\r\n", limits=limits).valid
