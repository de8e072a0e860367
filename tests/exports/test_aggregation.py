import itertools
from collections import Counter
from collections.abc import Iterator, Sequence

import pytest

from pickwise.exports.dataset.aggregation import (
    AggregationMode,
    AggregationOptions,
    DropReason,
    ExportStats,
    PreferencePair,
    UnsortedVotesError,
    aggregate,
    group_votes_by_pair,
)
from pickwise.exports.dataset.records import InvalidExportOptions, VoteRecord
from pickwise.vocabulary import Choice
from tests.exports.factory import VoteFactory, make_prompt

MAJORITY = AggregationOptions()
UNANIMOUS = AggregationOptions(mode=AggregationMode.UNANIMOUS)
EACH_VOTE = AggregationOptions(mode=AggregationMode.EACH_VOTE)


def run(
    choices: Sequence[Choice], options: AggregationOptions
) -> tuple[list[PreferencePair], ExportStats]:
    votes = VoteFactory().pair(make_prompt("p"), choices)
    stats = ExportStats()
    return list(aggregate(votes, options, stats)), stats


def test_majority_keeps_the_choice_with_most_votes() -> None:
    votes = VoteFactory().pair(make_prompt("p"), ["b", "a", "b"])
    (pair,) = aggregate(votes, MAJORITY)
    assert pair.winner == "b"
    assert pair.chosen == votes[0].response_b
    assert pair.rejected == votes[0].response_a
    assert (pair.chosen_model, pair.rejected_model) == ("model-beta", "model-alpha")
    assert (pair.vote_count, pair.winner_votes) == (3, 2)
    assert pair.agreement == pytest.approx(2 / 3)
    assert pair.judgment_ids == (votes[0].judgment_id, votes[2].judgment_id)


def test_majority_is_a_plurality_over_all_four_choices() -> None:
    (pair,), _ = run(["a", "a", "tie", "b"], MAJORITY)
    assert pair.winner == "a"
    assert pair.agreement == 0.5


@pytest.mark.parametrize(
    ("choices", "reason"),
    [
        (["a", "b"], DropReason.NO_MAJORITY),
        (["a", "b", "tie"], DropReason.NO_MAJORITY),
        (["tie", "tie", "a"], DropReason.TIE),
        (["both_bad", "both_bad", "b"], DropReason.BOTH_BAD),
        (["tie"], DropReason.TIE),
    ],
)
def test_majority_drops_pairs_without_a_winner(choices: list[Choice], reason: DropReason) -> None:
    kept, stats = run(choices, MAJORITY)
    assert kept == []
    assert stats.dropped == Counter({reason: 1})
    assert (stats.kept, stats.pairs_read, stats.votes_read) == (0, 1, len(choices))


def test_min_votes_drops_thin_pairs() -> None:
    kept, stats = run(["a", "a"], AggregationOptions(min_votes=3))
    assert kept == []
    assert stats.dropped == Counter({DropReason.TOO_FEW_VOTES: 1})
    kept, _ = run(["a", "a", "a"], AggregationOptions(min_votes=3))
    assert len(kept) == 1


def test_min_agreement_drops_split_decisions() -> None:
    kept, stats = run(["a", "a", "b"], AggregationOptions(min_agreement=0.75))
    assert kept == []
    assert stats.dropped == Counter({DropReason.BELOW_AGREEMENT: 1})


def test_min_agreement_of_two_thirds_keeps_two_of_three() -> None:
    kept, _ = run(["a", "a", "b"], AggregationOptions(min_agreement=2 / 3))
    assert len(kept) == 1
    kept, _ = run(["a", "a", "b"], AggregationOptions(min_agreement=0.6667))
    assert kept == []


def test_unanimous_needs_every_vote_alike() -> None:
    kept, _ = run(["a", "a", "a"], UNANIMOUS)
    assert [pair.winner for pair in kept] == ["a"]
    assert kept[0].agreement == 1.0
    cases: list[tuple[list[Choice], DropReason]] = [
        (["a", "a", "b"], DropReason.NOT_UNANIMOUS),
        (["tie", "tie"], DropReason.TIE),
        (["both_bad"], DropReason.BOTH_BAD),
    ]
    for choices, reason in cases:
        kept, stats = run(choices, UNANIMOUS)
        assert kept == []
        assert stats.dropped == Counter({reason: 1})


