import pytest

from pickwise.analytics.text_features import (
    FEATURE_NAMES,
    ChoiceRecord,
    choice_pattern_summary,
    text_features,
)

MARKDOWN_ANSWER = """# Setting up

## Steps
1. Install it.
2) Configure it.
- check **the logs** and __the config__
* done

```bash
# a comment, not a heading
- not a list item
sorry, maybe
```
"""


def test_markdown_structure_ignores_fenced_code() -> None:
    features = text_features(MARKDOWN_ANSWER, None)

    assert features["headings"] == 2
    assert features["list_items"] == 4
    assert features["bold"] == 2
    assert features["code_blocks"] == 1
    assert features["hedging"] == 0 and features["apology"] == 0
    assert features["characters"] == len(MARKDOWN_ANSWER)
    assert set(features) == set(FEATURE_NAMES)


def test_words_are_tokens_with_a_letter_or_digit() -> None:
    assert text_features("- one, **two** 3 -- #", None)["words"] == 3
    assert text_features("", None)["words"] == 0


def test_unclosed_fence_runs_to_the_end() -> None:
    features = text_features("Intro\n```\n# code\n- code", None)

    assert (features["code_blocks"], features["headings"], features["list_items"]) == (1, 0, 0)


def test_phrases_are_whole_words_case_insensitive_longest_first() -> None:
    text = (
        "You’re absolutely right, great question! I think it depends. Perhaps mighty "
        "oaks might fall. I'm sorry, I can't help with that. My apologies."
    )

    features = text_features(text, None)

    # "you’re absolutely right" counts once (not also as "absolutely right").
    assert features["agreement"] == 2
    # i think, it depends, perhaps, might — but not "mighty".
    assert features["hedging"] == 4
    assert features["refusal"] == 1
    assert features["apology"] == 2


def test_questions_back_skip_sentences_of_the_prompt() -> None:
    prompt = "What is a monad? Explain simply."
    answer = "What is a monad? It is a pattern. Do you know Haskell? Want examples?"

    assert text_features(answer, prompt)["questions_back"] == 2
    assert text_features(answer, None)["questions_back"] == 3


def test_features_are_deterministic() -> None:
    assert text_features(MARKDOWN_ANSWER, "p") == text_features(MARKDOWN_ANSWER, "p")


def test_choice_pattern_summary_counts() -> None:
    short, long_ = "Yes.", "Yes, and here is a much longer explanation."
    listed = "Options:\n- one\n- two"
    hedged, plain = "It might work, I think.", "It works."
    records = [
        # Picked the longer one, shown on the left.
        ChoiceRecord("q", text_a=long_, text_b=short, choice="a", left_side="a"),
        # Picked the shorter one, shown on the left.
        ChoiceRecord("q", text_a=long_, text_b=short, choice="b", left_side="b"),
        # Picked the listed (and longer) one, shown on the right.
        ChoiceRecord("q", text_a=plain, text_b=listed, choice="b", left_side="a"),
        # Picked the hedged (and longer) one, shown on the right.
        ChoiceRecord("q", text_a=hedged, text_b=plain, choice="a", left_side="b"),
        # Ties and both-bad never count.
        ChoiceRecord("q", text_a=long_, text_b=short, choice="tie", left_side="a"),
        ChoiceRecord("q", text_a=hedged, text_b=plain, choice="both_bad", left_side="a"),
    ]

    lines = {line.key: line for line in choice_pattern_summary(records)}

    assert list(lines) == ["longer", "structured", "hedged", "agreeing", "left"]
    assert (lines["longer"].chosen_count, lines["longer"].eligible_count) == (3, 4)
    assert lines["longer"].share == pytest.approx(0.75)
    assert (lines["structured"].chosen_count, lines["structured"].eligible_count) == (1, 1)
    assert (lines["hedged"].chosen_count, lines["hedged"].eligible_count) == (1, 1)
    assert (lines["agreeing"].chosen_count, lines["agreeing"].eligible_count) == (0, 0)
    assert lines["agreeing"].share is None
    assert (lines["left"].chosen_count, lines["left"].eligible_count) == (2, 4)
    assert lines["left"].label == "Picked the answer shown on the left"
