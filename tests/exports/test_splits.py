"""The train/test split goes by conversation (system prompt and turns, whitespace-normalised),
never by row or by prompt id, so the same conversation under two ids is never in both."""

import hashlib
import json
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pickwise.batches.parsing.records import Message
from pickwise.exports.dataset.formats import ExportFormat
from pickwise.exports.dataset.pipeline import ExportOptions
from pickwise.exports.dataset.records import InvalidExportOptions, PromptRecord, VoteRecord
from pickwise.exports.dataset.splits import (
    Split,
    normalize_whitespace,
    prompt_bucket,
    split_for_prompt,
    split_unit,
)
from pickwise.exports.dataset.writer import ExportWriter
from pickwise.vocabulary import TurnRole
from tests.exports.factory import VoteFactory, make_prompt
from tests.exports.helpers import read_lines, read_manifest

PROMPTS = [make_prompt(f"prompt-{index}", f"Question {index}?") for index in range(2000)]


def test_bucket_is_the_documented_sha256_prefix() -> None:
    prompt = make_prompt("any-id", "  Plan a\tday\n in Lyon. ", system=" Be  brief.", history=[])
    key = json.dumps([["Be brief.", [["user", "Plan a day in Lyon."]]], 7], ensure_ascii=False)
    digest = hashlib.sha256(key.encode()).digest()
    assert prompt_bucket(prompt, 7) == int.from_bytes(digest[:8], "big") / 2**64


def test_the_id_does_not_matter_and_whitespace_is_normalised() -> None:
    one = make_prompt("q-1", "What is\n\nthe capital?", system="Be brief.")
    other = make_prompt("zz-999", "  What is the   capital?\t", system="Be brief. ")
    different = make_prompt("q-1", "What is the capital!", system="Be brief.")
    no_system = make_prompt("q-2", "What is the capital?", system="")
    none_system = make_prompt("q-3", "What is the capital?", system=None)
    for seed in range(50):
        assert prompt_bucket(one, seed) == prompt_bucket(other, seed)
        assert prompt_bucket(no_system, seed) == prompt_bucket(none_system, seed)
    assert prompt_bucket(one, 0) != prompt_bucket(different, 0)


def test_split_is_deterministic_and_close_to_the_fraction() -> None:
    first = [split_for_prompt(p, test_fraction=0.2, seed=1) for p in PROMPTS]
    again = [split_for_prompt(p, test_fraction=0.2, seed=1) for p in PROMPTS]
    assert first == again
    share = first.count(Split.TEST) / len(PROMPTS)
    assert 0.17 < share < 0.23


def test_seed_changes_the_split() -> None:
    one = [split_for_prompt(p, test_fraction=0.5, seed=1) for p in PROMPTS]
    two = [split_for_prompt(p, test_fraction=0.5, seed=2) for p in PROMPTS]
    assert one != two


def test_a_larger_fraction_only_moves_prompts_into_test() -> None:
    small = {
        p.external_id
        for p in PROMPTS
        if split_for_prompt(p, test_fraction=0.1, seed=0) is Split.TEST
    }
    large = {
        p.external_id
        for p in PROMPTS
        if split_for_prompt(p, test_fraction=0.3, seed=0) is Split.TEST
    }
    assert small < large


def test_edge_fractions() -> None:
    assert {split_for_prompt(p, test_fraction=0.0, seed=0) for p in PROMPTS} == {Split.TRAIN}
    assert {split_for_prompt(p, test_fraction=1.0, seed=0) for p in PROMPTS} == {Split.TEST}
    with pytest.raises(InvalidExportOptions):
        split_for_prompt(PROMPTS[0], test_fraction=1.5, seed=0)


# --- property: repeated conversations under new ids ---------------------------------------

words = st.text(alphabet="abcxyz?!é \t\n", min_size=1, max_size=12).filter(str.strip)
spacing = st.sampled_from(["", " ", "  ", "\n", "\t ", " \n\n "])


