"""Duplicate ids: a seekable file keeps 8-byte hashes and reads again only to name the lines.

The errors must be exactly those of a single read that remembers every id, which is what a
source that cannot seek still does; so each case compares the two.
"""

import io
from collections.abc import Iterator

import pytest

from pickwise.batches.parsing import reader
from pickwise.batches.parsing.reader import iter_records, validate
from pickwise.batches.parsing.report import (
    ImportLimits,
    ImportRejected,
    LineError,
    ValidationReport,
)
from tests.batches.import_files import csv_file, csv_row, jsonl, pair_record, responses_record


class CountingReads(io.BytesIO):
    """A seekable file that counts how often it is read from the start."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.starts = 0

    def read(self, size: int | None = -1, /) -> bytes:
        if self.tell() == 0:
            self.starts += 1
        return super().read(size)


def unseekable(data: bytes) -> Iterator[bytes]:
    # Cut anywhere, like an upload stream.
    for start in range(0, len(data), 777):
        yield data[start : start + 777]


def both_ways(data: bytes, filename: str = "b.jsonl", **kwargs: object) -> ValidationReport:
    seekable = validate(io.BytesIO(data), filename=filename, **kwargs)  # type: ignore[arg-type]
    single_read = validate(unseekable(data), filename=filename, **kwargs)  # type: ignore[arg-type]
    assert seekable == single_read
    return seekable


# Small files find repeated hashes with a set, large ones with numpy: both must agree.
@pytest.mark.parametrize("set_limit", [reader.SET_LIMIT, 0], ids=["set", "numpy"])
def test_duplicates_far_apart_in_a_large_file_name_both_lines(
    set_limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "SET_LIMIT", set_limit)
    ids = [f"p{n:06d}" for n in range(30_000)]
    ids[29_990] = "p000001"  # line 29,991 repeats line 2
    ids[15_000] = "p015001"  # line 15,001 repeats line 15,002 (the later one is the error)
    report = both_ways(jsonl(*(responses_record(prompt_id) for prompt_id in ids)))
    assert report.errors == (
        LineError(15_002, "id", '"p015001" is already used on line 15001'),
        LineError(29_991, "id", '"p000001" is already used on line 2'),
    )
    assert report.error_count == 2
    assert report.prompt_count == 30_000 - 2


def test_a_file_without_duplicates_is_read_once() -> None:
    source = CountingReads(jsonl(*(responses_record(f"p{n}") for n in range(500))))
    report = validate(source, filename="b.jsonl")
    assert report.valid and report.prompt_count == 500
    assert source.starts == 1


def test_a_duplicate_is_named_after_a_second_read() -> None:
    source = CountingReads(
        jsonl(responses_record("a"), responses_record("b"), responses_record("a"))
    )
    report = validate(source, filename="b.jsonl")
    assert report.errors == (LineError(3, "id", '"a" is already used on line 1'),)
    assert source.starts == 2


def test_hash_collisions_of_different_ids_are_not_duplicates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every id of the same length collides: the second read must tell them apart.
    monkeypatch.setattr(reader, "_hash_of", len)
    data = jsonl(*(responses_record(f"p{n}") for n in range(10, 60)), responses_record("p12"))
    report = both_ways(data)
    assert report.errors == (LineError(51, "id", '"p12" is already used on line 3'),)
    clean = both_ways(jsonl(*(responses_record(f"p{n}") for n in range(10, 60))))
    assert clean.valid and clean.prompt_count == 50


MIXED_PROBLEMS = [
    # Duplicate of a bad record, bad duplicate, integer and text ids, mixed shapes.
    jsonl(
        responses_record("p1", prompt=""),
        responses_record("p2"),
        responses_record("p1"),
        responses_record(7),
        "{broken",
        responses_record("7", prompt=""),
        pair_record("p9"),
        responses_record("p2"),
        responses_record("p2"),
    ),
    # More errors than are kept: duplicates must keep their place in line order.
    jsonl(
        *(
            responses_record("same") if n % 3 else responses_record(f"u{n}", prompt="")
            for n in range(40)
        )
    ),
]


@pytest.mark.parametrize("data", MIXED_PROBLEMS, ids=["mixed", "over the kept limit"])
def test_errors_are_exactly_those_of_a_single_read(data: bytes) -> None:
    report = both_ways(data, limits=ImportLimits(max_errors_kept=10))
    assert report.error_count > 0


def test_csv_duplicates_too() -> None:
    report = both_ways(csv_file(csv_row("a"), csv_row("b"), csv_row("a")), filename="b.csv")
    assert report.errors == (LineError(4, "id", '"a" is already used on line 2'),)


def test_second_read_starts_where_the_first_did() -> None:
    data = jsonl(responses_record("a"), responses_record("a"))
    source = io.BytesIO(b"HEADER" + data)
    source.seek(len(b"HEADER"))
    report = validate(source, filename="b.jsonl")
    assert report.errors == (LineError(2, "id", '"a" is already used on line 1'),)


def test_iter_records_raises_with_both_lines_named() -> None:
    data = jsonl(responses_record("a"), responses_record("b"), responses_record("a"))
    with pytest.raises(ImportRejected) as raised:
        for _ in iter_records(io.BytesIO(data), filename="b.jsonl"):
            pass
    assert raised.value.report.errors == (LineError(3, "id", '"a" is already used on line 1'),)
