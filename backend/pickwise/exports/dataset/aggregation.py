"""Turn the votes on each pair into preference rows, or say why a pair gives none.

Votes arrive sorted by (prompt external id, pair id, judgment id), so the votes of a pair are
consecutive: the stream is cut into pairs as it goes and never held whole.
"""

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from pickwise.exports.dataset.records import (
    InvalidExportOptions,
    InvalidRecordError,
    PairVotes,
    PromptRecord,
    VoteRecord,
)
from pickwise.vocabulary import CanonicalSide, Choice, Decision, chosen_side

# Agreement is a ratio of small integers; don't let 2/3 fail a 0.6666666666666666 threshold.
_AGREEMENT_TOLERANCE = 1e-9


# Running counts of an export, filled in while rows stream past; the manifest reports them.
@dataclass
class ExportStats:
    votes_read: int = 0
    pairs_read: int = 0
    # In the export's unit: pairs for majority/unanimous, judgments for each-vote and votes.
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    # hh-rlhf has no slot for a system prompt; count the rows that lost one.
    system_prompt_dropped: int = 0
    # Prompt ids read, and those whose conversation another prompt id has too (same side of
    # the split, whatever their ids). Set when the stream finishes.
    prompts_read: int = 0
    repeated_prompts: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    # Pairs read, by how many of their votes were read (adaptive overlap varies it).
    votes_per_pair: Counter[int] = field(default_factory=Counter)
    # Pairs an admin adjudicated: "kept" (their decision exported) or "dropped".
    adjudicated: Counter[str] = field(default_factory=Counter)

    def count_pair(self, votes: int) -> None:
        self.pairs_read += 1
        self.votes_per_pair[votes] += 1


# How strongly the raters preferred the winner, as the float TRL's RewardTrainer subtracts.
#
# RewardTrainer's loss is -logsigmoid(r_chosen - r_rejected - margin): a larger margin asks
# the reward model to separate the two responses further. The mapping:
#
# - A vote's strength is an index i on the project's scale of n labels (weakest first). It
#   maps to (i + 1) / n, so the strongest label is 1.0 and the weakest still counts as a
#   stated preference (1/n), never as "no preference".
# - A row's strength is the mean of that value over the winning votes that gave a strength.
# - The margin is that strength times the agreement (the share of the pair's votes that went
#   to the winner), rounded to 6 decimals: a unanimous "much better" is 1.0, a 2-of-3
#   "slightly better" on a 3-label scale is 1/3 x 2/3 = 0.222222.
# - 0.0 when no winning vote gave a strength (or the project has no scale). Never null: the
#   trainer turns the column into a float tensor.
MARGIN_DECIMALS = 6


def strength_fraction(strength: int, scale_size: int) -> float:
    """One vote's strength on a 0-1 scale: index i of n labels gives (i + 1) / n."""
    if not 0 <= strength < scale_size:
        raise ValueError(f"strength {strength} is outside a scale of {scale_size} labels")
    return (strength + 1) / scale_size


def mean_strength(fractions: Iterable[float]) -> float | None:
    values = list(fractions)
    if not values:
        return None
    return sum(values) / len(values)


def preference_margin(strength: float | None, agreement: float) -> float:
    if strength is None:
        return 0.0
    return round(strength * agreement, MARGIN_DECIMALS)


class AggregationMode(StrEnum):
    MAJORITY = "majority"
    UNANIMOUS = "unanimous"
    EACH_VOTE = "each-vote"

    @property
    def description(self) -> str:
        """How votes become rows, for the export page."""
        return _MODE_DESCRIPTIONS[self]


_MODE_DESCRIPTIONS = {
    AggregationMode.MAJORITY: (
        "One row per pair: the answer with more votes than any other wins; a pair whose top "
        "choices are level gives no row."
    ),
    AggregationMode.UNANIMOUS: "One row per pair, only where every vote picked the same answer.",
    AggregationMode.EACH_VOTE: (
        "One row per judgment: every vote for one answer is a row of its own, so a pair judged "
        "by three raters can give three rows, even disagreeing ones."
    ),
}


