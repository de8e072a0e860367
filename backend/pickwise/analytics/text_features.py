"""Deterministic, documented text features of an answer, and a rater's choice patterns.

The same definitions feed the leaderboard's style control, the "what the preferences teach"
model and the rating page's private "what your choices teach" summary, so a number means the
same thing everywhere. Definitions (docs/analytics.md repeats them):

- words: whitespace-separated tokens with at least one letter or digit, in the whole answer
  (our stand-in for tokens; markdown markers such as "-" or "#" alone are not words).
- characters: length of the answer in Unicode code points.
- code_blocks: fenced blocks (``` or ~~~, up to 3 spaces indent); an unclosed fence runs to
  the end, as in CommonMark. The markdown and phrase counts below ignore fenced code.
- list_items: lines starting with "-", "*", "+" or "1." / "1)" followed by a space.
- headings: ATX headings, lines starting with 1-6 "#" and a space.
- bold: **text** or __text__ spans on one line.
- hedging, refusal, apology, agreement: case-insensitive occurrences of the phrase lists
  below, matched as whole words, longest phrase first, without overlaps (’ counts as ').
- questions_back: sentences ending in "?" that do not repeat a sentence of the prompt.
"""

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import numpy as np

from pickwise.analytics.arrays import FloatArray, IntArray, as_float_array, as_int_array

HEDGING_PHRASES = (
    "might",
    "perhaps",
    "possibly",
    "probably",
    "maybe",
    "likely",
    "i think",
    "i believe",
    "i'm not sure",
    "i am not sure",
    "not entirely sure",
    "it depends",
    "it seems",
    "it appears",
    "could be",
    "may be",
    "in some cases",
    "to some extent",
)
REFUSAL_PHRASES = (
    "i can't help",
    "i cannot help",
    "i can't assist",
    "i cannot assist",
    "i can't provide",
    "i cannot provide",
    "i can't do that",
    "i'm unable to",
    "i am unable to",
    "i'm not able to",
    "i am not able to",
    "i must decline",
    "i can't comply",
    "i cannot comply",
)
APOLOGY_PHRASES = ("sorry", "i apologize", "i apologise", "my apologies", "apologies")
# Sycophancy markers: agreeing with or flattering the user rather than answering.
AGREEMENT_PHRASES = (
    "you're right",
    "you are right",
    "you're absolutely right",
    "you are absolutely right",
    "you're correct",
    "you are correct",
    "that's right",
    "that's correct",
    "i agree",
    "great question",
    "good question",
    "excellent question",
    "great point",
    "good point",
)

FEATURE_NAMES = (
    "words",
    "characters",
    "list_items",
    "headings",
    "bold",
    "code_blocks",
    "hedging",
    "refusal",
    "apology",
    "agreement",
    "questions_back",
)

_FENCED_BLOCK = re.compile(
    r"^ {0,3}(`{3,}|~{3,})[^\n]*\n?.*?(?:^ {0,3}\1[ \t]*$|\Z)", re.MULTILINE | re.DOTALL
)
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+\S", re.MULTILINE)
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+\S", re.MULTILINE)
_BOLD = re.compile(r"\*\*(?=\S)[^*\n]+?\*\*|__(?=\S)[^_\n]+?__")
# Both start a match only where a sentence (a token) starts: unanchored, a long run without
# "?" (without a letter or digit) was retried from every position inside it, quadratic time.
_QUESTION = re.compile(r"(?<![^.!?\n])[^.!?\n]*\?")
_WORD = re.compile(r"(?<!\S)\S*\w\S*")


