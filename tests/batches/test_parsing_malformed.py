"""Generated malformed files (no fixture files): every one is rejected, with errors that name
the broken line, and the field where the problem is a field's."""

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pickwise.batches.parsing.reader import validate
from tests.batches.import_files import responses_record
from tests.batches.malformed import MUTATIONS, TEST_LIMITS, Record
from tests.batches.record_strategies import Expected, responses_records

GeneratedFile = tuple[str, bytes, int, str | None]


def base_records(count: int) -> list[Record]:
    """Valid records of several kinds: multi-turn, explicit ids, gold, metadata."""
    records = []
    for index in range(count):
        record = responses_record(f"p{index}")
        if index % 3 == 1:
            record = responses_record(
                f"p{index}",
                prompt=None,
                messages=[
                    {"role": "system", "content": "Be kind."},
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello"},
                    {"role": "user", "content": "Help me."},
                ],
                responses=[
                    {"id": "x", "model": "m1", "content": "Sure.", "metadata": {"t": 1}},
                    {"id": "y", "model": "m2", "content": "No."},
                    {"id": "z", "model": "m3", "content": "Maybe."},
                ],
                gold={"winner": "x"},
            )
            del record["prompt"]
        elif index % 3 == 2:
            record["metadata"] = {"source": "test", "n": index}
        records.append(record)
    return records


def malformed_files() -> Iterator[GeneratedFile]:
    """Every mutation, on a record of each kind, as the first, a middle and the last line."""
    records = base_records(6)
    for name, mutate in MUTATIONS.items():
        for position in (0, 3, 4, 5):
            if name in ("duplicate id", "mixed shape") and position == 0:
                continue  # The first line has no earlier id to repeat, and sets the shape.
            broken_line, field = mutate(records[position], records[0])
            lines = [json.dumps(r).encode() for r in records]
            lines[position] = broken_line
            yield f"{name} @ line {position + 1}", b"\n".join(lines) + b"\n", position + 1, field


GENERATED = list(malformed_files())


def assert_rejected_at(data: bytes, line: int, field: str | None) -> None:
    report = validate(io.BytesIO(data), filename="batch.jsonl", limits=TEST_LIMITS)
    assert not report.valid
    assert report.errors, "an invalid file must say why"
    assert {e.line for e in report.errors} == {line}, report.summary()
    assert field in {e.field for e in report.errors}, report.summary()


def test_there_are_at_least_50_generated_files() -> None:
    assert len(GENERATED) >= 50
    assert len({data for _, data, _, _ in GENERATED}) == len(GENERATED)


@pytest.mark.parametrize(
    ("data", "line", "field"),
    [case[1:] for case in GENERATED],
    ids=[case[0] for case in GENERATED],
)
def test_generated_malformed_file_is_rejected(data: bytes, line: int, field: str | None) -> None:
    assert_rejected_at(data, line, field)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(responses_records(), min_size=2, max_size=5),
    st.sampled_from(sorted(MUTATIONS)),
    st.data(),
)
def test_any_mutation_of_any_valid_file_is_rejected_at_its_line(
    drawn: list[tuple[dict[str, Any], Expected]], mutation: str, data: st.DataObject
) -> None:
    records = [record | {"id": f"r{i}"} for i, (record, _) in enumerate(drawn)]
    position = data.draw(st.integers(min_value=1, max_value=len(records) - 1))
    broken_line, field = MUTATIONS[mutation](records[position], records[0])
    newline = data.draw(st.sampled_from([b"\n", b"\r\n"]))
    lines = [json.dumps(r).encode() for r in records]
    lines[position] = broken_line

    assert_rejected_at(newline.join(lines) + newline, position + 1, field)
