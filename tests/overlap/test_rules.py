"""The stopping rules and the slots a pair wants, on votes written out by hand."""

import itertools
from collections.abc import Sequence

import pytest

from pickwise.overlap.rules import (
    PRIOR_CONFUSION,
    OverlapPolicy,
    Vote,
    leading_choice,
    posterior,
    prior_confusion,
    settles,
    slots_wanted,
)
from pickwise.vocabulary import Choice, OverlapMode, StoppingRule

A, B, TIE, BAD = Choice.A, Choice.B, Choice.TIE, Choice.BOTH_BAD


def policy(**changes: object) -> OverlapPolicy:
    values: dict[str, object] = {
        "mode": OverlapMode.ADAPTIVE,
        "fixed_k": 3,
        "min_raters": 2,
        "max_raters": 5,
        "rule": StoppingRule.LEADER_SHARE,
        "stop_votes": 2,
        "stop_share": 0.75,
        "stop_posterior": 0.88,
    }
    values.update(changes)
    return OverlapPolicy(**values)  # type: ignore[arg-type]


def votes(*choices: str, confusion: Sequence[float] | None = None) -> list[Vote]:
    return [Vote(choice, None if confusion is None else tuple(confusion)) for choice in choices]


def final_votes(rule: OverlapPolicy, stream: Sequence[str]) -> int:
    """How many of ``stream`` a pair takes when its votes arrive one at a time."""
    taken: list[Vote] = []
    while len(taken) < slots_wanted(rule, taken, 0):
        taken.append(Vote(stream[len(taken)]))
    return len(taken)


@pytest.mark.parametrize(
    ("choices", "settled"),
    [
        ((A, A), True),  # 2 of 2
        ((A, B), False),
        ((A, B, A), False),  # 2 of 3 is below 3/4: best of five goes on
        ((A, B, A, A), True),  # first to 3
        ((A, B, B, B), True),
        ((A, B, TIE, A), False),
        ((A, A, B, B), False),  # no leader
        ((TIE, TIE), True),  # the raters agree there is no winner
        ((BAD, BAD), True),
        ((TIE, BAD), False),  # a tie and both bad are two choices, as in the export
        ((A,), False),  # one vote is below m = 2
    ],
)
def test_default_leader_share_is_two_of_two_else_best_of_five(
    choices: tuple[str, ...], settled: bool
) -> None:
    assert settles(policy(), votes(*choices)) is settled


def test_a_pair_takes_two_votes_when_they_agree_and_up_to_five_otherwise() -> None:
    rule = policy()
    assert final_votes(rule, [A, A, B, B, B]) == 2
    assert final_votes(rule, [A, B, A, A, B]) == 4
    assert final_votes(rule, [A, B, B, B, A]) == 4
    assert final_votes(rule, [A, B, A, B, A]) == 5  # the maximum, whatever the votes
    assert final_votes(rule, [A, B, TIE, BAD, A]) == 5


def test_share_and_votes_thresholds_are_both_needed() -> None:
    assert settles(policy(stop_votes=3), votes(A, A)) is False
    assert settles(policy(stop_votes=3), votes(A, A, A)) is True
    assert settles(policy(stop_share=0.6), votes(A, B, A)) is True  # 2/3 >= 0.6
    assert settles(policy(stop_share=2 / 3), votes(A, B, A)) is True  # no float trouble
    assert settles(policy(stop_share=1.0), votes(A, B, A, A, A)) is False


def test_leading_choice_needs_more_votes_than_any_other() -> None:
    assert leading_choice(votes(A, B, A)) == (A, 2)
    assert leading_choice(votes(A, B)) is None
    assert leading_choice([]) is None


def test_posterior_sums_to_one_and_favours_the_votes() -> None:
    a, none, b = posterior(votes(A, A, B))
    assert a + none + b == pytest.approx(1.0)
    assert a > b > none
    assert posterior([]) == pytest.approx((1 / 3, 1 / 3, 1 / 3))


@pytest.mark.parametrize("no_preference", [TIE, BAD])
@pytest.mark.parametrize("length", [2, 3, 4])
def test_posterior_rule_at_the_prior_decides_like_the_default_leader_share(
    length: int, no_preference: str
) -> None:
    """Every sequence of up to four votes (five is the maximum either way): with every rater
    at the prior, threshold 0.88 settles exactly what "2 of 2, else first to 3" settles."""
    weighted, counted = policy(rule=StoppingRule.POSTERIOR), policy()
    for choices in itertools.product((A, B, no_preference), repeat=length):
        cast = votes(*choices)
        assert settles(weighted, cast) == settles(counted, cast), choices


