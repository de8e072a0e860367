"""Every export loads in Hugging Face `datasets` with typed columns (no `Json` fallback)."""

import os

# Before `datasets` is imported: it reads these once.
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

from pathlib import Path
from typing import Any

import datasets
import pytest

from pickwise.exports.dataset.aggregation import AggregationMode, AggregationOptions
from pickwise.exports.dataset.formats import ExportFormat, needs_conversational
from pickwise.exports.dataset.pipeline import ExportOptions
from pickwise.exports.dataset.records import VoteRecord
from pickwise.exports.dataset.writer import ExportWriter
from pickwise.vocabulary import Choice
from tests.exports.factory import VoteFactory, make_prompt, mixed_stream
from tests.exports.helpers import read_manifest

OUTCOMES: list[list[Choice]] = [["b", "b", "tie"], ["a", "b", "a"], ["a", "a", "a"]]


def rich_stream() -> list[VoteRecord]:
    """System prompts, several turns, criteria on some votes, strength on some: the awkward mix."""
    factory = VoteFactory(criteria_names=("accuracy", "style"))
    votes: list[VoteRecord] = []
    for index in range(30):
        prompt = make_prompt(
            f"rich-{index:03d}",
            f"Question {index}?",
            system="Be brief." if index % 3 == 0 else None,
            history=("Hello.", "Hi! How can I help?") if index % 4 == 0 else (),
        )
        votes += factory.pair(
            prompt,
            OUTCOMES[index % len(OUTCOMES)],
            strengths=[index % 3, None, 1],
            criteria={"accuracy": "a", "style": "tie"} if index % 5 == 0 else None,
            rationale="Clearer." if index % 2 else None,
        )
    return votes


def json_feature_paths(feature: Any, path: str = "") -> list[str]:
    """Where in a (nested) feature `datasets` fell back to its untyped `Json` feature."""
    if isinstance(feature, datasets.Json):
        return [path or "<root>"]
    if isinstance(feature, dict):
        return [
            p for key, value in feature.items() for p in json_feature_paths(value, f"{path}.{key}")
        ]
    if isinstance(feature, list | tuple):
        return [p for item in feature for p in json_feature_paths(item, f"{path}[]")]
    inner = getattr(feature, "feature", None)
    return [] if inner is None else json_feature_paths(inner, f"{path}[]")


def load(folder: Path, cache: Path) -> datasets.DatasetDict:
    manifest = read_manifest(folder)
    files = {
        split: str(folder / f"{split}.jsonl")
        for split, rows in manifest["counts"]["rows"].items()
        if rows > 0
    }
    loaded = datasets.load_dataset("json", data_files=files, cache_dir=str(cache))
    assert isinstance(loaded, datasets.DatasetDict)
    return loaded


def test_the_json_check_can_fail(tmp_path: Path) -> None:
    # A dict column whose keys vary: exactly what the exports avoid.
    path = tmp_path / "bad.jsonl"
    path.write_text('{"criteria":{}}\n{"criteria":{"style":"a"}}\n')
    loaded = datasets.load_dataset(
        "json", data_files={"train": str(path)}, cache_dir=str(tmp_path / "cache")
    )
    assert json_feature_paths(loaded["train"].features) == [".criteria"]


CASES = [
    ("votes", ExportFormat.VOTES, AggregationMode.MAJORITY),
    ("trl", ExportFormat.TRL, AggregationMode.MAJORITY),
    ("openai", ExportFormat.OPENAI, AggregationMode.UNANIMOUS),
    ("hh-rlhf", ExportFormat.HH_RLHF, AggregationMode.EACH_VOTE),
    ("kto", ExportFormat.KTO, AggregationMode.MAJORITY),
]


@pytest.mark.parametrize("stream", ["plain", "rich"])
@pytest.mark.parametrize(("name", "export_format", "mode"), CASES, ids=[c[0] for c in CASES])
def test_export_loads_with_typed_columns(
    tmp_path: Path, stream: str, name: str, export_format: ExportFormat, mode: AggregationMode
) -> None:
    votes = mixed_stream() if stream == "plain" else rich_stream()
    conversational = any(needs_conversational(vote.prompt) for vote in votes)
    assert conversational is (stream == "rich")
    options = ExportOptions(
        format=export_format, aggregation=AggregationOptions(mode=mode), test_fraction=0.3
    )
    result = ExportWriter(
        options, out_root=tmp_path / "out", project_slug="demo", conversational=conversational
    ).write_all(votes)
    manifest = read_manifest(result.path)
    rows = manifest["counts"]["rows"]
    assert rows["train"] > 0 and rows["test"] > 0

    loaded = load(result.path, tmp_path / "cache")
    # A project without criteria writes {} in every row: `datasets` can only call that Json.
    untyped = [".criteria"] if export_format is ExportFormat.VOTES and stream == "plain" else []
    for split, dataset in loaded.items():
        assert dataset.num_rows == rows[split]
        assert json_feature_paths(dataset.features) == untyped, dataset.features
    if export_format in (ExportFormat.TRL, ExportFormat.KTO):
        prompt_type = datasets.List if conversational else datasets.Value
        assert isinstance(loaded["train"].features["prompt"], prompt_type)
    if export_format is ExportFormat.TRL:
        assert loaded["train"].features["margin"] == datasets.Value("float64")
    if export_format is ExportFormat.VOTES:
        assert loaded["train"].features["shown_at"] == datasets.Value("string")
        assert loaded["train"].features["left_response_id"] == datasets.Value("int64")
        if stream == "rich":
            criteria = {"accuracy": datasets.Value("string"), "style": datasets.Value("string")}
            assert loaded["train"].features["criteria"] == criteria
        else:
            assert loaded["train"][0]["criteria"] == {}

    # The card's `configs` make the folder itself loadable.
    from_card = datasets.load_dataset(str(result.path), cache_dir=str(tmp_path / "cache2"))
    assert {split: ds.num_rows for split, ds in from_card.items()} == rows


def test_criteria_that_start_late_still_load(tmp_path: Path) -> None:
    # Small chunks make Arrow infer the first chunk's types from criterion-free votes only.
    factory = VoteFactory(criteria_names=("accuracy", "style"))
    votes: list[VoteRecord] = []
    for index in range(600):
        criteria = {"accuracy": "a", "style": "tie"} if index >= 500 else None
        votes += factory.pair(make_prompt(f"late-{index:04d}"), ["a"], criteria=criteria)
    options = ExportOptions(format=ExportFormat.VOTES, test_fraction=0.0)
    folder = (
        ExportWriter(options, out_root=tmp_path / "out", project_slug="demo", conversational=False)
        .write_all(votes)
        .path
    )
    loaded = datasets.load_dataset(
        "json",
        data_files={"train": str(folder / "train.jsonl")},
        cache_dir=str(tmp_path / "cache"),
        chunksize=16 * 1024,
    )
    train = loaded["train"]
    assert train.num_rows == 600
    assert train.features["criteria"] == {
        "accuracy": datasets.Value("string"),
        "style": datasets.Value("string"),
    }
    assert train[0]["criteria"] == {"accuracy": "", "style": ""}
    assert train[599]["criteria"] == {"accuracy": "a", "style": "tie"}
