"""Votes in, formatted rows with their split out: the part every export shares.

`RowStream` is push-based (feed one vote or one pair, get the rows it completes) so the same
code serves a sync iterator, an async database stream and the file writer alike.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pickwise.exports.dataset.aggregation import (
    AggregationOptions,
    DropReason,
    ExportStats,
    PairGrouper,
    PreferencePair,
    UnsortedVotesError,
    aggregate_pair,
)
from pickwise.exports.dataset.formats import (
    ExportFormat,
    Row,
    hh_rlhf_marker_problem,
    hh_rlhf_row,
    kto_rows,
    openai_row,
    trl_row,
    vote_row,
)
from pickwise.exports.dataset.records import PairVotes, PromptRecord, VoteRecord
from pickwise.exports.dataset.splits import (
    RepeatedPrompts,
    Split,
    check_test_fraction,
    split_for_prompt,
)
from pickwise.vocabulary import Decision

ExportItem = VoteRecord | PairVotes
"""What an export is fed: judgments one by one, or whole pairs (not for the votes format)."""

ProgressCallback = Callable[[int], None]
"""Called with the number of votes read so far (for a progress bar over the vote count)."""

PROGRESS_EVERY = 1000


@dataclass(frozen=True, slots=True)
class ExportOptions:
    format: ExportFormat
    # Ignored by the votes format, which exports every judgment as it is.
    aggregation: AggregationOptions = field(default_factory=AggregationOptions)
    test_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        check_test_fraction(self.test_fraction)

    @property
    def unit(self) -> str:
        """What `kept` and `dropped` count: judgments or pairs."""
        return "judgment" if self.format is ExportFormat.VOTES else self.aggregation.unit


@dataclass(frozen=True, slots=True)
class SplitRow:
    split: Split
    row: Row


class RowStream:
    """Feed votes (or whole pairs) in order; get back the rows of each pair once it is complete."""

    def __init__(
        self,
        options: ExportOptions,
        *,
        conversational: bool,
        stats: ExportStats | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.options = options
        self.conversational = conversational
        self.stats = stats if stats is not None else ExportStats()
        self._progress = progress
        self._grouper = PairGrouper()
        self._last_pair: tuple[str, int] | None = None
        # Pairs of one prompt arrive together: its split is computed once.
        self._split_of: tuple[str, Split] | None = None
        self._repeated = RepeatedPrompts()

    def push(self, item: ExportItem) -> list[SplitRow]:
        if isinstance(item, PairVotes):
            return self._push_pair(item)
        self._count_votes(1)
        finished = self._grouper.push(item)
        return [] if finished is None else self._rows_for_votes(finished)

    def finish(self) -> list[SplitRow]:
        last = self._grouper.flush()
        rows = [] if last is None else self._rows_for_votes(last)
        self.stats.prompts_read = self._repeated.prompts
        self.stats.repeated_prompts = self._repeated.repeated()
        if self._progress is not None:
            self._progress(self.stats.votes_read)
        return rows

    def _push_pair(self, pair: PairVotes) -> list[SplitRow]:
        if self.options.format is ExportFormat.VOTES:
            raise TypeError("the votes format exports every judgment: feed VoteRecords")
        # A pair read whole follows any votes fed one by one.
        pending = self._grouper.flush()
        rows = [] if pending is None else self._rows_for_votes(pending)
        key = (pair.prompt.external_id, pair.pair_id)
        if self._last_pair is not None and key <= self._last_pair:
            raise UnsortedVotesError(
                f"pair {pair.pair_id} arrived out of order; sort the export query by "
                '(prompt external_id COLLATE "C", pair id)'
            )
        self._last_pair = key
        self._count_votes(len(pair.choices))
        return rows + self._rows_for_pair(pair)

    def _count_votes(self, count: int) -> None:
        before = self.stats.votes_read
        self.stats.votes_read += count
        if self._progress is not None and (
            before // PROGRESS_EVERY != self.stats.votes_read // PROGRESS_EVERY
        ):
            self._progress(self.stats.votes_read)

    def _rows_for_votes(self, votes: Sequence[VoteRecord]) -> list[SplitRow]:
        if self.options.format is not ExportFormat.VOTES:
            return self._rows_for_pair(PairVotes.from_votes(votes))
        self.stats.count_pair(len(votes))
        decision = votes[0].adjudication
        if decision is not None:
            # Every vote row says the decision; a pair decided "drop" gives none.
            dropped = decision == Decision.DROP
            self.stats.adjudicated["dropped" if dropped else "kept"] += 1
            if dropped:
                self.stats.dropped[DropReason.ADJUDICATED_DROP] += len(votes)
                return []
        self.stats.kept += len(votes)
        return self._with_split(votes[0].prompt, [vote_row(vote) for vote in votes])

    def _rows_for_pair(self, pair: PairVotes) -> list[SplitRow]:
        self.stats.count_pair(len(pair.choices))
        outcome = aggregate_pair(pair, self.options.aggregation)
        if outcome.dropped:
            self.stats.dropped.update(outcome.dropped)
        self.stats.kept += len(outcome.kept)
        rows = [row for kept in outcome.kept for row in self._format(kept)]
        if pair.adjudication is not None:
            self.stats.adjudicated["kept" if rows else "dropped"] += 1
        return self._with_split(pair.prompt, rows)

    def _with_split(self, prompt: PromptRecord, rows: list[Row]) -> list[SplitRow]:
        if self._split_of is None or self._split_of[0] != prompt.external_id:
            split = split_for_prompt(
                prompt, test_fraction=self.options.test_fraction, seed=self.options.seed
            )
            self._split_of = (prompt.external_id, split)
            self._repeated.add(prompt)
        split = self._split_of[1]
        self.stats.rows[split] += len(rows)
        return [SplitRow(split, row) for row in rows]

    def _format(self, pair: PreferencePair) -> tuple[Row, ...]:
        match self.options.format:
            case ExportFormat.TRL:
                return (trl_row(pair, conversational=self.conversational),)
            case ExportFormat.KTO:
                return kto_rows(pair, conversational=self.conversational)
            case ExportFormat.OPENAI:
                return (openai_row(pair),)
            case ExportFormat.HH_RLHF:
                problem = hh_rlhf_marker_problem(pair)
                if problem is not None:
                    # Kept by the aggregation, left out of this format only.
                    self.stats.kept -= 1
                    self.stats.dropped[problem] += 1
                    return ()
                if pair.prompt.has_system:
                    self.stats.system_prompt_dropped += 1
                return (hh_rlhf_row(pair),)
            case ExportFormat.VOTES:
                raise AssertionError("votes rows are not built from pairs")