def test_posterior_rule_reads_tie_and_both_bad_as_one_label() -> None:
    """Dawid-Skene's labels: a tie and "both bad" both say "no preference". The posterior
    settles a tie, tie, both-bad pair (the export drops it either way); leader_share, which
    counts the export's four choices, asks for more."""
    assert settles(policy(rule=StoppingRule.POSTERIOR), votes(TIE, TIE, BAD)) is True
    assert settles(policy(), votes(TIE, TIE, BAD)) is False
    # The leading choice must still lead the votes: one of each is no leader.
    assert settles(policy(rule=StoppingRule.POSTERIOR), votes(TIE, BAD)) is False


def test_weights_decide_what_counts_cannot() -> None:
    rule = policy(rule=StoppingRule.POSTERIOR)
    random_rater = [1 / 3] * 9  # reports the same whatever the truth: no evidence
    sharp_rater = prior_confusion(0.97)
    # Two random clickers agreeing settle nothing; two sharp raters do.
    assert settles(rule, votes(A, A, confusion=random_rater)) is False
    assert settles(rule, votes(A, A, confusion=sharp_rater)) is True
    # A 2-to-1 split settles when the two agree sharply and the one is a clicker...
    split = [*votes(A, A, confusion=sharp_rater), *votes(B, confusion=random_rater)]
    assert settles(rule, split) is True
    # ...but not when the posterior's favourite is not the votes' leader.
    against = [*votes(A, A, confusion=random_rater), *votes(B, confusion=sharp_rater)]
    assert posterior(against)[2] > posterior(against)[0]
    assert settles(rule, against) is False


def test_a_rater_who_swaps_the_answers_is_read_the_right_way_round() -> None:
    swapped = [0.05, 0.05, 0.9, 0.05, 0.9, 0.05, 0.9, 0.05, 0.05]  # says B when A is true
    a, _, b = posterior(votes(B, B, confusion=swapped))
    assert a > 0.99 and b < 0.01


def test_prior_confusion_rows_are_distributions() -> None:
    for row in range(3):
        assert sum(PRIOR_CONFUSION[row * 3 : row * 3 + 3]) == pytest.approx(1.0)
        assert PRIOR_CONFUSION[row * 4] == pytest.approx(0.7)


def test_slots_wanted_waits_for_leased_votes_and_stays_within_the_range() -> None:
    rule = policy()
    assert slots_wanted(rule, [], 0) == 2  # a new pair: the minimum
    assert slots_wanted(rule, votes(A), 0) == 2  # not decided below the minimum
    assert slots_wanted(rule, votes(A, B), 0) == 3  # one more, exactly
    assert slots_wanted(rule, votes(A, B), 1) == 3  # a leased vote is waited for
    assert slots_wanted(rule, votes(A), 1) == 2
    assert slots_wanted(rule, votes(A, A), 0) == 2  # settled
    assert slots_wanted(rule, votes(A, B, A, B, TIE), 0) == 5  # the maximum
    assert slots_wanted(policy(max_raters=3), votes(A, B), 3) == 3  # leases beyond the max go
    assert slots_wanted(policy(max_raters=3), votes(A, B, A, B), 0) == 4  # judged ones stay


def test_floor_raises_minimum_and_maximum() -> None:
    rule = policy()
    assert slots_wanted(rule, votes(A, A), 0, floor=4) == 4
    assert slots_wanted(rule, votes(A, A, B, B), 0, floor=4) == 5
    assert slots_wanted(rule, votes(A, B, A, B, TIE), 0, floor=7) == 7
    assert slots_wanted(rule, votes(A, A, A, A), 0, floor=4) == 4


def test_fixed_policy_wants_k() -> None:
    rule = policy(mode=OverlapMode.FIXED)
    assert slots_wanted(rule, [], 0) == 3
    assert slots_wanted(rule, votes(A, A), 1) == 3
    assert slots_wanted(rule, votes(A, A), 0, floor=4) == 4
    assert rule.initial_slots == 3 and policy().initial_slots == 2


def test_policy_settings_and_words() -> None:
    assert policy(mode=OverlapMode.FIXED).settings() == {"mode": "fixed", "raters_per_pair": 3}
    settings = policy().settings()
    assert settings["rule"] == "leader_share" and settings["stop_share"] == 0.75
    assert "2 to 5 raters" in policy().describe()
    assert "posterior" in policy(rule=StoppingRule.POSTERIOR).describe()