def _phrase_pattern(phrases: Sequence[str]) -> re.Pattern[str]:
    longest_first = sorted(phrases, key=len, reverse=True)
    alternatives = "|".join(re.escape(phrase) for phrase in longest_first)
    # The engine tries the alternation at every position of the text; a class of the
    # phrases' first letters in front lets it pass the positions where none can start
    # (1.5-2x faster on answers). The same matches: under IGNORECASE a letter and the class
    # of that letter match the same code points (a test checks them all).
    first_letters = "".join(sorted({re.escape(phrase[0]) for phrase in phrases}))
    return re.compile(rf"(?=[{first_letters}])(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


_HEDGING = _phrase_pattern(HEDGING_PHRASES)
_REFUSAL = _phrase_pattern(REFUSAL_PHRASES)
_APOLOGY = _phrase_pattern(APOLOGY_PHRASES)
_AGREEMENT = _phrase_pattern(AGREEMENT_PHRASES)


# The markdown counts of many answers at once (``markdown_style_counts``). Answers are joined
# with "\n", which none of these patterns can match across, and which behaves like the start /
# end of an answer for "^" (hence the "\n" prefixes, which also give the regex engine a literal
# to skip to) and for the whitespace look-arounds.
# Two literal patterns: the regex engine skips to a literal fast, an alternation it tries
# at every position (30x slower here).
_BACKTICKS = re.compile("```")
_TILDES = re.compile("~~~")
_LIST_ITEM_AFTER_NEWLINE = re.compile(r"\n[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+\S")
_HEADING_AFTER_NEWLINE = re.compile(r"\n {0,3}#{1,6}[ \t]+\S")
# A whitespace-separated token without a letter or digit ("-", "#", "**"): tokens minus these
# are the words. str.split() and \s agree on what whitespace is (a test checks every code
# point), and split is several times faster than matching the words themselves.
_NON_WORD_TOKEN = re.compile(r"\s[^\w\s]+(?!\S)")
MARKDOWN_STYLE_FEATURES = ("words", "headings", "list_items", "bold")


def _matches_per_answer(pattern: re.Pattern[str], joined: str, starts: IntArray) -> IntArray:
    """Matches of ``pattern`` in ``joined`` counted per answer (``starts``: answer offsets)."""
    positions = as_int_array([match.start() for match in pattern.finditer(joined)])
    answer = np.searchsorted(starts, positions, side="right") - 1
    return as_int_array(np.bincount(answer, minlength=len(starts)))


def _joined(texts: Sequence[str]) -> tuple[str, IntArray]:
    lengths = as_int_array([len(text) for text in texts])
    starts = np.zeros(len(texts), dtype=np.int64)
    np.cumsum(lengths[:-1] + 1, out=starts[1:])
    return "\n".join(texts), starts


def markdown_style_counts(texts: Sequence[str]) -> IntArray:
    """``text_features``' words, headings, list_items and bold (in that order, answers ×
    4) for many answers, by a few scans of all of them joined instead of 11 patterns each.

    Same definitions, same numbers (tests compare the two on many texts); about 15x faster.
    """
    if not texts:
        return np.zeros((0, len(MARKDOWN_STYLE_FEATURES)), dtype=np.int64)
    joined, starts = _joined(texts)
    tokens = as_int_array([len(text.split()) for text in texts])
    words = tokens - _matches_per_answer(_NON_WORD_TOKEN, " " + joined, starts)
    # Fenced code does not count for the markdown features; only answers with a possible
    # fence need the (slower) exact fence pattern.
    fences = _matches_per_answer(_BACKTICKS, joined, starts)
    fences += _matches_per_answer(_TILDES, joined, starts)
    fenced = np.flatnonzero(fences)
    if len(fenced):
        prose = list(texts)
        for index in fenced.tolist():
            prose[index] = _FENCED_BLOCK.sub("\n", texts[index])
        joined, starts = _joined(prose)
    headings = _matches_per_answer(_HEADING_AFTER_NEWLINE, "\n" + joined, starts)
    list_items = _matches_per_answer(_LIST_ITEM_AFTER_NEWLINE, "\n" + joined, starts)
    bold = _matches_per_answer(_BOLD, joined, starts)
    return as_int_array(np.column_stack([words, headings, list_items, bold]))


_PHRASES = (
    ("hedging", _HEDGING),
    ("refusal", _REFUSAL),
    ("apology", _APOLOGY),
    ("agreement", _AGREEMENT),
)


def text_features_of(texts: Sequence[str], prompts: Sequence[str | None]) -> FloatArray:
    """``text_features`` of many answers (answers × FEATURE_NAMES), each with its prompt.

    The markdown counts come from ``markdown_style_counts``, the phrases from one scan of
    all answers joined per phrase list, and the fenced blocks and questions back are looked
    for only in answers that can have them. Same numbers (tests compare the two).
    """
    features = np.zeros((len(texts), len(FEATURE_NAMES)))
    if not texts:
        return as_float_array(features)
    column = FEATURE_NAMES.index
    markdown = markdown_style_counts(texts)
    for position, name in enumerate(MARKDOWN_STYLE_FEATURES):
        features[:, column(name)] = markdown[:, position]
    features[:, column("characters")] = [len(text) for text in texts]
    for index, text in enumerate(texts):
        if _may_fence(text):
            features[index, column("code_blocks")] = len(_FENCED_BLOCK.findall(text))
    prose = [_prose(text) for text in texts]
    joined, starts = _joined(prose)
    for name, pattern in _PHRASES:
        features[:, column(name)] = _matches_per_answer(pattern, joined, starts)
    for index, (text, prompt) in enumerate(zip(prose, prompts, strict=True)):
        if "?" in text:
            features[index, column("questions_back")] = _questions_back(text, prompt)
    return as_float_array(features)


def _may_fence(text: str) -> bool:
    return "```" in text or "~~~" in text


def _prose(text: str) -> str:
    """The text the phrase and markdown counts look at: fenced code blocks left out (a line
    break each) and typographic apostrophes made plain."""
    if _may_fence(text):
        text = _FENCED_BLOCK.sub("\n", text)
    return text.replace("\u2019", "'")


def _normalize_sentence(sentence: str) -> str:
    return " ".join(sentence.lower().split())


def _questions_back(prose: str, prompt: str | None) -> int:
    questions = [_normalize_sentence(match) for match in _QUESTION.findall(prose)]
    questions = [question for question in questions if question != "?"]
    if prompt is None:
        return len(questions)
    # An answer that quotes the user's own question is not asking anything back.
    asked_by_user = _normalize_sentence(prompt.replace("\u2019", "'"))
    return sum(1 for question in questions if question not in asked_by_user)


def text_features(text: str, prompt: str | None) -> dict[str, float]:
    """Counts for one answer; keys are FEATURE_NAMES (see the module docstring)."""
    code_blocks = _FENCED_BLOCK.findall(text)
    prose = _prose(text)
    return {
        "words": float(len(_WORD.findall(text))),
        "characters": float(len(text)),
        "list_items": float(len(_LIST_ITEM.findall(prose))),
        "headings": float(len(_HEADING.findall(prose))),
        "bold": float(len(_BOLD.findall(prose))),
        "code_blocks": float(len(code_blocks)),
        "hedging": float(len(_HEDGING.findall(prose))),
        "refusal": float(len(_REFUSAL.findall(prose))),
        "apology": float(len(_APOLOGY.findall(prose))),
        "agreement": float(len(_AGREEMENT.findall(prose))),
        "questions_back": float(_questions_back(prose, prompt)),
    }


@dataclass(frozen=True)
class ChoiceRecord:
    """One judgment as the pattern summary and the preference model need it."""

    prompt: str
    text_a: str
    text_b: str
    choice: str  # "a", "b", "tie" or "both_bad", relative to the canonical A / B
    left_side: str  # "a" or "b": which answer was shown on the left


@dataclass(frozen=True)
class PatternLine:
    key: str
    label: str
    chosen_count: int  # times the picked answer was the one with more of the feature
    eligible_count: int  # A/B choices where the two answers differ on the feature
    share: float | None  # chosen / eligible; None without eligible choices


class SummaryFeatures(NamedTuple):
    """The features the summary's lines compare: ``text_features``' values of these names.
    None depends on the prompt."""

    words: int
    list_items: int
    headings: int
    hedging: int
    agreement: int


_PATTERNS: tuple[tuple[str, str, Callable[[SummaryFeatures], float]], ...] = (
    ("longer", "Picked the longer answer", lambda f: f.words),
    (
        "structured",
        "Picked the answer with lists or headings",
        lambda f: float(f.list_items + f.headings > 0),
    ),
    ("hedged", "Picked the more hedged answer", lambda f: f.hedging),
    ("agreeing", "Picked the answer that agrees with the user", lambda f: f.agreement),
)


class FeaturedChoice(NamedTuple):
    """A choice with the summary's features of its two answers (see ChoiceRecord)."""

    features_a: SummaryFeatures
    features_b: SummaryFeatures
    choice: str
    left_side: str


def choice_pattern_summary(records: Sequence[ChoiceRecord]) -> list[PatternLine]:
    """How often the picked answer was the longer / structured / hedged / agreeing / left one.

    Only A or B choices count; a feature line counts only pairs whose answers differ on it.
    """
    decisive = [record for record in records if record.choice in ("a", "b")]
    return pattern_lines(
        [
            FeaturedChoice(
                _kept_summary_features(r.text_a),
                _kept_summary_features(r.text_b),
                r.choice,
                r.left_side,
            )
            for r in decisive
        ]
    )


def pattern_lines(choices: Sequence[FeaturedChoice]) -> list[PatternLine]:
    """`choice_pattern_summary` of choices whose answers' features are known already."""
    decisive = [choice for choice in choices if choice.choice in ("a", "b")]
    lines = []
    for key, label, value in _PATTERNS:
        chosen = eligible = 0
        for each in decisive:
            value_a, value_b = value(each.features_a), value(each.features_b)
            if value_a == value_b:
                continue
            eligible += 1
            chosen += (value_a > value_b) == (each.choice == "a")
        lines.append(_pattern_line(key, label, chosen, eligible))
    picked_left = sum(each.choice == each.left_side for each in decisive)
    lines.append(
        _pattern_line("left", "Picked the answer shown on the left", picked_left, len(decisive))
    )
    return lines


PatternValues = tuple[float, ...]  # an answer's value of each of `_PATTERNS`, in order
# What names an answer: a stored answer's id, or a digest of its text (see `_kept_features`).
AnswerKey = TypeVar("AnswerKey", int, bytes)


def pattern_values(features: SummaryFeatures) -> PatternValues:
    return tuple(float(value(features)) for _, _, value in _PATTERNS)


def pattern_lines_of_answers(
    choices: Sequence[tuple[AnswerKey, AnswerKey, str, str]],
    values: Mapping[AnswerKey, PatternValues],
) -> list[PatternLine]:
    """`pattern_lines` of (answer A, answer B, choice, side shown left) whose answers'
    `pattern_values` are in `values`: the same lines, counted for all patterns at once over
    arrays (a summary counts up to 500 choices every so many judgments; ~10x faster than a
    Python loop per pattern and choice)."""
    decisive = [(a, b, choice, left) for a, b, choice, left in choices if choice in ("a", "b")]
    width = len(_PATTERNS)
    values_a = np.array([values[a] for a, _, _, _ in decisive], dtype=float).reshape(-1, width)
    values_b = np.array([values[b] for _, b, _, _ in decisive], dtype=float).reshape(-1, width)
    picked_a = np.array([choice == "a" for _, _, choice, _ in decisive], dtype=bool)
    differ = values_a != values_b
    picked_more = (values_a > values_b) == picked_a[:, np.newaxis]
    eligible = differ.sum(axis=0).tolist()
    chosen = (differ & picked_more).sum(axis=0).tolist()
    lines = [
        _pattern_line(key, label, chosen[at], eligible[at])
        for at, (key, label, _) in enumerate(_PATTERNS)
    ]
    picked_left = sum(choice == left for _, _, choice, left in decisive)
    lines.append(
        _pattern_line("left", "Picked the answer shown on the left", picked_left, len(decisive))
    )
    return lines


def _word_count(text: str) -> int:
    """``text_features``' words, counted as ``markdown_style_counts`` counts them: the
    whitespace-separated tokens less those without a letter or digit (~4x faster than
    matching the words; tests compare the two)."""
    return len(text.split()) - len(_NON_WORD_TOKEN.findall(" " + text))


def summary_features(text: str) -> SummaryFeatures:
    """The summary's features of one answer (the same counts as ``text_features``), without
    the scans it does not need: about 60 µs an answer of a hundred words instead of 100."""
    prose = _prose(text)
    return SummaryFeatures(
        words=_word_count(text),
        list_items=len(_LIST_ITEM.findall(prose)),
        headings=len(_HEADING.findall(prose)),
        hedging=len(_HEDGING.findall(prose)),
        agreement=len(_AGREEMENT.findall(prose)),
    )


# A rater's summary comes back every 20 judgments over their last 500 choices (1,000
# answers), all but the newest looked at the time before, and each pair's answers are in its
# k raters' summaries. With 16 such raters at k = 3 (5,500 answers), a cache of 4,096 texts
# thrashed: ~48 ms of CPU a summary, 2.4 ms per judgment of the page loop (kept: 1.8 ms).
# So each process keeps the features of the answers it has scanned, keyed by a digest of the
# text (not the text: an edited answer is a new key, and the cache holds no texts), ~250
# bytes an answer: FEATURES_KEPT covers the windows of ~100 raters at k = 3.
# The summary runs in worker threads, hence the lock.
FEATURES_KEPT = 32_768
# Keys: a digest of the text (bytes), or a stored answer's id (int), whose text never changes:
# the summary asks by id, so the texts it has seen are not read from Postgres again.
# Each with its `pattern_values`, which the summary counts with.
_kept_features: OrderedDict[bytes | int, tuple[SummaryFeatures, PatternValues]] = OrderedDict()
_kept_lock = threading.Lock()


def kept_features(key: bytes | int) -> SummaryFeatures | None:
    """The features kept under `key`, if still kept."""
    with _kept_lock:
        kept = _kept_features.get(key)
        if kept is not None:
            _kept_features.move_to_end(key)
        return None if kept is None else kept[0]


def kept_pattern_values(keys: Iterable[AnswerKey]) -> dict[AnswerKey, PatternValues]:
    """The `pattern_values` kept under those of `keys` still kept (in one hold of the lock:
    a summary asks for up to 1,000 answers)."""
    found: dict[AnswerKey, PatternValues] = {}
    with _kept_lock:
        for key in keys:
            kept = _kept_features.get(key)
            if kept is not None:
                _kept_features.move_to_end(key)
                found[key] = kept[1]
    return found


def keep_features(key: bytes | int, text: str) -> SummaryFeatures:
    """`summary_features` of `text`, kept under `key` with their `pattern_values`."""
    features = summary_features(text)
    values = pattern_values(features)
    with _kept_lock:
        _kept_features[key] = (features, values)
        while len(_kept_features) > FEATURES_KEPT:
            _kept_features.popitem(last=False)
    return features


def _kept_summary_features(text: str) -> SummaryFeatures:
    key = hashlib.blake2b(text.encode(errors="surrogatepass"), digest_size=16).digest()
    return kept_features(key) or keep_features(key, text)


def forget_kept_features() -> None:
    """Empties the per-process cache (tests)."""
    with _kept_lock:
        _kept_features.clear()


def _pattern_line(key: str, label: str, chosen: int, eligible: int) -> PatternLine:
    share = chosen / eligible if eligible else None
    return PatternLine(key, label, chosen, eligible, share)
