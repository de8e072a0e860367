"""content_hash decides "unchanged" versus "conflict" when a prompt id is imported again."""

import io
import json
from typing import Any

import pytest

from pickwise.batches.parsing.reader import iter_records
from tests.batches.import_files import jsonl, responses_record


def hash_of(record: dict[str, Any] | str) -> str:
    [prompt] = iter_records(io.BytesIO(jsonl(record)), filename="b.jsonl")
    return prompt.content_hash


BASE = responses_record(
    "p1",
    system="Be brief.",
    metadata={"topic": "maths", "tags": ["a", "b"]},
    responses=[
        {"id": "x", "model": "m1", "content": "One", "metadata": {"t": 0.5}},
        {"id": "y", "model": "m2", "content": "Two"},
    ],
    gold={"winner": "x"},
)


def test_stable_across_key_order_whitespace_and_equivalent_forms() -> None:
    reordered = json.dumps(
        dict(reversed(list(BASE.items()))), indent=None, separators=(" ,", " : ")
    )
    as_messages = {k: v for k, v in BASE.items() if k not in ("prompt", "system")}
    as_messages["messages"] = [
        {"content": "Be brief.", "role": "system"},
        {"role": "user", "content": BASE["prompt"]},
    ]
    responses_swapped = BASE | {"responses": list(reversed(BASE["responses"]))}
    other_id = BASE | {"id": "another-id"}

    expected = hash_of(BASE)
    assert hash_of(reordered) == expected
    assert hash_of(as_messages) == expected
    assert hash_of(responses_swapped) == expected  # Explicit ids: order does not matter.
    assert hash_of(other_id) == expected  # The id names the content; it is not part of it.
    # Pinned: a change here turns every stored prompt into a "conflict" on re-import.
    assert expected == "18dcb36ab1a006e90e9c2602ba8bbe5deb92db1d67c6c7402d91a9c8249fe38a"


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": "Question p1? "},
        {"system": "Be long."},
        {"metadata": {"topic": "maths", "tags": ["b", "a"]}},
        {"metadata": {}},
        {"gold": {"winner": "y"}},
        {"responses": [{"id": "x", "model": "m1", "content": "One!"}, BASE["responses"][1]]},
        {"responses": [BASE["responses"][0] | {"model": "m3"}, BASE["responses"][1]]},
        {"responses": [BASE["responses"][0], BASE["responses"][1] | {"id": "z"}]},
        {"responses": [BASE["responses"][0] | {"metadata": {}}, BASE["responses"][1]]},
    ],
)
def test_sensitive_to_every_part_of_the_content(change: dict[str, Any]) -> None:
    assert hash_of(BASE | change) != hash_of(BASE)


def test_default_ids_make_order_matter() -> None:
    record = responses_record("p1")
    swapped = record | {"responses": list(reversed(record["responses"]))}
    assert hash_of(swapped) != hash_of(record)


def test_gold_absent_differs_from_gold_present() -> None:
    without_gold = {k: v for k, v in BASE.items() if k != "gold"}
    assert hash_of(without_gold) != hash_of(BASE)
