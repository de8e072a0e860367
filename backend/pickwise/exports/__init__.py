"""Dataset export: votes in, trainer-ready JSONL out (votes, trl, openai, hh-rlhf, kto).

Pure: no database (except `service` and `repository`). The export query yields `VoteRecord`s
or `PairVotes` sorted by (prompt external id, pair id, judgment id); everything here streams
them.
"""

from pickwise.exports.aggregation import (
    AggregationMode,
    AggregationOptions,
    DropReason,
    PreferencePair,
    UnsortedVotesError,
    aggregate,
    group_votes_by_pair,
)
from pickwise.exports.archive import zip_export
from pickwise.exports.card import CardInfo
from pickwise.exports.errors import InvalidExportOptions
from pickwise.exports.formats import (
    ConversationalMismatchError,
    ExportFormat,
    decide_conversational,
    needs_conversational,
)
from pickwise.exports.manifest import reproduce_command
from pickwise.exports.ndjson import NDJSON_MEDIA_TYPE, aiter_ndjson, iter_ndjson
from pickwise.exports.pipeline import (
    ExportItem,
    ExportOptions,
    ProgressCallback,
    RowStream,
    iter_rows,
)
from pickwise.exports.records import (
    InvalidRecordError,
    Message,
    PairVotes,
    PromptRecord,
    VoteRecord,
)
from pickwise.exports.splits import Split, split_for_prompt
from pickwise.exports.stats import ExportStats
from pickwise.exports.writer import ExportResult, ExportWriter, write_export

__all__ = [
    "NDJSON_MEDIA_TYPE",
    "AggregationMode",
    "AggregationOptions",
    "CardInfo",
    "ConversationalMismatchError",
    "DropReason",
    "ExportFormat",
    "ExportItem",
    "ExportOptions",
    "ExportResult",
    "ExportStats",
    "ExportWriter",
    "InvalidExportOptions",
    "InvalidRecordError",
    "Message",
    "PairVotes",
    "PreferencePair",
    "ProgressCallback",
    "PromptRecord",
    "RowStream",
    "Split",
    "UnsortedVotesError",
    "VoteRecord",
    "aggregate",
    "aiter_ndjson",
    "decide_conversational",
    "group_votes_by_pair",
    "iter_ndjson",
    "iter_rows",
    "needs_conversational",
    "reproduce_command",
    "split_for_prompt",
    "write_export",
    "zip_export",
]
