"""manifest.json: what was exported, how, and how to check and reproduce it."""

import shlex
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pickwise import __version__
from pickwise.exports.dataset.aggregation import ExportStats
from pickwise.exports.dataset.formats import ExportFormat, as_utc
from pickwise.exports.dataset.overlap import OverlapNote, votes_per_pair
from pickwise.exports.dataset.pipeline import ExportOptions


@dataclass(frozen=True, slots=True)
class FileDigest:
    sha256: str
    lines: int
    bytes: int


# The explorer filter's fields that the CLI spells differently.
_FLAG_NAMES = {"q": "search"}


@dataclass(frozen=True)
class SelectionRecord:
    """Which pairs and votes went in: the pairs explorer's filter (its set fields, as JSON)
    and the vote options."""

    filter: dict[str, Any] = field(default_factory=dict)
    include_gold: bool = False
    include_excluded: bool = False

    def cli_args(self) -> list[str]:
        args: list[str] = []
        for name, value in self.filter.items():
            flag = "--" + _FLAG_NAMES.get(name, name).replace("_", "-")
            if isinstance(value, bool):
                args.append(flag if value else "--no-" + flag[2:])
                continue
            for item in value if isinstance(value, list) else [value]:
                args += [flag, str(item)]
        if self.include_gold:
            args.append("--include-gold")
        if self.include_excluded:
            args.append("--include-excluded")
        return args

    def as_json(self) -> dict[str, object]:
        return {
            "filter": self.filter,
            "include_gold": self.include_gold,
            "include_excluded": self.include_excluded,
        }


def reproduce_command(
    project_slug: str, options: ExportOptions, selection: SelectionRecord | None = None
) -> str:
    """The CLI call that makes the same export (same rows, byte for byte, while the data and
    the filter's answer stay the same)."""
    args = ["pickwise", "export", project_slug, "--format", options.format.value]
    if options.format is not ExportFormat.VOTES:
        aggregation = options.aggregation
        args += [
            "--aggregation",
            aggregation.mode.value,
            "--min-votes",
            str(aggregation.min_votes),
            "--min-agreement",
            repr(aggregation.min_agreement),
        ]
    args += ["--test-fraction", repr(options.test_fraction), "--seed", str(options.seed)]
    if selection is not None:
        args += selection.cli_args()
    return shlex.join(args)


def build_manifest(
    *,
    project_slug: str,
    options: ExportOptions,
    stats: ExportStats,
    conversational: bool,
    files: dict[str, FileDigest],
    exported_at: datetime,
    command: str,
    overlap: OverlapNote | None = None,
    selection: SelectionRecord | None = None,
) -> dict[str, object]:
    is_votes = options.format is ExportFormat.VOTES
    aggregation = options.aggregation
    return {
        "pickwise_version": __version__,
        "project": project_slug,
        "format": options.format.value,
        "exported_at": as_utc(exported_at).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command,
        "options": {
            "aggregation": None if is_votes else aggregation.mode.value,
            "min_votes": None if is_votes else aggregation.min_votes,
            "min_agreement": None if is_votes else aggregation.min_agreement,
            "test_fraction": options.test_fraction,
            "seed": options.seed,
            "conversational": conversational,
        },
        "selection": (selection or SelectionRecord()).as_json(),
        "counts": {
            "unit": options.unit,
            "votes_read": stats.votes_read,
            "pairs_read": stats.pairs_read,
            "kept": stats.kept,
            "dropped": dict(sorted(stats.dropped.items())),
            "system_prompt_dropped": stats.system_prompt_dropped,
            "prompts": stats.prompts_read,
            "repeated_prompts": stats.repeated_prompts,
            # Pairs an admin decided (docs/review.md): exported as decided, or left out.
            "adjudicated": {key: stats.adjudicated[key] for key in ("kept", "dropped")},
            "rows": {split: stats.rows[split] for split in ("train", "test")},
            "votes_per_pair": votes_per_pair(stats.votes_per_pair),
        },
        "overlap": None
        if overlap is None
        else {"policy": dict(overlap.settings), "summary": overlap.summary},
        "files": {
            name: {"sha256": digest.sha256, "lines": digest.lines, "bytes": digest.bytes}
            for name, digest in files.items()
        },
    }
