"""content_hash decides "unchanged" versus "conflict" when a prompt id is imported again."""

import hashlib
import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pickwise.batches.parsing.reader import iter_records
from pickwise.batches.parsing.records import canonical_json
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


# The canonical form as documented (records.compute_content_hash): the stdlib's encoder with
# sorted keys, no spaces and no ASCII escapes. Every hash stored so far was made with it.
STDLIB_CANONICAL = json.JSONEncoder(
    sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"]))
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"])), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
@settings(max_examples=400, deadline=None)
def test_canonical_json_is_the_stdlib_canonical_form(value: Any) -> None:
    """orjson writes the hash's input where it writes the same bytes; floats and integers
    beyond 64 bits go through the stdlib encoder: a stored hash never changes."""
    assert canonical_json(value) == STDLIB_CANONICAL.encode(value).encode("utf-8")


def test_canonical_json_writes_every_character_as_the_stdlib_does() -> None:
    characters = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    for start in range(0, len(characters), 4096):
        block = characters[start : start + 4096]
        value = {"".join(block[:64]): block}
        assert canonical_json(value) == STDLIB_CANONICAL.encode(value).encode("utf-8")


def test_hash_of_a_record_is_the_sha256_of_its_documented_canonical_form() -> None:
    record = responses_record(
        "p1",
        system="Système\n\t\u0007",
        metadata={"big": 2**70, "small": 1e-05, "z": [True, None], "é": "😀"},
        responses=[
            {"id": "y", "model": "m2", "content": "Two \u2028", "metadata": {"n": 2**63}},
            {"id": "x", "model": "m1", "content": "One", "metadata": {}},
        ],
    )
    canonical = [
        1,
        "Système\n\t\u0007",
        None,
        record["metadata"],
        ["user", record["prompt"]],
        ["x", "m1", "One", {}, "y", "m2", "Two \u2028", {"n": 2**63}],
        None,
    ]
    expected = hashlib.sha256(STDLIB_CANONICAL.encode(canonical).encode("utf-8")).hexdigest()
    assert hash_of(record) == expected
    plain = {k: v for k, v in record.items() if k != "metadata"}
    canonical[3] = {}
    expected = hashlib.sha256(STDLIB_CANONICAL.encode(canonical).encode("utf-8")).hexdigest()
    assert hash_of(plain) == expected