@st.composite
def repeated_prompts(draw: st.DrawFn) -> list[tuple[int, PromptRecord]]:
    """Conversations, each imported under one to four ids with its whitespace changed; the
    ids are shuffled so that copies of a conversation are far apart in id order."""
    conversations = draw(
        st.lists(
            st.tuples(
                st.one_of(st.none(), words),
                # Turns alternate user, assistant, ... and end on a user turn: odd lengths.
                st.sampled_from([1, 3]).flatmap(lambda n: st.lists(words, min_size=n, max_size=n)),
            ),
            min_size=1,
            max_size=12,
            unique_by=lambda c: (
                normalize_whitespace(c[0] or ""),
                tuple(normalize_whitespace(t) for t in c[1]),
            ),
        )
    )
    copies: list[tuple[int, str | None, list[str]]] = []
    for number, (system, texts) in enumerate(conversations):
        for _ in range(draw(st.integers(1, 4))):
            pad = draw(spacing)
            copies.append(
                (
                    number,
                    None if system is None else pad + system + pad,
                    [
                        pad + text.replace(" ", draw(st.sampled_from([" ", "  ", "\n"]))) + pad
                        for text in texts
                    ],
                )
            )
    ids = draw(st.permutations([f"id-{index:03d}" for index in range(len(copies))]))
    prompts = []
    for external_id, (number, system, texts) in zip(ids, copies, strict=True):
        prompts.append(
            (number, make_prompt(external_id, texts[-1], system=system, history=texts[:-1]))
        )
    return sorted(prompts, key=lambda item: item[1].external_id)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    prompts=repeated_prompts(),
    test_fraction=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31),
    export_format=st.sampled_from([ExportFormat.TRL, ExportFormat.VOTES, ExportFormat.KTO]),
)
def test_no_conversation_is_in_both_splits(
    tmp_path_factory: pytest.TempPathFactory,
    prompts: list[tuple[int, PromptRecord]],
    test_fraction: float,
    seed: int,
    export_format: ExportFormat,
) -> None:
    factory = VoteFactory()
    votes: list[VoteRecord] = []
    for _, prompt in prompts:
        votes += factory.pair(prompt, ["a", "b", "a"])
    options = ExportOptions(export_format, test_fraction=test_fraction, seed=seed)
    result = ExportWriter(
        options, out_root=tmp_path_factory.mktemp("split"), project_slug="demo", conversational=True
    ).write_all(votes)

    conversation_of = {prompt.external_id: number for number, prompt in prompts}
    sides: dict[int, set[str]] = defaultdict(set)
    for split in Split:
        for row in read_lines(result.path / f"{split.value}.jsonl"):
            key = row["prompt_id"] if export_format is ExportFormat.VOTES else None
            number = conversation_of[key] if key else conversation_number(row, prompts)
            sides[number].add(split.value)
    assert all(len(found) == 1 for found in sides.values()), sides
    copies: dict[int, int] = defaultdict(int)
    for number, _ in prompts:
        copies[number] += 1
    counts = read_manifest(result.path)["counts"]
    assert counts["prompts"] == len(prompts)
    assert counts["repeated_prompts"] == sum(n for n in copies.values() if n > 1)


def conversation_number(row: dict[str, object], prompts: list[tuple[int, PromptRecord]]) -> int:
    """Which conversation a trl/kto row's message list is, by its normalised text."""
    messages = row["prompt"]
    assert isinstance(messages, list)
    shown = [(m["role"], normalize_whitespace(m["content"])) for m in messages]
    for number, prompt in prompts:
        system = [("system", normalize_whitespace(prompt.system))] if prompt.has_system else []
        turns = [(t.role, normalize_whitespace(t.content)) for t in prompt.turns]
        if shown == system + turns:
            return number
    raise AssertionError(f"no prompt has the messages {shown}")


def test_the_card_counts_repeated_prompts(tmp_path: Path) -> None:
    factory = VoteFactory()
    votes: list[VoteRecord] = []
    for external_id, text in (("a-1", "Same?"), ("b-2", "Other?"), ("c-3", " Same? ")):
        votes += factory.pair(make_prompt(external_id, text), ["a"])
    result = ExportWriter(
        ExportOptions(ExportFormat.TRL),
        out_root=tmp_path,
        project_slug="demo",
        conversational=False,
    ).write_all(votes)
    card = (result.path / "README.md").read_text(encoding="utf-8")
    assert "- prompts: 3" in card
    assert "- 2 prompts share their conversation with another prompt id" in card
    assert "split by conversation" in card
    assert result.manifest["counts"]["repeated_prompts"] == 2  # type: ignore[index]


def _turn_prompt(conversation: int, turn: int, opening: str, later: int) -> PromptRecord:
    """A live conversation's judged turn: id conversation:<id>:turn:<turn>, the conversation
    before it as turns."""
    turns = [Message(TurnRole.USER, opening)]
    for number in range(later):
        turns += [
            Message(TurnRole.ASSISTANT, f"Reply {number}"),
            Message(TurnRole.USER, f"More {number}"),
        ]
    return PromptRecord(
        prompt_id=turn,
        external_id=f"conversation:{conversation}:turn:{turn}",
        system="Be brief.",
        turns=tuple(turns),
    )


def test_the_turns_of_a_live_conversation_split_together() -> None:
    """Every judged turn of one conversation takes the side of its opening (system prompt and
    first message), whatever came after; other prompts split by their whole conversation."""
    for seed in range(10):
        for conversation in range(30):
            opening = f"Opening {conversation}"
            sides = {
                split_for_prompt(
                    _turn_prompt(conversation, turn, opening, later=turn),
                    test_fraction=0.5,
                    seed=seed,
                )
                for turn in range(6)
            }
            alone = PromptRecord(0, "q", "Be brief.", (Message(TurnRole.USER, opening),))
            assert sides == {split_for_prompt(alone, test_fraction=0.5, seed=seed)}
    first = {
        split_for_prompt(_turn_prompt(c, 9, f"Opening {c}", 3), test_fraction=0.5, seed=0)
        for c in range(30)
    }
    assert first == {Split.TRAIN, Split.TEST}
    # Only ids of that exact form are conversation turns.
    imported = _turn_prompt(1, 2, "Opening", later=2)
    assert split_unit(imported) is not imported
    lookalike = PromptRecord(0, "my conversation:1:turn:2", None, imported.turns)
    assert split_unit(lookalike) is lookalike
