"""The dataset card (README.md) that makes an export folder a Hugging Face dataset.

YAML front matter is written by hand (the backend does not depend on PyYAML): every string is
emitted as a JSON string, which is also a valid YAML double-quoted scalar.
"""

import json
import re
from dataclasses import dataclass

from pickwise.exports.dataset.aggregation import AggregationMode, DropReason, ExportStats
from pickwise.exports.dataset.formats import ExportFormat
from pickwise.exports.dataset.manifest import SelectionRecord
from pickwise.exports.dataset.overlap import OverlapNote, votes_per_pair_in_words
from pickwise.exports.dataset.pipeline import ExportOptions
from pickwise.exports.dataset.records import InvalidExportOptions
from pickwise.exports.dataset.splits import Split

# Hub task ids (huggingface.js packages/tasks/src/pipelines.ts). There is no "preference"
# task and "conversational" was retired; DPO/KTO train generators and reward models are
# sequence classifiers. "reinforcement-learning" is the Hub's RL-environment modality.
TASK_CATEGORIES = ("text-generation", "text-classification")

BASE_TAGS = ("human-feedback", "preference", "pairwise-comparison", "rlhf", "pickwise")
FORMAT_TAGS: dict[ExportFormat, tuple[str, ...]] = {
    ExportFormat.VOTES: ("raw-votes",),
    ExportFormat.TRL: ("dpo", "reward-modeling", "trl"),
    ExportFormat.OPENAI: ("dpo", "openai"),
    ExportFormat.HH_RLHF: ("reward-modeling", "hh-rlhf"),
    ExportFormat.KTO: ("kto", "trl"),
}

FORMAT_SUMMARIES: dict[ExportFormat, str] = {
    ExportFormat.VOTES: "every judgment as given, one line each (ties and both-bad included)",
    ExportFormat.TRL: "TRL preference rows `prompt` / `chosen` / `rejected` / `margin`",
    ExportFormat.OPENAI: "OpenAI preference fine-tuning rows `input` / `preferred_output` / "
    "`non_preferred_output`",
    ExportFormat.HH_RLHF: "Anthropic HH-RLHF transcripts `chosen` / `rejected`",
    ExportFormat.KTO: "TRL unpaired preference rows `prompt` / `completion` / `label`",
}

DROP_NOTES: dict[str, str] = {
    DropReason.MARKER_IN_PROMPT: ' (a prompt turn contains "\\n\\nHuman:" or '
    '"\\n\\nAssistant:", which would read as a turn of the transcript)',
    DropReason.MARKER_IN_RESPONSE: ' (a response contains "\\n\\nHuman:" or '
    '"\\n\\nAssistant:", which would read as a turn of the transcript)',
}

AGGREGATION_SUMMARIES: dict[AggregationMode, str] = {
    AggregationMode.MAJORITY: "one row per pair, for the choice with more votes than any other",
    AggregationMode.UNANIMOUS: "one row per pair whose raters all made the same choice",
    AggregationMode.EACH_VOTE: "one row per judgment for A or B",
}

_SIZE_BOUNDS = (
    (10**3, "n<1K"),
    (10**4, "1K<n<10K"),
    (10**5, "10K<n<100K"),
    (10**6, "100K<n<1M"),
    (10**7, "1M<n<10M"),
    (10**8, "10M<n<100M"),
    (10**9, "100M<n<1B"),
    (10**10, "1B<n<10B"),
    (10**11, "10B<n<100B"),
    (10**12, "100B<n<1T"),
)
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[a-zA-Z0-9]{2,8})*|code|multilingual")


@dataclass(frozen=True, slots=True)
class CardInfo:
    pretty_name: str
    languages: tuple[str, ...] = ("en",)
    overlap: OverlapNote | None = None

    def __post_init__(self) -> None:
        for language in self.languages:
            if not _LANGUAGE.fullmatch(language):
                raise InvalidExportOptions(f"{language!r} is not an ISO 639 language code")


def size_category(row_count: int) -> str:
    """The Hub's size bucket for `row_count` rows."""
    for bound, label in _SIZE_BOUNDS:
        if row_count < bound:
            return label
    return "n>1T"


def render_dataset_card(
    info: CardInfo,
    options: ExportOptions,
    stats: ExportStats,
    *,
    conversational: bool,
    selection: SelectionRecord | None = None,
) -> str:
    body = _body(info, options, stats, conversational, selection or SelectionRecord())
    return _front_matter(info, options, stats) + "\n" + body