class DropReason(StrEnum):
    TOO_FEW_VOTES = "too_few_votes"
    NO_MAJORITY = "no_majority"
    NOT_UNANIMOUS = "not_unanimous"
    TIE = "tie"
    BOTH_BAD = "both_bad"
    BELOW_AGREEMENT = "below_agreement"
    # An admin's decision on the pair: no preference to export, or leave the pair out.
    ADJUDICATED_TIE = "adjudicated_tie"
    ADJUDICATED_BOTH_BAD = "adjudicated_both_bad"
    ADJUDICATED_DROP = "adjudicated_drop"
    # hh-rlhf only: a transcript marker inside the text would be read as a turn boundary.
    MARKER_IN_PROMPT = "hh_marker_in_prompt"
    MARKER_IN_RESPONSE = "hh_marker_in_response"

    @property
    def description(self) -> str:
        """Why rows were left out, in words, for the export page's preview."""
        return _DROP_DESCRIPTIONS[self]


_DROP_DESCRIPTIONS = {
    DropReason.TOO_FEW_VOTES: "Fewer votes than the minimum you set.",
    DropReason.NO_MAJORITY: "Two choices share the highest number of votes.",
    DropReason.NOT_UNANIMOUS: "The votes differ (you asked for unanimous pairs only).",
    DropReason.TIE: "The raters called it a tie; no trainer format can say that.",
    DropReason.BOTH_BAD: "The raters found both answers bad: neither can be the chosen one.",
    DropReason.BELOW_AGREEMENT: (
        "The winner's share of the votes is below the minimum agreement you set."
    ),
    DropReason.ADJUDICATED_TIE: (
        "An admin decided the pair is a tie: no trainer format can say that."
    ),
    DropReason.ADJUDICATED_BOTH_BAD: (
        "An admin decided both answers are bad: neither can be the chosen one."
    ),
    DropReason.ADJUDICATED_DROP: "An admin decided to leave the pair out of datasets.",
    DropReason.MARKER_IN_PROMPT: (
        "A prompt turn contains “Human:” or “Assistant:” markers, which would break an "
        "HH-RLHF transcript (other formats keep it)."
    ),
    DropReason.MARKER_IN_RESPONSE: (
        "An answer contains “Human:” or “Assistant:” markers, which would break an HH-RLHF "
        "transcript (other formats keep it)."
    ),
}


class UnsortedVotesError(InvalidRecordError):
    """The stream is not in (prompt external id, pair id, judgment id) order."""


@dataclass(frozen=True, slots=True)
class AggregationOptions:
    mode: AggregationMode = AggregationMode.MAJORITY
    min_votes: int = 1
    # Share of the pair's votes (ties and both-bad included) the winner needs.
    min_agreement: float = 0.0

    def __post_init__(self) -> None:
        if self.min_votes < 1:
            raise InvalidExportOptions("min_votes must be at least 1")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise InvalidExportOptions("min_agreement must be between 0 and 1")

    @property
    def unit(self) -> str:
        return "judgment" if self.mode is AggregationMode.EACH_VOTE else "pair"


@dataclass(frozen=True, slots=True)
class PreferencePair:
    """One preference row: the winner, the loser, and how sure the raters were."""

    pair_id: int
    prompt: PromptRecord
    winner: CanonicalSide
    chosen: str
    rejected: str
    chosen_model: str
    rejected_model: str
    vote_count: int
    winner_votes: int
    strength: float | None
    judgment_ids: tuple[int, ...]
    # The row is an admin's decision, not the votes' (agreement 1.0: the decision is final).
    adjudicated: bool = False

    @property
    def agreement(self) -> float:
        return self.winner_votes / self.vote_count

    @property
    def margin(self) -> float:
        return preference_margin(self.strength, self.agreement)


