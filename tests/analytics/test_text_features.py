import random
import re
import sys
from collections.abc import Iterator

import pytest

from pickwise.analytics import text_features as text_features_module
from pickwise.analytics.text_features import (
    FEATURE_NAMES,
    MARKDOWN_STYLE_FEATURES,
    ChoiceRecord,
    FeaturedChoice,
    SummaryFeatures,
    choice_pattern_summary,
    forget_kept_features,
    markdown_style_counts,
    pattern_lines,
    pattern_lines_of_answers,
    pattern_values,
    summary_features,
    text_features,
    text_features_of,
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


# --- the batched markdown counts equal text_features ----------------------------------------

EDGE_CASES = [
    "",
    " ",
    "\n",
    "word",
    "-",
    "- ",
    "- item",
    "-item",
    "  - item",
    "\t* item",
    "+ x",
    "1. one",
    "1) one",
    "123456789. nine digits is a list item",
    "1234567890. ten digits is not",
    "12.x",
    "# h",
    "#h",
    "    # four spaces",
    "   ### three spaces",
    "####### seven",
    "#\ttab",
    "# ",
    "**bold**",
    "** not bold**",
    "**a** **b**",
    "****",
    "**a __b** c__",
    "__a__",
    "__ a__",
    "**unclosed",
    "**multi\nline**",
    "**_**",
    "_ __ ___",
    "```\n# in code\n- in code\n**b**\n```\n# after",
    "```python\n- unclosed fence runs to the end",
    "~~~\n# x\n~~~\n- y",
    "  ```\n- z\n  ```\n- after",
    "````\n```\n- still code\n````\n- out",
    "``` not a fence in the middle ``` # not a heading",
    "a ``` b\n- item",
    "text\n```",
    "- -- ---",
    "— dash words —",
    "a\r\n- b\r\n# c\r\n",
    "x\x1c- y",
    "x\u2028- y\u2029# z",
    "\xa0- nbsp",
    "\u3000# ideographic space",
    "é ü 中文 ١٢٣ ٫",
    "1.\n2.",
    "- \n- a",
    "text\n\n\n- a\n\n## b\n",
    "it\u2019s **you\u2019re** right",
    "trailing ",
    "\n\n- leading newlines",
]
_FRAGMENTS = (
    "word",
    "Wörd",
    "42",
    "x_y",
    "-",
    "*",
    "+",
    "#",
    "##",
    "**",
    "__",
    "_",
    "`",
    "```",
    "~~~",
    "1.",
    "2)",
    "?",
    ".",
    "—",
    "\u2019",
    " ",
    "  ",
    "    ",
    "\t",
    "\n",
    "\n\n",
    "\r",
    "\xa0",
    "\u3000",
    "\x1f",
    "\u2028",
)


def _generated_markdown(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        pieces = rng.choices(_FRAGMENTS, k=rng.randint(0, 60))
        texts.append("".join(pieces))
    return texts


def _expected(texts: list[str]) -> list[list[float]]:
    return [[text_features(text, None)[name] for name in MARKDOWN_STYLE_FEATURES] for text in texts]


def test_markdown_style_counts_equal_text_features() -> None:
    texts = [*EDGE_CASES, MARKDOWN_ANSWER, *_generated_markdown(3000, seed=11)]

    together = markdown_style_counts(texts)

    assert together.shape == (len(texts), 4)
    assert together.tolist() == _expected(texts)
    # Each answer alone too: nothing may depend on the neighbours in a batch.
    for text in EDGE_CASES:
        assert markdown_style_counts([text]).tolist() == _expected([text])


def test_markdown_style_counts_of_no_answers() -> None:
    assert markdown_style_counts([]).shape == (0, 4)


def test_str_split_and_regex_agree_on_whitespace() -> None:
    # markdown_style_counts counts tokens with str.split(); text_features with \s.
    disagreeing = [
        code
        for code in range(sys.maxunicode + 1)
        if (re.fullmatch(r"\s", chr(code)) is not None) != chr(code).isspace()
    ]
    assert disagreeing == []


def test_text_features_of_many_answers_equal_text_features_one_by_one() -> None:
    rng = random.Random(5)
    phrases = [
        "Maybe", "I'm not sure", "I\u2019m unable to", "sorry", "You're right", "great question",
        "Is it?", "What is the capital?", "```\nsorry in code\n```", "~~~\nx?\n~~~",
    ]  # fmt: skip
    texts = [*EDGE_CASES, MARKDOWN_ANSWER, *_generated_markdown(1500, seed=12)]
    texts += [
        " ".join(rng.choices(phrases + list(_FRAGMENTS), k=rng.randint(0, 30))) for _ in range(1500)
    ]
    prompts = [rng.choice([None, "What is the capital?", "Is it?", "hello"]) for _ in texts]

    together = text_features_of(texts, prompts)

    expected = [
        [text_features(text, prompt)[name] for name in FEATURE_NAMES]
        for text, prompt in zip(texts, prompts, strict=True)
    ]
    assert together.tolist() == expected
    assert text_features_of([], []).shape == (0, len(FEATURE_NAMES))


def test_summary_features_are_the_text_features_of_their_names() -> None:
    rng = random.Random(7)
    phrases = [
        "Maybe", "perhaps", "I\u2019m not sure", "You\u2019re right", "great question", "I agree",
        "```\nmaybe in code\n```", "~~~\n- not an item\n~~~", "# Title", "1. one", "**b**",
    ]  # fmt: skip
    texts = [*EDGE_CASES, MARKDOWN_ANSWER, *_generated_markdown(1500, seed=13)]
    texts += [
        " ".join(rng.choices(phrases + list(_FRAGMENTS), k=rng.randint(0, 30))) for _ in range(1500)
    ]

    for text in texts:
        full = text_features(text, None)
        expected = SummaryFeatures(*(int(full[name]) for name in SummaryFeatures._fields))
        assert summary_features(text) == expected, text


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The answers the summary scanned (each scan recorded), from an empty cache."""
    scanned: list[str] = []

    def counted(text: str) -> SummaryFeatures:
        scanned.append(text)
        return summary_features(text)

    forget_kept_features()
    monkeypatch.setattr(text_features_module, "summary_features", counted)
    yield scanned
    forget_kept_features()


def test_the_summary_keeps_the_features_of_answers_it_has_seen(scans: list[str]) -> None:
    # Each summary looks at the rater's last choices again: answers seen before are not
    # scanned again, long ones included (the cache keeps a digest, not the text).
    long_ = "Yes, " + "and more " * 2_000
    records = [
        ChoiceRecord("q", text_a="Yes, and more.", text_b="Yes.", choice="a", left_side="a"),
        ChoiceRecord("q", text_a=long_, text_b="Yes.", choice="b", left_side="a"),
        ChoiceRecord("other q", text_a=long_, text_b="No.", choice="a", left_side="b"),
    ]

    first = choice_pattern_summary(records)
    second = choice_pattern_summary(records)

    assert first == second
    assert sorted(scans) == sorted(["Yes, and more.", "Yes.", long_, "No."])


def test_an_edited_answer_is_scanned_afresh(scans: list[str]) -> None:
    plain, hedged = "It is blue.", "It might be blue, perhaps."
    before = [ChoiceRecord("q", text_a=plain, text_b="It is.", choice="a", left_side="a")]
    edited = [ChoiceRecord("q", text_a=hedged, text_b="It is.", choice="a", left_side="a")]

    lines_before = {line.key: line for line in choice_pattern_summary(before)}
    lines_after = {line.key: line for line in choice_pattern_summary(edited)}

    assert (lines_before["hedged"].eligible_count, lines_after["hedged"].chosen_count) == (0, 1)
    assert scans == [plain, "It is.", hedged]


def test_the_kept_features_are_bounded(scans: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_features_module, "FEATURES_KEPT", 3)
    answers = [f"Answer number {n}." for n in range(6)]
    records = [
        ChoiceRecord("q", text_a=answers[n], text_b=answers[n + 1], choice="a", left_side="a")
        for n in range(0, 6, 2)
    ]

    choice_pattern_summary(records)
    choice_pattern_summary(records[-1:])  # the newest two are still kept
    choice_pattern_summary(records[:1])  # the oldest were let go: scanned again

    assert len(text_features_module._kept_features) == 3
    assert scans == [*answers, answers[0], answers[1]]


def test_the_phrase_patterns_match_what_their_phrases_alone_match() -> None:
    # Each phrase pattern starts with a class of its phrases' first letters, so the engine
    # passes positions where no phrase starts. Under IGNORECASE a letter and its class match
    # the same code points (all of them checked), so the matches are those of the phrases.
    every_character = "".join(map(chr, [*range(0xD800), *range(0xE000, 0x110000)]))
    lists = {
        "hedging": (text_features_module.HEDGING_PHRASES, text_features_module._HEDGING),
        "refusal": (text_features_module.REFUSAL_PHRASES, text_features_module._REFUSAL),
        "apology": (text_features_module.APOLOGY_PHRASES, text_features_module._APOLOGY),
        "agreement": (text_features_module.AGREEMENT_PHRASES, text_features_module._AGREEMENT),
    }
    rng = random.Random(17)
    pieces = [
        *_FRAGMENTS, "MIGHT", "Perhaps,", "maybe.", "xmaybe", "maybex", "\u0130 think",
        "\u017forry", "\u212along", "i\u2019m not sure", "You're Right!", "I AGREE", "apologies",
        "sorry_", "_sorry",
    ]  # fmt: skip
    texts = [" ".join(rng.choices(pieces, k=rng.randint(0, 40))) for _ in range(3000)]
    for name, (phrases, pattern) in lists.items():
        for letter in {phrase[0] for phrase in phrases}:
            alone = [m.start() for m in re.finditer(letter, every_character, re.IGNORECASE)]
            in_class = re.finditer(f"[{letter}]", every_character, re.IGNORECASE)
            assert alone == [m.start() for m in in_class], (name, letter)
        alternatives = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
        plain = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
        assert pattern.pattern != plain.pattern
        for text in texts:
            found = [m.span() for m in pattern.finditer(text)]
            assert found == [m.span() for m in plain.finditer(text)], (name, text)


def test_the_summarys_counts_over_arrays_are_pattern_lines() -> None:
    # The summary counts by answer with each answer's pattern values (`kept_pattern_values`):
    # the same lines as `pattern_lines` over the features, on choices with ties, "both
    # bad", answers equal on some features, the same answer in many choices, and none.
    rng = random.Random(5)
    features = {
        answer: SummaryFeatures(
            words=rng.choice([3, 3, 10, 40]),
            list_items=rng.choice([0, 0, 2]),
            headings=rng.choice([0, 1]),
            hedging=rng.choice([0, 1, 1, 3]),
            agreement=rng.choice([0, 0, 1]),
        )
        for answer in range(60)
    }
    values = {answer: pattern_values(each) for answer, each in features.items()}
    for size in (0, 1, 2, 7, 500, 1200):
        rows = [
            (
                rng.randrange(60),
                rng.randrange(60),
                rng.choice(["a", "b", "a", "b", "tie", "both_bad"]),
                rng.choice(["a", "b"]),
            )
            for _ in range(size)
        ]
        expected = pattern_lines(
            [FeaturedChoice(features[a], features[b], choice, left) for a, b, choice, left in rows]
        )
        assert pattern_lines_of_answers(rows, values) == expected, size
    undecided = [(1, 2, "tie", "a"), (3, 4, "both_bad", "b")]
    lines = pattern_lines_of_answers(undecided, values)
    assert [(line.chosen_count, line.eligible_count, line.share) for line in lines] == [
        (0, 0, None)
    ] * 5


def test_kept_pattern_values_are_those_of_the_kept_features() -> None:
    forget_kept_features()
    texts = {1: MARKDOWN_ANSWER, 2: "I think you're right.", 3: "Yes."}
    for key, text in texts.items():
        text_features_module.keep_features(key, text)
    kept = text_features_module.kept_pattern_values([1, 2, 3, 4])
    assert kept == {key: pattern_values(summary_features(text)) for key, text in texts.items()}
    forget_kept_features()