def _front_matter(info: CardInfo, options: ExportOptions, stats: ExportStats) -> str:
    tags = BASE_TAGS + FORMAT_TAGS[options.format]
    lines = [
        "---",
        "# Placeholder: pickwise cannot know the terms of the prompts and responses.",
        "# Replace it with the dataset's real licence before publishing:",
        "# https://huggingface.co/docs/hub/repositories-licenses",
        "license: other",
        "language:",
        *(f"- {_yaml_string(language)}" for language in info.languages),
        "task_categories:",
        *(f"- {category}" for category in TASK_CATEGORIES),
        "tags:",
        *(f"- {tag}" for tag in tags),
        "size_categories:",
        f"- {_yaml_string(size_category(sum(stats.rows.values())))}",
        f"pretty_name: {_yaml_string(info.pretty_name)}",
    ]
    # An empty split makes `load_dataset` fail ("corresponds to no data"), so only splits
    # with rows are declared.
    splits = [split for split in Split if stats.rows[split] > 0]
    if splits:
        lines += ["configs:", "- config_name: default", "  data_files:"]
        for split in splits:
            lines += [f"  - split: {split.value}", f"    path: {split.value}.jsonl"]
    lines.append("---")
    return "\n".join(lines) + "\n"


def _body(
    info: CardInfo,
    options: ExportOptions,
    stats: ExportStats,
    conversational: bool,
    selection: SelectionRecord,
) -> str:
    unit = options.unit
    lines = [
        f"# {_one_line(info.pretty_name)}",
        "",
        "Human pairwise preferences collected with pickwise, exported in the "
        f"`{options.format.value}` format: {FORMAT_SUMMARIES[options.format]}.",
        "",
        "## Contents",
        "",
        "| split | rows |",
        "| --- | ---: |",
        *(f"| {split.value} | {stats.rows[split]} |" for split in Split),
        "",
        f"- judgments read: {stats.votes_read}, on {stats.pairs_read} pairs",
        f"- kept: {stats.kept} {unit}s",
    ]
    for reason, count in sorted(stats.dropped.items()):
        lines.append(f"- dropped ({reason}): {count} {unit}s{DROP_NOTES.get(reason, '')}")
    if stats.adjudicated:
        lines.append(
            f"- decided by an admin (adjudicated): {stats.adjudicated['kept']} pairs exported "
            f"as decided, {stats.adjudicated['dropped']} left out (a tie, both bad, or drop); "
            "a decision replaces the pair's votes"
        )
    if selection.filter:
        chosen = "; ".join(f"{name}: {value}" for name, value in selection.filter.items())
        lines.append(f"- pairs selected in the pairs explorer by {_one_line(chosen)}")
    lines.append(f"- prompts: {stats.prompts_read}")
    if stats.repeated_prompts:
        lines.append(
            f"- {stats.repeated_prompts} prompts share their conversation with another prompt "
            "id; each such group is on one side of the split"
        )
    if stats.system_prompt_dropped:
        lines.append(
            f"- system prompt left out of {stats.system_prompt_dropped} rows "
            "(HH-RLHF transcripts have no place for one)"
        )
    if options.format in (ExportFormat.TRL, ExportFormat.KTO):
        shape = "lists of `{role, content}` messages" if conversational else "plain strings"
        lines.append(f"- prompts and completions are {shape} in every row")
    lines += ["", "## How it was collected", "", *_collection_notes(info, options, stats), ""]
    lines += [
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        'dataset = load_dataset("path/to/this/folder")',
        "```",
        "",
        "`manifest.json` next to this card lists the options, the drop counts and the sha256 "
        "of each file, and the command that reproduces the export.",
        "",
    ]
    return "\n".join(lines)


def _collection_notes(info: CardInfo, options: ExportOptions, stats: ExportStats) -> list[str]:
    notes = [
        "Raters saw one prompt and two responses side by side, in random order, and chose "
        "A, B, a tie, or both bad, optionally with a strength on the project's scale and a "
        "rationale. Raters appear only under pseudonyms.",
        "",
    ]
    if info.overlap is not None:
        notes.append(f"- raters per pair: {_one_line(info.overlap.summary)}")
    if stats.votes_per_pair:
        notes.append(f"- votes per pair read: {votes_per_pair_in_words(stats.votes_per_pair)}")
    if options.format is not ExportFormat.VOTES:
        aggregation = options.aggregation
        notes += [
            f"- aggregation: `{aggregation.mode.value}`: {AGGREGATION_SUMMARIES[aggregation.mode]}",
            f"- votes per pair: at least {aggregation.min_votes}; the winner's share of them: "
            f"at least {aggregation.min_agreement:g}",
            "- ties, both-bad and undecided pairs are left out (no trainer format has a tie)",
        ]
    notes.append(
        f"- split by conversation: a prompt is in test when sha256 of (its whitespace-"
        f"normalised system prompt and turns, seed {options.seed}) falls below "
        f"{options.test_fraction:g}, so no prompt is in both splits, even under two ids"
    )
    return notes


def _yaml_string(text: str) -> str:
    return json.dumps(_one_line(text), ensure_ascii=False)


def _one_line(text: str) -> str:
    # Line breaks (including U+2028 and U+0085, which YAML also breaks on) and control
    # characters would end the heading or the YAML scalar early.
    return "".join(char if char.isprintable() else " " for char in text)