def test_unanimous_respects_min_votes() -> None:
    kept, stats = run(["b"], AggregationOptions(mode=AggregationMode.UNANIMOUS, min_votes=2))
    assert kept == []
    assert stats.dropped == Counter({DropReason.TOO_FEW_VOTES: 1})


def test_each_vote_gives_one_row_per_a_or_b_judgment() -> None:
    votes = VoteFactory().pair(make_prompt("p"), ["a", "tie", "a", "b", "both_bad"])
    stats = ExportStats()
    kept = list(aggregate(votes, EACH_VOTE, stats))
    assert [(pair.winner, pair.judgment_ids) for pair in kept] == [
        ("a", (votes[0].judgment_id,)),
        ("a", (votes[2].judgment_id,)),
        ("b", (votes[3].judgment_id,)),
    ]
    assert [pair.agreement for pair in kept] == [0.4, 0.4, 0.2]
    assert stats.dropped == Counter({DropReason.TIE: 1, DropReason.BOTH_BAD: 1})
    assert stats.kept == 3


def test_each_vote_counts_drops_per_judgment() -> None:
    options = AggregationOptions(mode=AggregationMode.EACH_VOTE, min_agreement=0.3)
    kept, stats = run(["a", "a", "b", "tie", "both_bad"], options)
    assert [pair.winner for pair in kept] == ["a", "a"]
    assert stats.dropped == Counter(
        {DropReason.BELOW_AGREEMENT: 1, DropReason.TIE: 1, DropReason.BOTH_BAD: 1}
    )
    options = AggregationOptions(mode=AggregationMode.EACH_VOTE, min_votes=6)
    kept, stats = run(["a", "a", "b"], options)
    assert kept == []
    assert stats.dropped == Counter({DropReason.TOO_FEW_VOTES: 3})


def test_each_vote_strength_comes_from_that_vote_alone() -> None:
    votes = VoteFactory().pair(make_prompt("p"), ["a", "a"], strengths=[0, 2])
    kept = list(aggregate(votes, EACH_VOTE))
    assert [pair.margin for pair in kept] == [0.333333, 1.0]


def test_votes_are_grouped_by_consecutive_pair() -> None:
    factory = VoteFactory()
    first = factory.pair(make_prompt("p1"), ["a", "b"])
    second = factory.pair(make_prompt("p1"), ["a"])
    third = factory.pair(make_prompt("p2"), ["b", "b", "b"])
    groups = list(group_votes_by_pair(first + second + third))
    assert [len(group) for group in groups] == [2, 1, 3]


def test_aggregation_streams_without_reading_ahead() -> None:
    factory = VoteFactory()
    read: list[int] = []

    def endless() -> Iterator[VoteRecord]:
        for index in itertools.count():
            for vote in factory.pair(make_prompt(f"p{index:09d}"), ["a", "a"]):
                read.append(vote.judgment_id)
                yield vote

    first_three = list(itertools.islice(aggregate(endless(), MAJORITY), 3))
    assert len(first_three) == 3
    # Pair 3 is only known complete once the first vote of pair 4 arrives.
    assert len(read) == 7


@pytest.mark.parametrize("order", ["pairs", "prompts", "judgments"])
def test_unsorted_streams_are_refused(order: str) -> None:
    factory = VoteFactory()
    one = factory.pair(make_prompt("p1"), ["a", "a"])
    two = factory.pair(make_prompt("p2"), ["a"])
    if order == "pairs":
        votes = [one[0], two[0], one[1]]
    elif order == "prompts":
        votes = two + one
    else:
        votes = [one[1], one[0]]
    with pytest.raises(UnsortedVotesError, match="out of order"):
        list(aggregate(votes, MAJORITY))


@pytest.mark.parametrize(
    "kwargs", [{"min_votes": 0}, {"min_agreement": -0.1}, {"min_agreement": 1.01}]
)
def test_bad_options_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidExportOptions):
        AggregationOptions(**kwargs)  # type: ignore[arg-type]


def test_every_reason_rows_are_left_out_is_said_in_words() -> None:
    # The export page's preview names each reason; a new one without words would be a 500.
    for reason in DropReason:
        assert reason.description.endswith(".") and len(reason.description) > 20