@dataclass(frozen=True, slots=True)
class PairOutcome:
    kept: tuple[PreferencePair, ...]
    dropped: tuple[DropReason, ...]


class PairGrouper:
    """Cuts a sorted vote stream into the votes of each pair, one vote at a time."""

    def __init__(self) -> None:
        self._current: list[VoteRecord] = []
        self._last_key: tuple[str, int, int] | None = None

    def push(self, vote: VoteRecord) -> tuple[VoteRecord, ...] | None:
        """Add a vote; return the previous pair's votes once this vote starts a new pair."""
        self._check_order(vote)
        if self._current and self._current[0].pair_id != vote.pair_id:
            finished = tuple(self._current)
            self._current = [vote]
            return finished
        self._current.append(vote)
        return None

    def flush(self) -> tuple[VoteRecord, ...] | None:
        finished = tuple(self._current) if self._current else None
        self._current = []
        return finished

    def _check_order(self, vote: VoteRecord) -> None:
        # Python compares strings by code point, like Postgres `COLLATE "C"` on UTF-8 text.
        key = (vote.prompt.external_id, vote.pair_id, vote.judgment_id)
        if self._last_key is not None and key <= self._last_key:
            raise UnsortedVotesError(
                f"judgment {vote.judgment_id} arrived out of order; sort the export query by "
                '(prompt external_id COLLATE "C", pair id, judgment id)'
            )
        if self._current and self._current[0].pair_id == vote.pair_id:
            first = self._current[0]
            if first.prompt.prompt_id != vote.prompt.prompt_id:
                raise InvalidRecordError(f"pair {vote.pair_id} has judgments on two prompts")
        self._last_key = key


def group_votes_by_pair(votes: Iterable[VoteRecord]) -> Iterator[tuple[VoteRecord, ...]]:
    grouper = PairGrouper()
    for vote in votes:
        finished = grouper.push(vote)
        if finished is not None:
            yield finished
    last = grouper.flush()
    if last is not None:
        yield last


# What a decision other than A or B does to its pair.
_DECISION_DROPS = {
    Decision.TIE: DropReason.ADJUDICATED_TIE,
    Decision.BOTH_BAD: DropReason.ADJUDICATED_BOTH_BAD,
    Decision.DROP: DropReason.ADJUDICATED_DROP,
}


def aggregate_pair(pair: PairVotes, options: AggregationOptions) -> PairOutcome:
    """The rows one pair gives under `options`, and one drop reason per unit left out.

    An adjudicated pair gives its decision instead, whatever the aggregation and thresholds:
    one row for A or B (or one drop reason), in every mode (`decided`)."""
    if pair.adjudication is not None:
        return decided(pair, pair.adjudication)
    counts = _count_choices(pair.choices)
    if options.mode is AggregationMode.EACH_VOTE:
        return _each_vote(pair, counts, options)
    votes = len(pair.choices)
    if votes < options.min_votes:
        return PairOutcome(kept=(), dropped=(DropReason.TOO_FEW_VOTES,))
    if options.mode is AggregationMode.UNANIMOUS and len(counts) > 1:
        return PairOutcome(kept=(), dropped=(DropReason.NOT_UNANIMOUS,))
    winner_votes = max(counts.values())
    leaders = [choice for choice, count in counts.items() if count == winner_votes]
    if len(leaders) > 1:
        return PairOutcome(kept=(), dropped=(DropReason.NO_MAJORITY,))
    winner_choice = leaders[0]
    reason = _reason_to_drop(winner_choice, winner_votes / votes, options)
    if reason is not None:
        return PairOutcome(kept=(), dropped=(reason,))
    backing = [index for index, choice in enumerate(pair.choices) if choice == winner_choice]
    side = chosen_side(winner_choice)
    assert side is not None  # a tie or both bad was dropped above
    return PairOutcome(kept=(_preference(pair, side, backing, winner_votes),), dropped=())


