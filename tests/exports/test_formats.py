from datetime import datetime, timedelta, timezone

import pytest

from pickwise.exports.dataset.aggregation import AggregationOptions, PreferencePair, aggregate
from pickwise.exports.dataset.formats import (
    ConversationalMismatchError,
    hh_rlhf_row,
    iso_utc,
    kto_rows,
    needs_conversational,
    openai_row,
    trl_row,
    vote_row,
)
from pickwise.exports.dataset.records import InvalidRecordError, PromptRecord
from pickwise.vocabulary import CanonicalSide, Choice
from tests.exports.factory import VoteFactory, make_prompt

SIMPLE = make_prompt("simple", "Name a prime.")
WITH_SYSTEM = make_prompt("system", "Name a prime.", system="Answer in one word.")
MULTI_TURN = make_prompt("multi", "And an even one?", history=("Name a prime.", "Seven."))


def winner_b(prompt: PromptRecord, strengths: list[int | None] | None = None) -> PreferencePair:
    votes = VoteFactory().pair(prompt, ["b", "b", "a"], strengths=strengths or [2, 0, 1])
    (pair,) = aggregate(votes, AggregationOptions())
    return pair


def test_vote_row_has_every_field_with_a_fixed_type() -> None:
    (vote,) = VoteFactory(criteria_names=("accuracy", "clarity", "style")).pair(
        MULTI_TURN,
        ["tie"],
        strengths=[1],
        criteria={"style": "b", "accuracy": "tie"},
        rationale="Both fine.",
        shown_left="b",
        is_gold=True,
    )
    assert vote_row(vote) == {
        "judgment_id": 1001,
        "pair_id": 101,
        "batch_id": 7,
        "prompt_id": "multi",
        "prompt": [
            {"role": "user", "content": "Name a prime."},
            {"role": "assistant", "content": "Seven."},
            {"role": "user", "content": "And an even one?"},
        ],
        "response_a_id": 1011,
        "response_b_id": 1012,
        "model_a": "model-alpha",
        "model_b": "model-beta",
        "response_a": "answer A of pair 101",
        "response_b": "answer B of pair 101",
        "winner": "tie",
        "winner_as_shown": "tie",
        "strength_index": 1,
        "strength_label": "clearly",
        "strength_scale": ["slightly", "clearly", "much"],
        "rationale": "Both fine.",
        "criteria": {"accuracy": "tie", "clarity": "", "style": "b"},
        "rater": "rater-1",
        "shown_left": "b",
        "left_response_id": 1012,
        "shown_at": "2026-03-01T12:00:00.000000Z",
        "submitted_at": "2026-03-01T12:00:30.000000Z",
        "is_gold": True,
        "adjudication": "",
    }


def test_vote_row_uses_empty_values_not_null() -> None:
    (vote,) = VoteFactory().pair(WITH_SYSTEM, ["a"], scale=())
    row = vote_row(vote)
    assert None not in row.values()
    assert row["prompt"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Name a prime."},
    ]
    assert (row["strength_index"], row["strength_label"], row["strength_scale"]) == (-1, "", [])
    assert (row["rationale"], row["criteria"]) == ("", {})


@pytest.mark.parametrize(
    ("choice", "shown_left", "as_shown", "left_id"),
    [
        ("a", "a", "left", 1011),
        ("a", "b", "right", 1012),
        ("b", "a", "right", 1011),
        ("b", "b", "left", 1012),
        ("tie", "b", "tie", 1012),
        ("both_bad", "a", "both_bad", 1011),
    ],
)
def test_vote_row_says_what_the_rater_saw(
    choice: Choice, shown_left: CanonicalSide, as_shown: str, left_id: int
) -> None:
    """The rationale speaks of left and right; the row reads it into A and B."""
    (vote,) = VoteFactory().pair(SIMPLE, [choice], shown_left=shown_left)
    row = vote_row(vote)
    assert (row["winner"], row["shown_left"]) == (choice, shown_left)
    assert row["winner_as_shown"] == as_shown
    assert row["left_response_id"] == left_id
    right_id = 1011 + 1012 - left_id
    if as_shown in ("left", "right"):
        picked = left_id if as_shown == "left" else right_id
        assert picked == row[f"response_{choice}_id"]


def test_a_criterion_outside_the_exports_names_is_refused() -> None:
    with pytest.raises(InvalidRecordError, match="criteria_names"):
        VoteFactory(criteria_names=("style",)).pair(SIMPLE, ["a"], criteria={"tone": "a"})


def test_timestamps_are_fixed_width_utc() -> None:
    paris = timezone(timedelta(hours=2))
    assert iso_utc(datetime(2026, 5, 1, 14, 0, 0, 5, tzinfo=paris)) == "2026-05-01T12:00:00.000005Z"
    assert iso_utc(datetime(2026, 5, 1, 14, 0)) == "2026-05-01T14:00:00.000000Z"


