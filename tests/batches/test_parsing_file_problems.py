"""Problems with the file as a whole or with its bytes: compression, encoding, size, emptiness."""

import bz2
import gzip
import io
import lzma
import zipfile
from collections.abc import Iterator

import pytest

from pickwise.batches.parsing.reader import validate
from pickwise.batches.parsing.report import ImportLimits, LineError
from tests.batches.import_files import (
    check,
    csv_file,
    csv_row,
    jsonl,
    only_error,
    responses_record,
)

VALID = jsonl(responses_record("p1"), responses_record("p2"), responses_record("p3"))


def zipped(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("batch.jsonl", data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("compressed", "name"),
    [
        (gzip.compress(VALID), "gzip"),
        (zipped(VALID), "zip"),
        (bz2.compress(VALID), "bzip2"),
        (lzma.compress(VALID), "xz"),
        (b"\x28\xb5\x2f\xfd" + b"\x00" * 40, "zstd"),
    ],
)
@pytest.mark.parametrize("filename", ["batch.jsonl", "batch.csv", "batch.jsonl.gz"])
def test_compressed_data_is_named(compressed: bytes, name: str, filename: str) -> None:
    report = check(compressed, filename)

    error = only_error(report)
    assert error.line is None
    assert f"looks like {name}-compressed data; decompress it first" in error.message
    # Still hashed whole, so the lead can log what was uploaded.
    assert report.byte_count == len(compressed)


def test_csv_header_starting_with_bzh_is_not_mistaken_for_bzip2() -> None:
    data = csv_file(csv_row(), header=("BZh9", "id"))
    assert "compressed" not in check(data, "pairs.csv").summary()


def test_utf16_file_is_named() -> None:
    error = only_error(check(VALID.decode().encode("utf-16")))
    assert error.message == "the file looks like UTF-16 text; save it as UTF-8"


def test_nul_byte_names_the_line() -> None:
    data = jsonl(responses_record("p1")) + b'{"id": "p2"\x00}\n' + jsonl(responses_record("p3"))
    error = only_error(check(data))
    assert (error.line, error.field) == (2, None)
    assert "NUL byte (byte 12 of the line)" in error.message


def test_invalid_utf8_in_the_middle_names_the_line() -> None:
    bad = jsonl(responses_record("p2")).replace(b"Answer one", b"Answer \xff\xfe one")
    data = jsonl(*(responses_record(f"a{i}") for i in range(500))) + bad + VALID
    error = only_error(check(data))
    assert error.line == 501
    assert "is not valid UTF-8" in error.message


def test_cut_multibyte_character_is_invalid_utf8() -> None:
    data = jsonl(responses_record("p1", prompt="café")).replace("é".encode(), b"\xc3")
    assert "not valid UTF-8" in only_error(check(data)).message


def test_oversized_line_is_rejected_and_later_lines_still_checked() -> None:
    long_record = responses_record("p2", prompt="x" * 5000)
    data = jsonl(responses_record("p1"), long_record, responses_record("p1"))

    report = check(data, limits=ImportLimits(max_line_bytes=1000))

    assert report.errors == (
        LineError(2, None, "is longer than the limit of 1,000 bytes"),
        LineError(3, "id", '"p1" is already used on line 1'),
    )


def test_oversized_last_line_without_newline() -> None:
    data = jsonl(responses_record("p1")) + b"x" * 5000
    error = only_error(check(data, limits=ImportLimits(max_line_bytes=1000)))
    assert error.line == 2


def test_oversized_file_stops_reading() -> None:
    data = jsonl(*(responses_record(f"p{i}") for i in range(200)))
    limit = len(data) // 2
    chunks_read = 0

    def chunks_of_1000() -> Iterator[bytes]:
        nonlocal chunks_read
        for start in range(0, len(data), 1000):
            chunks_read += 1
            yield data[start : start + 1000]

    report = validate(
        chunks_of_1000(), filename="b.jsonl", limits=ImportLimits(max_file_bytes=limit)
    )

    message = f"the file is larger than the limit of {limit:,} bytes"
    assert report.errors == (LineError(None, None, message),)
    assert limit < report.byte_count <= limit + 1000
    assert chunks_read * 1000 == report.byte_count  # Not one chunk more.


@pytest.mark.parametrize(
    "data", [b"", b"\n\n", b"   \r\n\t\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n"]
)
def test_empty_jsonl_file_is_rejected(data: bytes) -> None:
    assert only_error(check(data)) == LineError(None, None, "the file has no records")


@pytest.mark.parametrize("data", [b"", b"\n", csv_file(), csv_file() + b",,,,,\n"])
def test_empty_csv_file_is_rejected(data: bytes) -> None:
    assert only_error(check(data, "pairs.csv")) == LineError(None, None, "the file has no records")


def test_unknown_extension_is_rejected_without_a_format() -> None:
    error = only_error(check(VALID, "batch.txt"))
    assert error.line is None
    assert 'cannot tell the format of "batch.txt"' in error.message


def test_thousands_of_errors_keep_the_first_100_and_count_all() -> None:
    data = jsonl(*(responses_record(f"p{i}", prompt="") for i in range(5000)))

    report = check(data)

    assert report.error_count == 5000
    assert len(report.errors) == 100
    assert [e.line for e in report.errors] == list(range(1, 101))
    assert report.summary().endswith("… and 4900 more")


def test_max_errors_kept_is_configurable() -> None:
    data = jsonl(*(responses_record(f"p{i}", prompt="") for i in range(50)))
    report = check(data, limits=ImportLimits(max_errors_kept=3))
    assert (len(report.errors), report.error_count) == (3, 50)


def test_csv_nul_and_bad_utf8_name_the_physical_line() -> None:
    data = csv_file(csv_row("p1"), csv_row("p2"), csv_row("p3"), csv_row("p4"))
    lines = data.split(b"\n")
    lines[2] = lines[2].replace(b"Answer A", b"Answer \x00")
    lines[4] = lines[4].replace(b"Answer A", b"Answer \xe9")

    report = check(b"\n".join(lines), "pairs.csv")

    assert [(e.line, e.field) for e in report.errors] == [(3, None), (5, None)]
    assert "NUL byte" in report.errors[0].message
    assert "not valid UTF-8" in report.errors[1].message


def test_csv_record_spanning_lines_is_limited_as_a_whole() -> None:
    long_cell = "\n".join(["line of text"] * 200)  # Every line short, the record long.
    data = csv_file(csv_row("p1"), csv_row("p2", response_a=long_cell), csv_row("p3"))

    report = check(data, "pairs.csv", limits=ImportLimits(max_line_bytes=1000))

    assert report.errors[0] == LineError(
        3, None, "this record is longer than the limit of 1,000 bytes"
    )


def test_csv_oversized_physical_line() -> None:
    data = csv_file(csv_row("p1"), csv_row("p2", response_a="x" * 5000), csv_row("p3"))
    report = check(data, "pairs.csv", limits=ImportLimits(max_line_bytes=1000))
    assert report.errors == (LineError(3, None, "is longer than the limit of 1,000 bytes"),)


def test_csv_after_bad_header_rest_is_only_hashed() -> None:
    data = b"identifier,text\n" + b"p1,hello\n" * 100
    report = check(data, "pairs.csv")
    assert {e.line for e in report.errors} == {1}
    assert report.byte_count == len(data)
