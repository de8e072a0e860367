import dataclasses

import pytest

from pickwise.batches.parsing.records import Message
from pickwise.exports.dataset.records import InvalidRecordError, PromptRecord
from tests.exports.factory import VoteFactory, make_prompt


def test_prompt_turns_must_alternate_from_user() -> None:
    with pytest.raises(InvalidRecordError, match="expected 'user'"):
        PromptRecord(1, "p", None, (Message("assistant", "hi"), Message("user", "q")))
    with pytest.raises(InvalidRecordError, match="expected 'assistant'"):
        PromptRecord(1, "p", None, (Message("user", "q"), Message("user", "q")))


def test_prompt_must_end_on_user_turn() -> None:
    with pytest.raises(InvalidRecordError, match="end on a user turn"):
        PromptRecord(1, "p", None, (Message("user", "q"), Message("assistant", "a")))


def test_prompt_needs_a_turn() -> None:
    with pytest.raises(InvalidRecordError, match="no turns"):
        PromptRecord(1, "p", None, ())


def test_empty_system_prompt_counts_as_none() -> None:
    assert make_prompt("p", system="").is_single_user_turn
    assert not make_prompt("p", system="Be brief.").is_single_user_turn
    assert not make_prompt("p", history=("hi", "hello")).is_single_user_turn


def test_vote_strength_must_be_on_the_scale() -> None:
    (vote,) = VoteFactory().pair(make_prompt("p"), ["a"], strengths=[2])
    assert vote.strength_label == "much"
    with pytest.raises(InvalidRecordError, match="outside the project's scale"):
        dataclasses.replace(vote, strength=3)
    with pytest.raises(InvalidRecordError, match="outside the project's scale"):
        dataclasses.replace(vote, strength=0, strength_scale=())


def test_vote_choice_and_criteria_are_checked() -> None:
    (vote,) = VoteFactory().pair(make_prompt("p"), ["a"])
    with pytest.raises(InvalidRecordError, match="unknown choice"):
        dataclasses.replace(vote, choice="c")  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError, match="criterion"):
        dataclasses.replace(vote, criteria={"honesty": "both_bad"})
    with pytest.raises(InvalidRecordError, match="shown_left"):
        dataclasses.replace(vote, shown_left="c")  # type: ignore[arg-type]
