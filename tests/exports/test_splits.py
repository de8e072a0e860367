import hashlib
import json

import pytest

from pickwise.exports.errors import InvalidExportOptions
from pickwise.exports.splits import Split, prompt_bucket, split_for_prompt

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
