import hashlib
import json

import pytest

from pickwise.exports.errors import InvalidExportOptions
from pickwise.exports.splits import Split, prompt_bucket, split_for_prompt, split_unit

IDS = [f"prompt-{index}" for index in range(2000)]


def test_bucket_is_the_documented_sha256_prefix() -> None:
    digest = hashlib.sha256(json.dumps(["abc", 7]).encode()).digest()
    assert prompt_bucket("abc", 7) == int.from_bytes(digest[:8], "big") / 2**64


def test_split_is_deterministic_and_close_to_the_fraction() -> None:
    first = [split_for_prompt(i, test_fraction=0.2, seed=1) for i in IDS]
    again = [split_for_prompt(i, test_fraction=0.2, seed=1) for i in IDS]
    assert first == again
    share = first.count(Split.TEST) / len(IDS)
    assert 0.17 < share < 0.23


def test_seed_changes_the_split() -> None:
    one = [split_for_prompt(i, test_fraction=0.5, seed=1) for i in IDS]
    two = [split_for_prompt(i, test_fraction=0.5, seed=2) for i in IDS]
    assert one != two


def test_a_larger_fraction_only_moves_prompts_into_test() -> None:
    small = {i for i in IDS if split_for_prompt(i, test_fraction=0.1, seed=0) is Split.TEST}
    large = {i for i in IDS if split_for_prompt(i, test_fraction=0.3, seed=0) is Split.TEST}
    assert small < large


def test_edge_fractions() -> None:
    assert {split_for_prompt(i, test_fraction=0.0, seed=0) for i in IDS} == {Split.TRAIN}
    assert {split_for_prompt(i, test_fraction=1.0, seed=0) for i in IDS} == {Split.TEST}
    with pytest.raises(InvalidExportOptions):
        split_for_prompt("x", test_fraction=1.5, seed=0)


def test_the_turns_of_a_live_conversation_split_together() -> None:
    """Judged turns of one conversation (prompt ids conversation:<id>:turn:<turn>) share a
    side whatever their turn ids; other ids split as before."""
    for seed in range(20):
        for conversation in range(30):
            sides = {
                split_for_prompt(
                    f"conversation:{conversation}:turn:{turn}", test_fraction=0.5, seed=seed
                )
                for turn in range(1, 40, 7)
            }
            assert len(sides) == 1
    assert split_unit("conversation:12:turn:345") == "conversation:12"
    assert split_unit("conversation:12:turn:") == "conversation:12:turn:"
    assert split_unit("my conversation:1:turn:2") == "my conversation:1:turn:2"
    assert split_unit("q-17") == "q-17"
    # Both sides are used: the unit is the conversation, not one fixed side.
    units = {
        split_for_prompt(f"conversation:{c}:turn:1", test_fraction=0.5, seed=0) for c in range(30)
    }
    assert units == {Split.TRAIN, Split.TEST}
