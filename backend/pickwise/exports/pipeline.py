"""Votes in, formatted rows with their split out: the part every export shares.

`RowStream` is push-based (feed one vote, get the rows it completes) so the same code serves a
sync iterator, an async database stream and the file writer alike.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from pickwise.exports.aggregation import (
    AggregationOptions,
    PairGrouper,
    PreferencePair,
    aggregate_pair,
)
from pickwise.exports.formats import (
    ExportFormat,
    Row,
    hh_rlhf_row,
    kto_rows,
    openai_row,
    trl_row,
    vote_row,
)
from pickwise.exports.records import VoteRecord
from pickwise.exports.splits import Split, check_test_fraction, split_for_prompt
from pickwise.exports.stats import ExportStats

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
    """Feed votes in order; get back the rows of each pair once the pair is complete."""

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

    def push(self, vote: VoteRecord) -> list[SplitRow]:
        self.stats.votes_read += 1
        if self._progress is not None and self.stats.votes_read % PROGRESS_EVERY == 0:
            self._progress(self.stats.votes_read)
        finished = self._grouper.push(vote)
        return [] if finished is None else self._rows_for_pair(finished)

    def finish(self) -> list[SplitRow]:
        last = self._grouper.flush()
        rows = [] if last is None else self._rows_for_pair(last)
        if self._progress is not None:
            self._progress(self.stats.votes_read)
        return rows

    def _rows_for_pair(self, votes: Sequence[VoteRecord]) -> list[SplitRow]:
        self.stats.pairs_read += 1
        split = split_for_prompt(
            votes[0].prompt.external_id,
            test_fraction=self.options.test_fraction,
            seed=self.options.seed,
        )
        if self.options.format is ExportFormat.VOTES:
            self.stats.kept += len(votes)
            rows = [vote_row(vote) for vote in votes]
        else:
            outcome = aggregate_pair(votes, self.options.aggregation)
            self.stats.dropped.update(outcome.dropped)
            self.stats.kept += len(outcome.kept)
            rows = [row for pair in outcome.kept for row in self._format(pair)]
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
                if pair.prompt.has_system:
                    self.stats.system_prompt_dropped += 1
                return (hh_rlhf_row(pair),)
            case ExportFormat.VOTES:
                raise AssertionError("votes rows are not built from pairs")


def iter_rows(
    votes: Iterable[VoteRecord],
    options: ExportOptions,
    *,
    conversational: bool,
    stats: ExportStats | None = None,
    progress: ProgressCallback | None = None,
) -> Iterator[SplitRow]:
    stream = RowStream(options, conversational=conversational, stats=stats, progress=progress)
    for vote in votes:
        yield from stream.push(vote)
    yield from stream.finish()