def test_trl_plain_strings() -> None:
    pair = winner_b(SIMPLE)
    assert trl_row(pair, conversational=False) == {
        "prompt": "Name a prime.",
        "chosen": "answer B of pair 101",
        "rejected": "answer A of pair 101",
        # winners said "much" (1.0) and "slightly" (1/3): mean 2/3, times agreement 2/3
        "margin": 0.444444,
    }


def test_trl_conversational_holds_only_the_assistant_turn_in_completions() -> None:
    pair = winner_b(MULTI_TURN)
    assert trl_row(pair, conversational=True) == {
        "prompt": [
            {"role": "user", "content": "Name a prime."},
            {"role": "assistant", "content": "Seven."},
            {"role": "user", "content": "And an even one?"},
        ],
        "chosen": [{"role": "assistant", "content": "answer B of pair 101"}],
        "rejected": [{"role": "assistant", "content": "answer A of pair 101"}],
        "margin": 0.444444,
    }


def test_trl_conversational_puts_the_system_prompt_first() -> None:
    row = trl_row(winner_b(WITH_SYSTEM), conversational=True)
    assert row["prompt"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Name a prime."},
    ]


def test_single_turn_prompts_become_messages_in_a_conversational_export() -> None:
    row = trl_row(winner_b(SIMPLE), conversational=True)
    assert row["prompt"] == [{"role": "user", "content": "Name a prime."}]


@pytest.mark.parametrize("prompt", [WITH_SYSTEM, MULTI_TURN])
def test_string_export_refuses_prompts_that_need_messages(prompt: PromptRecord) -> None:
    pair = winner_b(prompt)
    with pytest.raises(ConversationalMismatchError):
        trl_row(pair, conversational=False)
    with pytest.raises(ConversationalMismatchError):
        kto_rows(pair, conversational=False)


def test_prompts_with_a_system_prompt_or_several_turns_need_messages() -> None:
    assert [needs_conversational(p) for p in (SIMPLE, WITH_SYSTEM, MULTI_TURN)] == [
        False,
        True,
        True,
    ]


def test_trl_margin_is_a_float_even_without_strength() -> None:
    row = trl_row(winner_b(SIMPLE, strengths=[None, None, None]), conversational=False)
    assert row["margin"] == 0.0
    assert isinstance(row["margin"], float)


def test_openai_row() -> None:
    assert openai_row(winner_b(WITH_SYSTEM)) == {
        "input": {
            "messages": [
                {"role": "system", "content": "Answer in one word."},
                {"role": "user", "content": "Name a prime."},
            ]
        },
        "preferred_output": [{"role": "assistant", "content": "answer B of pair 101"}],
        "non_preferred_output": [{"role": "assistant", "content": "answer A of pair 101"}],
    }


def test_hh_rlhf_single_turn() -> None:
    assert hh_rlhf_row(winner_b(SIMPLE)) == {
        "chosen": "\n\nHuman: Name a prime.\n\nAssistant: answer B of pair 101",
        "rejected": "\n\nHuman: Name a prime.\n\nAssistant: answer A of pair 101",
    }


def test_hh_rlhf_multi_turn_shares_everything_up_to_the_last_assistant_turn() -> None:
    row = hh_rlhf_row(winner_b(MULTI_TURN))
    history = "\n\nHuman: Name a prime.\n\nAssistant: Seven.\n\nHuman: And an even one?"
    assert row == {
        "chosen": history + "\n\nAssistant: answer B of pair 101",
        "rejected": history + "\n\nAssistant: answer A of pair 101",
    }
    chosen, rejected = str(row["chosen"]), str(row["rejected"])
    cut = chosen.rindex("\n\nAssistant: ")
    assert chosen[:cut] == rejected[: rejected.rindex("\n\nAssistant: ")]


def test_hh_rlhf_leaves_the_system_prompt_out() -> None:
    row = hh_rlhf_row(winner_b(WITH_SYSTEM))
    assert "Answer in one word." not in str(row["chosen"]) + str(row["rejected"])


def test_kto_plain_rows() -> None:
    assert kto_rows(winner_b(SIMPLE), conversational=False) == (
        {"prompt": "Name a prime.", "completion": "answer B of pair 101", "label": True},
        {"prompt": "Name a prime.", "completion": "answer A of pair 101", "label": False},
    )


def test_kto_conversational_rows() -> None:
    prompt = [{"role": "user", "content": "Name a prime."}]
    assert kto_rows(winner_b(SIMPLE), conversational=True) == (
        {
            "prompt": prompt,
            "completion": [{"role": "assistant", "content": "answer B of pair 101"}],
            "label": True,
        },
        {
            "prompt": prompt,
            "completion": [{"role": "assistant", "content": "answer A of pair 101"}],
            "label": False,
        },
    )
