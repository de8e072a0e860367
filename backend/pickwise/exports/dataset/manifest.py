"""manifest.json: what was exported, how, and how to check and reproduce it."""

import shlex
from dataclasses import dataclass
from datetime import datetime

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


def reproduce_command(project_slug: str, options: ExportOptions) -> str:
    """The CLI call that makes the same export (same rows, byte for byte)."""
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
        "counts": {
            "unit": options.unit,
            "votes_read": stats.votes_read,
            "pairs_read": stats.pairs_read,
            "kept": stats.kept,
            "dropped": dict(sorted(stats.dropped.items())),
            "system_prompt_dropped": stats.system_prompt_dropped,
            "prompts": stats.prompts_read,
            "repeated_prompts": stats.repeated_prompts,
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
