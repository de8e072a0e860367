"""Ground truth on seeded crowds (tests.overlap.simulation): adaptive overlap against fixed
k = 3 and k = 5 on votes per pair and on the accuracy of the exported majority label.

The issue's targets: adaptive spends at least 25% fewer votes than k = 3 at equal or better
accuracy, and reaches k = 5's accuracy with at most 70% of its votes. The second is met
(the weighted rule's default); the first cannot be, in this crowd, by any rule whose pairs
are labelled by the majority export, and the numbers say why: every pair takes two votes,
and a pair whose two votes disagree has no majority until a third comes. That is 40% of
the pairs here, so no adaptive rule spends less than 2.4 votes per pair, 20% below k = 3
(the votes rule with s = 0.6 does exactly that, with k = 3's labels).
"""

from functools import cache

import pytest

from pickwise.vocabulary import StoppingRule
from tests.overlap.simulation import POLICIES, Crowd, Outcome, adaptive, fixed, pooled, run

CROWD = Crowd()


@cache
def outcome(name: str) -> Outcome:
    return pooled(POLICIES[name], CROWD)


def test_the_weighted_rule_reaches_fixed_five_with_at_most_70_percent_of_its_votes() -> None:
    five, weighted = outcome("fixed k = 5"), outcome("adaptive 2..5, weighted (0.88: default)")
    assert weighted.accuracy >= five.accuracy
    assert weighted.votes <= 0.70 * five.votes


def test_the_default_votes_rule_beats_fixed_three_for_as_many_votes() -> None:
    three, counted = outcome("fixed k = 3"), outcome("adaptive 2..5, votes (m 2, s 0.75: default)")
    assert counted.votes <= three.votes
    assert counted.accuracy > three.accuracy + 0.02


def test_a_fifth_fewer_votes_than_fixed_three_with_the_same_labels() -> None:
    """m = 2, s = 0.6 ("2 of 2, else the third vote decides") gives every pair the label
    k = 3 gives it, with the third vote spent only on split pairs."""
    three, counted = outcome("fixed k = 3"), outcome("adaptive 2..5, votes (m 2, s 0.6)")
    assert counted.labels == three.labels
    assert counted.votes == 2 * counted.pairs + counted.split_at_two
    assert counted.votes <= 0.81 * three.votes


@pytest.mark.parametrize("name", [name for name in POLICIES if name.startswith("adaptive")])
def test_no_adaptive_rule_spends_less_than_two_votes_plus_the_split_pairs(name: str) -> None:
    """Why a quarter fewer than k = 3 is out of reach here: the bound holds for every rule,
    and the split pairs alone are more than a quarter of the pairs."""
    result = outcome(name)
    assert result.votes >= 2 * result.pairs + result.split_at_two
    assert result.split_at_two / result.pairs > 0.25
    assert (2 * result.pairs + result.split_at_two) > 0.75 * 3 * result.pairs


def test_the_weighted_rule_at_the_prior_decides_like_the_default_votes_rule() -> None:
    """With weights never computed (every rater at the prior), the weighted default takes
    the same votes and gives the same labels as "2 of 2, else best of five"."""
    no_analytics = Crowd(pairs=400, refresh_every=10**9)
    weighted = run(adaptive(StoppingRule.POSTERIOR), no_analytics, seed=9)
    counted = run(adaptive(), no_analytics, seed=9)
    assert (weighted.votes, weighted.labels) == (counted.votes, counted.labels)


def test_fixed_policies_take_exactly_k() -> None:
    assert outcome("fixed k = 3").votes_per_pair == {3: outcome("fixed k = 3").pairs}
    assert run(fixed(5), Crowd(pairs=50), seed=1).votes_per_pair == {5: 50}
