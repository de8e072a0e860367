"""Property: any valid record, written out, parses back to the ParsedPrompt it describes."""

import csv
import io
import json
from typing import Any, Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pickwise.batches.parsing.reader import iter_records, validate
from tests.batches.record_strategies import Expected, pair_records, responses_records

CSV_COLUMNS = (
    *("id", "system", "prompt", "messages", "response_a", "response_b"),
    *("model_a", "model_b", "gold", "metadata"),
)
PROPERTY_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def unique_ids(records: list[tuple[dict[str, Any], Expected]]) -> bool:
    return len({expected.external_id for _, expected in records}) == len(records)


@st.composite
def jsonl_files(
    draw: st.DrawFn, records: st.SearchStrategy[tuple[dict[str, Any], Expected]]
) -> tuple[bytes, list[tuple[int, Expected]]]:
    """A file of the records, with any mix of BOM, CRLF, blank lines and JSON spellings."""
    drawn = draw(st.lists(records, min_size=1, max_size=4).filter(unique_ids))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines: list[str] = []
    placed: list[tuple[int, Expected]] = []
    for record, expected in drawn:
        lines.extend([""] * draw(st.integers(min_value=0, max_value=1)))
        ensure_ascii, sort_keys = draw(st.booleans()), draw(st.booleans())
        lines.append(json.dumps(record, ensure_ascii=ensure_ascii, sort_keys=sort_keys))
        placed.append((len(lines), expected))
    text = newline.join(lines) + draw(st.sampled_from(["", newline]))
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    return bom + text.encode("utf-8"), placed


def parsed(data: bytes, filename: str) -> list[Any]:
    report = validate(io.BytesIO(data), filename=filename)
    assert report.valid, report.summary()
    return list(iter_records(io.BytesIO(data), filename=filename))


@PROPERTY_SETTINGS
@given(jsonl_files(responses_records()))
def test_responses_records_round_trip(file: tuple[bytes, list[tuple[int, Expected]]]) -> None:
    data, placed = file
    prompts = parsed(data, "batch.jsonl")
    assert [p.line_no for p in prompts] == [line for line, _ in placed]
    for prompt, (_, expected) in zip(prompts, placed, strict=True):
        assert expected.matches(prompt), (prompt, expected)


@PROPERTY_SETTINGS
@given(jsonl_files(pair_records()))
def test_pair_records_round_trip(file: tuple[bytes, list[tuple[int, Expected]]]) -> None:
    data, placed = file
    prompts = parsed(data, "pairs.jsonl")
    assert [p.line_no for p in prompts] == [line for line, _ in placed]
    for prompt, (_, expected) in zip(prompts, placed, strict=True):
        assert expected.matches(prompt), (prompt, expected)


def csv_cells(record: dict[str, Any]) -> dict[str, str]:
    cells = {name: str(record.get(name, "")) for name in CSV_COLUMNS}
    if "messages" in record:
        cells["messages"] = json.dumps(record["messages"], ensure_ascii=False)
    if "metadata" in record:
        cells["metadata"] = json.dumps(record["metadata"], ensure_ascii=False)
    cells["gold"] = record.get("gold", {}).get("winner", "")
    return cells


@PROPERTY_SETTINGS
@given(
    st.lists(pair_records(), min_size=1, max_size=4).filter(unique_ids),
    st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    st.sampled_from(["\n", "\r\n"]),
)
def test_pair_records_round_trip_through_csv(
    records: list[tuple[dict[str, Any], Expected]], quoting: Literal[0, 1], newline: str
) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, quoting=quoting, lineterminator=newline)
    writer.writeheader()
    for record, _ in records:
        writer.writerow(csv_cells(record))

    prompts = parsed(out.getvalue().encode("utf-8"), "pairs.csv")

    assert len(prompts) == len(records)
    for prompt, (_, expected) in zip(prompts, records, strict=True):
        assert expected.matches(prompt), (prompt, expected)