def decided(pair: PairVotes, decision: Decision) -> PairOutcome:
    """An admin's decision replaces the votes: A or B is one row with agreement 1.0, whose
    strength comes from the votes that chose the same side (if any gave one)."""
    side = chosen_side(decision)
    if side is None:
        return PairOutcome(kept=(), dropped=(_DECISION_DROPS[decision],))
    backing = [index for index, choice in enumerate(pair.choices) if chosen_side(choice) == side]
    row = _preference(pair, side, backing, winner_votes=1)
    return PairOutcome(kept=(replace(row, vote_count=1, adjudicated=True),), dropped=())


def aggregate(
    votes: Iterable[VoteRecord],
    options: AggregationOptions,
    stats: ExportStats | None = None,
) -> Iterator[PreferencePair]:
    """Stream preference rows; `stats` (if given) counts votes, pairs, kept and dropped."""
    stats = stats if stats is not None else ExportStats()
    for pair_votes in group_votes_by_pair(votes):
        stats.votes_read += len(pair_votes)
        stats.count_pair(len(pair_votes))
        outcome = aggregate_pair(PairVotes.from_votes(pair_votes), options)
        stats.dropped.update(outcome.dropped)
        stats.kept += len(outcome.kept)
        yield from outcome.kept


def _count_choices(choices: Sequence[str]) -> dict[str, int]:
    """Votes per choice, in the order the choices first appear (a handful of votes: no Counter)."""
    counts: dict[str, int] = {}
    for choice in choices:
        counts[choice] = counts.get(choice, 0) + 1
    return counts


def _each_vote(pair: PairVotes, counts: dict[str, int], options: AggregationOptions) -> PairOutcome:
    votes = len(pair.choices)
    if votes < options.min_votes:
        return PairOutcome(kept=(), dropped=(DropReason.TOO_FEW_VOTES,) * votes)
    kept: list[PreferencePair] = []
    dropped: list[DropReason] = []
    for index, choice in enumerate(pair.choices):
        reason = _reason_to_drop(choice, counts[choice] / votes, options)
        if reason is not None:
            dropped.append(reason)
            continue
        side = chosen_side(choice)
        assert side is not None  # a tie or both bad was dropped above
        kept.append(_preference(pair, side, [index], counts[choice]))
    return PairOutcome(kept=tuple(kept), dropped=tuple(dropped))


def _reason_to_drop(
    choice: str, agreement: float, options: AggregationOptions
) -> DropReason | None:
    if choice == Choice.TIE:
        return DropReason.TIE
    if choice == Choice.BOTH_BAD:
        return DropReason.BOTH_BAD
    if agreement + _AGREEMENT_TOLERANCE < options.min_agreement:
        return DropReason.BELOW_AGREEMENT
    return None


def _preference(
    pair: PairVotes, side: CanonicalSide, backing: Sequence[int], winner_votes: int
) -> PreferencePair:
    """A row for `side` over the other; `backing` (vote indexes) give its strength."""
    scale = len(pair.strength_scale)
    strength = mean_strength(
        strength_fraction(given, scale)
        for given in (pair.strengths[index] for index in backing)
        if given is not None
    )
    a_wins = side == CanonicalSide.A
    return PreferencePair(
        pair_id=pair.pair_id,
        prompt=pair.prompt,
        winner=side,
        chosen=pair.response_a if a_wins else pair.response_b,
        rejected=pair.response_b if a_wins else pair.response_a,
        chosen_model=pair.model_a if a_wins else pair.model_b,
        rejected_model=pair.model_b if a_wins else pair.model_a,
        vote_count=len(pair.choices),
        winner_votes=winner_votes,
        strength=strength,
        judgment_ids=tuple(pair.judgment_ids[index] for index in backing),
    )
