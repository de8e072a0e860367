"""Bradley-Terry model leaderboard on the Elo-like scale, with bootstrap intervals and ranks.

P(A beats B) = 1 / (1 + 10^((R_B − R_A) / 400)). A tie adds half a win to each side, as in
Chatbot Arena, and "both bad" counts as a tie. The fit works on votes aggregated per
(model_a, model_b, outcome) cell, so its cost does not grow with the number of votes once
they are counted.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import numpy.typing as npt

from pickwise.analytics.arrays import FloatArray, IntArray, as_float_array, as_int_array
from pickwise.analytics.labels import CHOICE_A, CHOICE_B, CHOICE_BOTH_BAD, CHOICE_TIE

ELO_SCALE = 400.0
ELO_BASE = 10.0
INITIAL_RATING = 1000.0
# Natural log-odds per Elo point: R_A − R_B = ELO_PER_LOGIT · (θ_A − θ_B).
ELO_PER_LOGIT = ELO_SCALE / math.log(ELO_BASE)
# Adding a constant to every strength leaves the likelihood unchanged; this tiny L2 penalty on
# the summed loss picks the mean-zero solution and keeps a model that never lost finite. Its
# effect on any model with votes is far below the statistical error.
IDENTIFYING_RIDGE = 1e-6
# A Newton step that moves some strength by more than LONG_STEP log-odds may grow up to
# 2**MAX_STEP_DOUBLINGS times while the loss keeps falling (see _line_search).
LONG_STEP = 0.5
MAX_STEP_DOUBLINGS = 6

OUTCOME_B_WON, OUTCOME_TIE, OUTCOME_A_WON = range(3)
POINTS_FOR_A = np.array([0.0, 0.5, 1.0])  # indexed by outcome
_OUTCOME_OF_CHOICE = np.zeros(4, dtype=np.int64)
_OUTCOME_OF_CHOICE[[CHOICE_A, CHOICE_B, CHOICE_TIE, CHOICE_BOTH_BAD]] = [
    OUTCOME_A_WON,
    OUTCOME_B_WON,
    OUTCOME_TIE,
    OUTCOME_TIE,
]


@dataclass(frozen=True)
class BattleCounts:
    """Votes counted per observed (model_a, model_b, outcome) cell."""

    model_a: IntArray
    model_b: IntArray
    outcome: IntArray
    count: FloatArray
    n_models: int

    @property
    def total_votes(self) -> int:
        return int(self.count.sum())

    def votes_per_model(self) -> IntArray:
        per_a = np.bincount(self.model_a, weights=self.count, minlength=self.n_models)
        per_b = np.bincount(self.model_b, weights=self.count, minlength=self.n_models)
        return as_int_array(np.rint(per_a + per_b))


@dataclass(frozen=True)
class Leaderboard:
    scores: FloatArray  # Elo-scale point estimate per model
    lower: FloatArray  # bootstrap percentile interval
    upper: FloatArray
    ranks: IntArray  # 1 + number of models whose lower bound is above this model's upper bound
    votes: IntArray  # votes involving the model
    win_rate: FloatArray  # [i, j]: share of points i took from j (ties half); NaN if never met
    bootstrap_scores: FloatArray  # (rounds, models), anchored like ``scores``


def outcomes_of_choices(choice_codes: npt.ArrayLike) -> IntArray:
    return as_int_array(_OUTCOME_OF_CHOICE[as_int_array(choice_codes)])


def aggregate_battles(
    model_a: npt.ArrayLike, model_b: npt.ArrayLike, choice_codes: npt.ArrayLike, n_models: int
) -> BattleCounts:
    """Count votes per (model_a, model_b, outcome) in one vectorised pass."""
    first = as_int_array(model_a)
    second = as_int_array(model_b)
    outcome = outcomes_of_choices(choice_codes)
    if np.any(first == second):
        raise ValueError("a model cannot be compared with itself")
    flat = (first * n_models + second) * 3 + outcome
    return _battle_cells(np.bincount(flat, minlength=n_models * n_models * 3), n_models)


def counted_battles(
    model_a: npt.ArrayLike, model_b: npt.ArrayLike, outcome_counts: npt.ArrayLike, n_models: int
) -> BattleCounts:
    """``aggregate_battles`` of rows that each stand for several votes: ``outcome_counts``
    (rows × 3) holds, per row, the votes of each outcome (columns ordered as OUTCOME_*)."""
    first = as_int_array(model_a)
    second = as_int_array(model_b)
    counts = as_float_array(outcome_counts).reshape(len(first), 3)
    if np.any((first == second) & (counts.sum(axis=1) > 0)):
        raise ValueError("a model cannot be compared with itself")
    flat = ((first * n_models + second) * 3)[:, None] + np.arange(3)
    totals = np.bincount(flat.ravel(), weights=counts.ravel(), minlength=n_models * n_models * 3)
    return _battle_cells(totals, n_models)


def _battle_cells(totals: npt.NDArray[np.generic], n_models: int) -> BattleCounts:
    """The non-empty cells of a flat (model_a, model_b, outcome) count table."""
    cells = np.flatnonzero(totals)
    pair, cell_outcome = np.divmod(cells, 3)
    cell_a, cell_b = np.divmod(pair, n_models)
    return BattleCounts(
        model_a=as_int_array(cell_a),
        model_b=as_int_array(cell_b),
        outcome=as_int_array(cell_outcome),
        count=as_float_array(totals[cells]),
        n_models=n_models,
    )


def fit_bradley_terry(battles: BattleCounts) -> FloatArray:
    """Maximum-likelihood strengths in natural log-odds units, mean zero."""
    return as_float_array(fit_bradley_terry_batch(battles, battles.count[None, :])[0])


def fit_bradley_terry_batch(
    battles: BattleCounts, cell_counts: FloatArray, initial: FloatArray | None = None
) -> FloatArray:
    """Fit one set of strengths per row of ``cell_counts`` (rounds × cells) at once.

    Newton's method on the pair-level sufficient statistics: the likelihood depends only on
    how many games each unordered pair of models played and how many points the first took.
    Per-pair values are scattered onto the models by index, so an iteration costs
    rounds × (pairs + models³) — never rounds × pairs × models, which is what explodes once a
    few hundred models have met in tens of thousands of pairings. Rounds are solved in
    chunks that bound the memory, and a round leaves its chunk once it has converged.

    ``initial`` (one strength per model, e.g. the fit on all votes) is where every round
    starts: the optimum does not depend on it, the number of iterations does.

    The per-round solves are small: BLAS runs them on one thread, as threads of its own
    slow them down several times over on a busy machine.
    """
    # Imported here: it loads the BLAS libraries' controls, which the app does not need.
    from threadpoolctl import threadpool_limits

    counts = as_float_array(np.atleast_2d(cell_counts))
    pairs = _PairGames.of(battles)
    start = np.zeros(battles.n_models) if initial is None else as_float_array(initial)
    per_round = battles.n_models**2 + 4 * len(pairs.first)
    chunk = max(1, _CHUNK_FLOATS // per_round)
    with threadpool_limits(limits=1, user_api="blas"):
        fitted = [
            _newton(pairs, counts[first : first + chunk], start)
            for first in range(0, len(counts), chunk)
        ]
    strengths = np.concatenate(fitted)
    # The ridge's optimum has mean exactly zero (the likelihood's gradient sums to zero).
    return as_float_array(strengths - strengths.mean(axis=1, keepdims=True))


# Rounds per chunk are chosen so that one chunk's Hessians and per-pair arrays hold about
# this many floats (8 bytes each).
_CHUNK_FLOATS = 16_000_000


def _newton(pairs: "_PairGames", cell_counts: FloatArray, initial: FloatArray) -> FloatArray:
    # Imported here: scipy takes seconds to import and the app must start without it.
    from scipy import special

    games_all, points_all = pairs.games_and_points(cell_counts)
    strengths = np.tile(initial, (len(cell_counts), 1))
    active = np.arange(len(cell_counts))
    loss = pairs.loss(strengths, games_all, points_all)
    for _ in range(100):
        current, games, points = strengths[active], games_all[active], points_all[active]
        probability = special.expit(pairs.logits(current))
        gradient = pairs.to_models(games * probability - points) + IDENTIFYING_RIDGE * current
        hessian = pairs.laplacian(games * probability * (1.0 - probability))
        step = as_float_array(np.linalg.solve(hessian, gradient[..., None])[..., 0])
        moved, loss[active], step_size = _line_search(
            current, step, loss[active], partial(pairs.loss, games=games, points=points)
        )
        strengths[active] = moved
        move = step_size[:, None] * step
        # Adding a constant to every strength changes nothing but the tiny ridge term, so
        # steps along that direction stall near 1e-9; judge convergence without it. Relative
        # to the strengths: where some models won every game they sit tens of units out, and
        # the solve's rounding there is above any absolute tolerance.
        change = np.max(np.abs(move - move.mean(axis=1, keepdims=True)), axis=1)
        still_moving = change >= 1e-10 * (1.0 + np.max(np.abs(moved), axis=1))
        active = active[still_moving]
        if not len(active):
            break
    return strengths


def elo_scores(strengths: FloatArray, anchor_model: int | None = None) -> FloatArray:
    """Natural-scale strengths (last axis = models) to Elo-like scores.

    Anchored so that the mean score is INITIAL_RATING, or so that ``anchor_model`` scores
    exactly INITIAL_RATING.
    """
    scores = ELO_PER_LOGIT * as_float_array(strengths)
    if anchor_model is None:
        reference = scores.mean(axis=-1, keepdims=True)
    else:
        reference = scores[..., anchor_model : anchor_model + 1]
    return as_float_array(scores - reference + INITIAL_RATING)


def bootstrap_cell_counts(
    battles: BattleCounts, rounds: int, rng: np.random.Generator
) -> FloatArray:
    """Resampled vote counts per cell, rounds × cells.

    Drawing N votes with replacement and counting them per cell is exactly a multinomial
    draw over the cells with probabilities count / N, so no vote is ever touched.
    """
    total = battles.total_votes
    return as_float_array(rng.multinomial(total, battles.count / total, size=rounds))


def ranks_from_intervals(lower: FloatArray, upper: FloatArray) -> IntArray:
    """1 + the number of models whose lower bound is above this model's upper bound.

    Models whose intervals overlap share a rank; only a clear separation moves a model down.
    """
    clearly_better = lower[None, :] > upper[:, None]
    return as_int_array(1 + clearly_better.sum(axis=1))


def empirical_win_rates(battles: BattleCounts) -> FloatArray:
    """Share of points row model took against column model (ties half), NaN where never met."""
    n = battles.n_models
    points_for_a = battles.count * POINTS_FOR_A[battles.outcome]
    points = np.zeros((n, n))
    games = np.zeros((n, n))
    np.add.at(points, (battles.model_a, battles.model_b), points_for_a)
    np.add.at(points, (battles.model_b, battles.model_a), battles.count - points_for_a)
    np.add.at(games, (battles.model_a, battles.model_b), battles.count)
    np.add.at(games, (battles.model_b, battles.model_a), battles.count)
    rates = np.full((n, n), np.nan)
    np.divide(points, games, out=rates, where=games > 0)
    return rates


def bradley_terry_leaderboard(
    model_a: npt.ArrayLike,
    model_b: npt.ArrayLike,
    choice_codes: npt.ArrayLike,
    n_models: int,
    *,
    bootstrap_rounds: int = 200,
    confidence: float = 0.95,
    anchor_model: int | None = None,
    seed: int = 0,
) -> Leaderboard:
    """Scores, bootstrap intervals, interval-based ranks and win rates for models 0..n−1."""
    return leaderboard_from_battles(
        aggregate_battles(model_a, model_b, choice_codes, n_models),
        bootstrap_rounds=bootstrap_rounds,
        confidence=confidence,
        anchor_model=anchor_model,
        seed=seed,
    )


def leaderboard_from_battles(
    battles: BattleCounts,
    *,
    bootstrap_rounds: int = 200,
    confidence: float = 0.95,
    anchor_model: int | None = None,
    seed: int = 0,
) -> Leaderboard:
    """``bradley_terry_leaderboard`` on votes already counted per cell (e.g. by SQL GROUP BY).

    Cells must be in increasing (model_a, model_b, outcome) order, as ``aggregate_battles``
    returns them, for the bootstrap draws to match the per-vote entry point exactly.
    """
    if bootstrap_rounds < 100:
        raise ValueError("use at least 100 bootstrap rounds for stable 95% intervals")
    votes = battles.votes_per_model()
    if np.any(votes == 0):
        raise ValueError(f"models without votes: {np.flatnonzero(votes == 0).tolist()}")
    strengths = fit_bradley_terry(battles)
    scores = elo_scores(strengths, anchor_model)
    resampled = bootstrap_cell_counts(battles, bootstrap_rounds, np.random.default_rng(seed))
    # Each round starts from the fit on all votes, a few Newton steps from its own optimum.
    bootstrap_scores = elo_scores(
        fit_bradley_terry_batch(battles, resampled, initial=strengths), anchor_model
    )
    tail = 100 * (1 - confidence) / 2
    lower, upper = np.percentile(bootstrap_scores, [tail, 100 - tail], axis=0)
    return Leaderboard(
        scores=scores,
        lower=as_float_array(lower),
        upper=as_float_array(upper),
        ranks=ranks_from_intervals(lower, upper),
        votes=votes,
        win_rate=empirical_win_rates(battles),
        bootstrap_scores=bootstrap_scores,
    )


@dataclass(frozen=True)
class _PairGames:
    """The unordered pairs of models that met, and how cell counts become their games and
    the first model's points."""

    first: IntArray  # lower model index of each pair
    second: IntArray
    pair_of_cell: IntArray
    points_for_first: FloatArray  # per cell: points of the pair's first model per vote
    n_models: int

    @classmethod
    def of(cls, battles: BattleCounts) -> "_PairGames":
        n = battles.n_models
        swapped = battles.model_a > battles.model_b
        first = np.where(swapped, battles.model_b, battles.model_a)
        second = np.where(swapped, battles.model_a, battles.model_b)
        points_for_a = POINTS_FOR_A[battles.outcome]
        pair_keys, pair_of_cell = np.unique(first * n + second, return_inverse=True)
        pair_first, pair_second = np.divmod(pair_keys, n)
        return cls(
            first=as_int_array(pair_first),
            second=as_int_array(pair_second),
            pair_of_cell=as_int_array(pair_of_cell.ravel()),
            points_for_first=as_float_array(np.where(swapped, 1.0 - points_for_a, points_for_a)),
            n_models=n,
        )

    def games_and_points(self, cell_counts: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Games and first-model points per pair (rounds × pairs)."""
        return (
            self._per_pair(cell_counts),
            self._per_pair(cell_counts * self.points_for_first),
        )

    def _per_pair(self, per_cell: FloatArray) -> FloatArray:
        n_pairs = len(self.first)
        rounds = np.arange(len(per_cell))[:, None] * n_pairs
        flat = np.bincount(
            (rounds + self.pair_of_cell).ravel(),
            weights=per_cell.ravel(),
            minlength=len(per_cell) * n_pairs,
        )
        return as_float_array(flat.reshape(len(per_cell), n_pairs))

    def logits(self, strengths: FloatArray) -> FloatArray:
        return as_float_array(strengths[:, self.first] - strengths[:, self.second])

    def to_models(self, per_pair: FloatArray) -> FloatArray:
        """Σ over pairs of per_pair · (e_first − e_second), per round (rounds × models)."""
        return self._scatter(per_pair, self.first) - self._scatter(per_pair, self.second)

    def _scatter(self, per_pair: FloatArray, models: IntArray) -> FloatArray:
        rounds = np.arange(len(per_pair))[:, None] * self.n_models
        flat = np.bincount(
            (rounds + models).ravel(),
            weights=per_pair.ravel(),
            minlength=len(per_pair) * self.n_models,
        )
        return as_float_array(flat.reshape(len(per_pair), self.n_models))

    def laplacian(self, per_pair: FloatArray) -> FloatArray:
        """Σ over pairs of per_pair · (e_i − e_j)(e_i − e_j)ᵀ plus the identifying ridge, per
        round (rounds × models × models). Each pair fills its own two off-diagonal cells."""
        n = self.n_models
        hessian = np.zeros((len(per_pair), n, n))
        hessian[:, self.first, self.second] = -per_pair
        hessian[:, self.second, self.first] = -per_pair
        diagonal = self._scatter(per_pair, self.first) + self._scatter(per_pair, self.second)
        hessian[:, np.arange(n), np.arange(n)] = diagonal + IDENTIFYING_RIDGE
        return as_float_array(hessian)

    def loss(self, strengths: FloatArray, games: FloatArray, points: FloatArray) -> FloatArray:
        """Negative log-likelihood plus the identifying ridge, per round."""
        logits = self.logits(strengths)
        nll = (games * np.logaddexp(0.0, logits) - points * logits).sum(axis=1)
        return as_float_array(nll + 0.5 * IDENTIFYING_RIDGE * (strengths**2).sum(axis=1))


def _line_search(
    strengths: FloatArray,
    step: FloatArray,
    loss: FloatArray,
    loss_at: Callable[[FloatArray], FloatArray],
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Each round's step size: halved until the loss does not rise (guards overshooting), or
    doubled while the loss keeps falling.

    Where some models won (or lost) every game, the optimum lies far out, held only by the
    identifying ridge, and a full Newton step gains about one log-odds unit per iteration;
    doubling reaches it in a handful of iterations instead of running into the cap. Near an
    optimum the step is small and a doubled one would overshoot, so it is not tried there.
    """
    step_size = np.ones(len(strengths))
    slack = 1e-12 * (1.0 + np.abs(loss))
    for _ in range(50):
        candidate_loss = loss_at(strengths - step_size[:, None] * step)
        worse = candidate_loss > loss + slack
        if not worse.any():
            break
        step_size = np.where(worse, step_size / 2, step_size)
    spread = np.max(np.abs(step - step.mean(axis=1, keepdims=True)), axis=1)
    growing = (step_size == 1.0) & (spread > LONG_STEP)
    for _ in range(MAX_STEP_DOUBLINGS):
        if not growing.any():
            break
        trial = np.where(growing, 2 * step_size, step_size)
        trial_loss = loss_at(strengths - trial[:, None] * step)
        growing &= trial_loss < candidate_loss - slack
        step_size = np.where(growing, trial, step_size)
        candidate_loss = np.where(growing, trial_loss, candidate_loss)
    return as_float_array(strengths - step_size[:, None] * step), candidate_loss, step_size
