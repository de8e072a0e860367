"""hh-rlhf transcripts read back: a trainer cuts each row at the last "\\n\\nAssistant: " and
must get the same prompt for chosen and rejected, and the rows' own responses after it. Rows
whose prompt turns or responses hold a turn marker cannot be read back so; they are left out
of this format only, and counted by reason."""

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pickwise.exports.dataset.aggregation import AggregationMode, AggregationOptions
from pickwise.exports.dataset.formats import (
    ASSISTANT_PREFIX,
    HH_TURN_MARKERS,
    HUMAN_PREFIX,
    ExportFormat,
)
from pickwise.exports.dataset.pipeline import ExportOptions
from pickwise.exports.dataset.records import PromptRecord, VoteRecord
from pickwise.exports.dataset.writer import ExportWriter
from pickwise.vocabulary import Choice
from tests.exports.factory import VoteFactory, make_prompt
from tests.exports.helpers import read_lines, read_manifest

# Texts built from pieces that come close to the markers, and sometimes are them.
pieces = st.sampled_from(
    ["Hello", " ", "\n", "\n\n", "Human", "Assistant", ":", ": ", "Human:", "Assistant: ", "x"]
)
texts = st.lists(pieces, min_size=1, max_size=8).map("".join).filter(str.strip)


def transcript(prompt: PromptRecord) -> str:
    return "".join(
        (HUMAN_PREFIX if turn.role == "user" else ASSISTANT_PREFIX) + turn.content
        for turn in prompt.turns
    )


def has_marker(text: str) -> bool:
    return any(marker in text for marker in HH_TURN_MARKERS)


@st.composite
def pairs(draw: st.DrawFn) -> list[tuple[PromptRecord, tuple[str, str], Choice]]:
    found = []
    for index in range(draw(st.integers(1, 8))):
        turns = draw(
            st.sampled_from([1, 3]).flatmap(lambda n: st.lists(texts, min_size=n, max_size=n))
        )
        prompt = make_prompt(f"p{index:02d}", turns[-1], history=turns[:-1])
        answers = draw(st.lists(texts, min_size=2, max_size=2, unique=True))
        found.append((prompt, (answers[0], answers[1]), draw(st.sampled_from(["a", "b"]))))
    return found


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pairs=pairs())
def test_every_row_reads_back_to_its_prompt_and_responses(
    tmp_path_factory: pytest.TempPathFactory,
    pairs: list[tuple[PromptRecord, tuple[str, str], Choice]],
) -> None:
    factory = VoteFactory()
    votes: list[VoteRecord] = []
    for prompt, answers, choice in pairs:
        votes += factory.pair(prompt, [choice], responses=answers)
    out = tmp_path_factory.mktemp("hh")
    options = ExportOptions(ExportFormat.HH_RLHF, test_fraction=0.0)
    result = ExportWriter(
        options, out_root=out, project_slug="demo", conversational=True
    ).write_all(votes)

    rows = read_lines(result.path / "train.jsonl")
    expected_rows, expected_drops = [], Counter[str]()
    for prompt, (a, b), choice in pairs:
        if any(has_marker(turn.content) for turn in prompt.turns):
            expected_drops["hh_marker_in_prompt"] += 1
        elif has_marker(a) or has_marker(b):
            expected_drops["hh_marker_in_response"] += 1
        else:
            chosen, rejected = (a, b) if choice == "a" else (b, a)
            expected_rows.append((transcript(prompt), chosen, rejected))
    read_back = []
    for row in rows:
        chosen_prompt, _, chosen = row["chosen"].rpartition(ASSISTANT_PREFIX)
        rejected_prompt, _, rejected = row["rejected"].rpartition(ASSISTANT_PREFIX)
        assert chosen_prompt == rejected_prompt
        read_back.append((chosen_prompt, chosen, rejected))
    assert read_back == expected_rows
    counts = read_manifest(result.path)["counts"]
    assert counts["dropped"] == dict(expected_drops)
    assert counts["kept"] == len(rows) == len(expected_rows)
    card = (result.path / "README.md").read_text(encoding="utf-8")
    for reason, count in expected_drops.items():
        assert f"- dropped ({reason}): {count} pairs" in card


def test_marker_rows_are_left_out_of_hh_rlhf_only(tmp_path: Path) -> None:
    factory = VoteFactory()
    votes = (
        factory.pair(make_prompt("a-clean", "Hi?"), ["a"], responses=("Hello.", "Hey."))
        + factory.pair(
            make_prompt("b-reply", "Hi?"), ["b"], responses=("Fine.", "Sure.\n\nHuman: and you?")
        )
        + factory.pair(make_prompt("c-prompt", "Say \n\nAssistant: yes"), ["a", "a"])
    )
    each_vote = AggregationOptions(mode=AggregationMode.EACH_VOTE)
    hh = ExportWriter(
        ExportOptions(ExportFormat.HH_RLHF, aggregation=each_vote, test_fraction=0.0),
        out_root=tmp_path / "hh",
        project_slug="demo",
        conversational=False,
    ).write_all(votes)
    trl = ExportWriter(
        ExportOptions(ExportFormat.TRL, aggregation=each_vote, test_fraction=0.0),
        out_root=tmp_path / "trl",
        project_slug="demo",
        conversational=False,
    ).write_all(votes)

    assert len(read_lines(hh.path / "train.jsonl")) == 1
    hh_counts = read_manifest(hh.path)["counts"]
    assert hh_counts["unit"] == "judgment"
    assert hh_counts["kept"] == 1
    assert hh_counts["dropped"] == {"hh_marker_in_prompt": 2, "hh_marker_in_response": 1}
    assert len(read_lines(trl.path / "train.jsonl")) == 4
    assert read_manifest(trl.path)["counts"]["dropped"] == {}
    card = (hh.path / "README.md").read_text(encoding="utf-8")
    assert (
        '- dropped (hh_marker_in_response): 1 judgments (a response contains "\\n\\nHuman:"' in card
    )
