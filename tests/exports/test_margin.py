from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pickwise.exports.dataset.aggregation import (
    AggregationOptions,
    aggregate,
    preference_margin,
    strength_fraction,
)
from pickwise.vocabulary import Choice
from tests.exports.factory import VoteFactory, make_prompt


@pytest.mark.parametrize(
    ("index", "size", "expected"),
    [(0, 3, 1 / 3), (1, 3, 2 / 3), (2, 3, 1.0), (0, 1, 1.0), (3, 4, 1.0), (0, 4, 0.25)],
)
def test_strength_index_maps_to_its_share_of_the_scale(
    index: int, size: int, expected: float
) -> None:
    assert strength_fraction(index, size) == pytest.approx(expected)


def test_strength_outside_the_scale_is_refused() -> None:
    with pytest.raises(ValueError):
        strength_fraction(3, 3)


def test_margin_is_strength_times_agreement_rounded() -> None:
    assert preference_margin(1 / 3, 2 / 3) == 0.222222
    assert preference_margin(1.0, 1.0) == 1.0
    assert preference_margin(None, 1.0) == 0.0


def _margin_of(choices: list[Choice], strengths: list[int | None], scale: tuple[str, ...]) -> float:
    votes = VoteFactory().pair(make_prompt("p"), choices, strengths=strengths, scale=scale)
    (pair,) = aggregate(votes, AggregationOptions())
    return pair.margin


def test_pair_margin_averages_the_winning_votes_strength() -> None:
    # Winners gave "slightly" (1/3) and "much" (1): mean 2/3, times agreement 2/3.
    assert _margin_of(["a", "a", "b"], [0, 2, 2], ("slightly", "clearly", "much")) == 0.444444


def test_votes_without_strength_are_left_out_of_the_mean() -> None:
    assert _margin_of(["b", "b"], [None, 1], ("slightly", "clearly", "much")) == 0.666667


def test_margin_is_zero_float_without_a_scale() -> None:
    margin = _margin_of(["a", "a"], [None, None], ())
    assert margin == 0.0
    assert isinstance(margin, float)


SCALE = ("slightly", "clearly", "much")
CHOICES = ("a", "b", "tie", "both_bad")


@given(
    votes=st.lists(
        st.tuples(st.sampled_from(CHOICES), st.one_of(st.none(), st.integers(0, 2))),
        min_size=1,
        max_size=9,
    )
)
def test_any_number_of_votes_aggregates_and_gets_its_margin(
    votes: list[tuple[str, int | None]],
) -> None:
    """Adaptive overlap gives pairs 1 to many votes, odd or even: the majority row and its
    margin follow the plain definition whatever their number."""
    choices = [choice for choice, _ in votes]
    strengths = [strength if choice in ("a", "b") else None for choice, strength in votes]
    pair_votes = VoteFactory().pair(
        make_prompt("p"),
        choices,
        strengths=strengths,
        scale=SCALE,  # type: ignore[arg-type]
    )
    rows = list(aggregate(pair_votes, AggregationOptions()))
    counts = Counter(choices)
    most = max(counts.values())
    leaders = [choice for choice, count in counts.items() if count == most]
    if len(leaders) > 1 or leaders[0] not in ("a", "b"):
        assert rows == []
        return
    (row,) = rows
    winner = leaders[0]
    assert row.winner == winner and row.vote_count == len(votes) and row.winner_votes == most
    given_strengths = [
        (strength + 1) / 3
        for choice, strength in zip(choices, strengths, strict=True)
        if choice == winner and strength is not None
    ]
    expected = (
        round(sum(given_strengths) / len(given_strengths) * most / len(votes), 6)
        if given_strengths
        else 0.0
    )
    assert row.margin == expected
