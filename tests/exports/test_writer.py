import dataclasses
import hashlib
import json
import tracemalloc
import zipfile
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pickwise import __version__
from pickwise.exports.dataset.aggregation import AggregationMode, AggregationOptions
from pickwise.exports.dataset.card import CardInfo, size_category
from pickwise.exports.dataset.formats import ConversationalMismatchError, ExportFormat
from pickwise.exports.dataset.ndjson import aiter_ndjson, encode_row, iter_ndjson
from pickwise.exports.dataset.pipeline import ExportOptions, RowStream
from pickwise.exports.dataset.records import InvalidExportOptions, VoteRecord
from pickwise.exports.dataset.splits import Split
from pickwise.exports.dataset.writer import (
    ExportResult,
    ExportWriter,
    _HashingFile,
    zip_export,
)
from tests.exports.factory import VoteFactory, make_prompt, mixed_stream
from tests.exports.helpers import card_front_matter, read_lines, read_manifest

EXPORTED_AT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
TRL = ExportOptions(format=ExportFormat.TRL, test_fraction=0.3)


def export(
    out: Path,
    options: ExportOptions = TRL,
    votes: Iterable[VoteRecord] | None = None,
    *,
    conversational: bool = False,
    exported_at: datetime = EXPORTED_AT,
) -> ExportResult:
    return ExportWriter(
        options,
        out_root=out,
        project_slug="demo",
        conversational=conversational,
        exported_at=exported_at,
    ).write_all(votes if votes is not None else mixed_stream())


def test_folder_layout(tmp_path: Path) -> None:
    result = export(tmp_path)
    assert result.path == tmp_path / "demo-20260301T120000Z-trl"
    assert sorted(p.name for p in result.path.iterdir()) == [
        "README.md",
        "manifest.json",
        "test.jsonl",
        "train.jsonl",
    ]
    assert [p.name for p in tmp_path.iterdir()] == [result.path.name]


def test_manifest_describes_the_files(tmp_path: Path) -> None:
    folder = export(tmp_path).path
    manifest = read_manifest(folder)
    for name, entry in manifest["files"].items():
        data = (folder / name).read_bytes()
        assert entry == {
            "sha256": hashlib.sha256(data).hexdigest(),
            "lines": data.count(b"\n"),
            "bytes": len(data),
        }
    assert set(manifest["files"]) == {"train.jsonl", "test.jsonl", "README.md"}
    rows = manifest["counts"]["rows"]
    assert rows["train"] == manifest["files"]["train.jsonl"]["lines"] > 0
    assert rows["test"] == manifest["files"]["test.jsonl"]["lines"] > 0
    # mixed_stream: 40 prompts cycling a,a,b / b,b,b / tie,tie,a / a,b / both_bad,both_bad,a
    assert manifest["counts"] == {
        "unit": "pair",
        "votes_read": 112,
        "pairs_read": 40,
        "kept": 16,
        "dropped": {"both_bad": 8, "no_majority": 8, "tie": 8},
        "system_prompt_dropped": 0,
        "prompts": 40,
        "repeated_prompts": 0,
        "adjudicated": {"kept": 0, "dropped": 0},
        "rows": rows,
        "votes_per_pair": {"2": 8, "3": 32},
    }
    assert manifest["overlap"] is None  # no policy given to the writer
    assert rows["train"] + rows["test"] == 16
    assert manifest["pickwise_version"] == __version__
    assert manifest["format"] == "trl"
    assert manifest["exported_at"] == "2026-03-01T12:00:00Z"
    assert manifest["options"] == {
        "aggregation": "majority",
        "min_votes": 1,
        "min_agreement": 0.0,
        "test_fraction": 0.3,
        "seed": 0,
        "conversational": False,
    }
    assert manifest["command"] == (
        "pickwise export demo --format trl --aggregation majority --min-votes 1 "
        "--min-agreement 0.0 --test-fraction 0.3 --seed 0"
    )


def test_same_input_gives_the_same_bytes(tmp_path: Path) -> None:
    first = export(tmp_path)
    second = export(tmp_path, exported_at=datetime(2027, 1, 1, tzinfo=UTC))
    assert first.path != second.path
    for name in ("train.jsonl", "test.jsonl", "README.md"):
        assert (first.path / name).read_bytes() == (second.path / name).read_bytes()


def test_lines_are_compact_utf8_in_a_fixed_key_order(tmp_path: Path) -> None:
    votes = VoteFactory().pair(make_prompt("p", "Où est la tour Eiffel ? 🗼"), ["a"])
    folder = export(tmp_path, dataclasses.replace(TRL, test_fraction=0.0), votes).path
    line = (folder / "train.jsonl").read_text(encoding="utf-8")
    assert line == (
        '{"prompt":"Où est la tour Eiffel ? 🗼","chosen":"answer A of pair 101",'
        '"rejected":"answer B of pair 101","margin":0.0}\n'
    )


def test_no_prompt_is_in_both_splits(tmp_path: Path) -> None:
    options = ExportOptions(format=ExportFormat.VOTES, test_fraction=0.5)
    folder = export(tmp_path, options).path
    train = {row["prompt_id"] for row in read_lines(folder / "train.jsonl")}
    test = {row["prompt_id"] for row in read_lines(folder / "test.jsonl")}
    assert train and test
    assert not train & test
    assert len(train | test) == 40


def test_votes_format_keeps_every_judgment(tmp_path: Path) -> None:
    options = ExportOptions(format=ExportFormat.VOTES, test_fraction=0.3)
    manifest = read_manifest(export(tmp_path, options).path)
    assert manifest["counts"]["unit"] == "judgment"
    assert manifest["counts"]["kept"] == 112
    assert manifest["counts"]["dropped"] == {}
    assert sum(manifest["counts"]["rows"].values()) == 112
    assert manifest["options"]["aggregation"] is None
    assert "--aggregation" not in manifest["command"]


def test_kto_writes_two_rows_per_kept_pair(tmp_path: Path) -> None:
    options = ExportOptions(format=ExportFormat.KTO, test_fraction=0.3)
    folder = export(tmp_path, options).path
    manifest = read_manifest(folder)
    assert sum(manifest["counts"]["rows"].values()) == 2 * manifest["counts"]["kept"] == 32
    labels = [row["label"] for row in read_lines(folder / "train.jsonl")]
    assert labels == [True, False] * (len(labels) // 2)


def test_each_vote_counts_in_judgments(tmp_path: Path) -> None:
    aggregation = AggregationOptions(mode=AggregationMode.EACH_VOTE)
    manifest = read_manifest(
        export(tmp_path, dataclasses.replace(TRL, aggregation=aggregation)).path
    )
    counts = manifest["counts"]
    assert counts["unit"] == "judgment"
    assert counts["kept"] + sum(counts["dropped"].values()) == counts["votes_read"] == 112
    assert counts["dropped"] == {"both_bad": 16, "tie": 16}


def test_conversational_export_never_mixes_strings_and_messages(tmp_path: Path) -> None:
    factory = VoteFactory()
    votes = factory.pair(make_prompt("a-plain"), ["a"]) + factory.pair(
        make_prompt("b-system", system="Be terse."), ["b"]
    )
    options = dataclasses.replace(TRL, test_fraction=0.0)
    with pytest.raises(ConversationalMismatchError):
        export(tmp_path, options, votes, conversational=False)
    assert list(tmp_path.iterdir()) == []
    folder = export(tmp_path, options, votes, conversational=True).path
    rows = read_lines(folder / "train.jsonl")
    assert [type(row["prompt"]) for row in rows] == [list, list]
    assert [type(row["chosen"]) for row in rows] == [list, list]
    assert read_manifest(folder)["options"]["conversational"] is True


def test_hh_rlhf_counts_dropped_system_prompts(tmp_path: Path) -> None:
    factory = VoteFactory()
    votes = factory.pair(make_prompt("a", system="Be terse."), ["a"]) + factory.pair(
        make_prompt("b"), ["b"]
    )
    options = ExportOptions(format=ExportFormat.HH_RLHF, test_fraction=0.0)
    folder = export(tmp_path, options, votes).path
    assert read_manifest(folder)["counts"]["system_prompt_dropped"] == 1
    assert "system prompt left out of 1 rows" in (folder / "README.md").read_text()


def test_a_failure_leaves_nothing_behind(tmp_path: Path) -> None:
    def broken() -> Iterator[VoteRecord]:
        yield from mixed_stream()
        raise RuntimeError("connection lost")

    with pytest.raises(RuntimeError, match="connection lost"):
        export(tmp_path, votes=broken())
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_not_overwritten(tmp_path: Path) -> None:
    export(tmp_path)
    with pytest.raises(FileExistsError):
        export(tmp_path)


def test_slug_must_be_safe_in_a_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidExportOptions):
        ExportWriter(TRL, out_root=tmp_path, project_slug="../x", conversational=False).write_all(
            []
        )


def test_progress_reports_votes_read(tmp_path: Path) -> None:
    seen: list[int] = []
    votes = mixed_stream(1000)
    ExportWriter(
        TRL, out_root=tmp_path, project_slug="demo", conversational=False, progress=seen.append
    ).write_all(votes)
    assert seen == [1000, 2000, len(votes)]


def test_card_front_matter(tmp_path: Path) -> None:
    result = ExportWriter(
        TRL,
        out_root=tmp_path,
        project_slug="demo",
        conversational=False,
        card=CardInfo(pretty_name='Demo "prefs": été', languages=("en", "fr")),
        exported_at=EXPORTED_AT,
    ).write_all(mixed_stream())
    text = (result.path / "README.md").read_text()
    assert "# Placeholder" in text.split("license: other")[0]
    assert card_front_matter(result.path) == {
        "license": "other",
        "language": ["en", "fr"],
        "task_categories": ["text-generation", "text-classification"],
        "tags": [
            "human-feedback",
            "preference",
            "pairwise-comparison",
            "rlhf",
            "pickwise",
            "dpo",
            "reward-modeling",
            "trl",
        ],
        "size_categories": ["n<1K"],
        "pretty_name": 'Demo "prefs": été',
        "configs": [
            {
                "config_name": "default",
                "data_files": [
                    {"split": "train", "path": "train.jsonl"},
                    {"split": "test", "path": "test.jsonl"},
                ],
            }
        ],
    }
    assert "| train | " in text and "dropped (tie): 8 pairs" in text


def test_card_leaves_out_an_empty_split(tmp_path: Path) -> None:
    options = dataclasses.replace(TRL, test_fraction=0.0)
    front = card_front_matter(export(tmp_path, options).path)
    assert front["configs"][0]["data_files"] == [{"split": "train", "path": "train.jsonl"}]


def test_card_refuses_a_bad_language_code() -> None:
    with pytest.raises(InvalidExportOptions):
        CardInfo(pretty_name="x", languages=("English",))


@pytest.mark.parametrize(
    ("rows", "label"),
    [
        (0, "n<1K"),
        (999, "n<1K"),
        (1000, "1K<n<10K"),
        (9999, "1K<n<10K"),
        (10_000, "10K<n<100K"),
        (250_000, "100K<n<1M"),
        (3_000_000, "1M<n<10M"),
        (10**13, "n>1T"),
    ],
)
def test_size_categories(rows: int, label: str) -> None:
    assert size_category(rows) == label


@pytest.mark.parametrize("split", [Split.TRAIN, Split.TEST])
def test_ndjson_stream_matches_the_written_file(tmp_path: Path, split: Split) -> None:
    folder = export(tmp_path).path
    chunks = list(
        iter_ndjson(
            mixed_stream(),
            RowStream(TRL, conversational=False),
            split=split,
            chunk_bytes=200,
        )
    )
    assert len(chunks) > 1
    assert b"".join(chunks) == (folder / f"{split.value}.jsonl").read_bytes()


def test_ndjson_stream_without_split_holds_every_row(tmp_path: Path) -> None:
    folder = export(tmp_path).path
    rows = RowStream(TRL, conversational=False)
    lines = b"".join(iter_ndjson(mixed_stream(), rows)).splitlines()
    files = [(folder / name).read_bytes().splitlines() for name in ("train.jsonl", "test.jsonl")]
    assert sorted(lines) == sorted(files[0] + files[1])


async def _async_votes() -> AsyncIterator[VoteRecord]:
    for vote in mixed_stream():
        yield vote


async def test_async_stream_and_writer_match_the_sync_ones(tmp_path: Path) -> None:
    sync_folder = export(tmp_path / "sync").path
    writer = ExportWriter(
        TRL,
        out_root=tmp_path / "async",
        project_slug="demo",
        conversational=False,
        exported_at=EXPORTED_AT,
    )
    result = await writer.awrite_all(_async_votes())
    for name in ("train.jsonl", "test.jsonl"):
        assert (result.path / name).read_bytes() == (sync_folder / name).read_bytes()
    streamed = [
        chunk
        async for chunk in aiter_ndjson(
            _async_votes(), RowStream(TRL, conversational=False), split=Split.TRAIN
        )
    ]
    assert b"".join(streamed) == (sync_folder / "train.jsonl").read_bytes()


def test_zip_holds_the_folder(tmp_path: Path) -> None:
    folder = export(tmp_path).path
    archive_path = zip_export(folder)
    assert archive_path == tmp_path / f"{folder.name}.zip"
    with zipfile.ZipFile(archive_path) as archive:
        names = sorted(archive.namelist())
        assert names == sorted(f"{folder.name}/{p.name}" for p in folder.iterdir())
        for name in names:
            assert archive.read(name) == (tmp_path / name).read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def _peak_bytes(tmp_path: Path, prompt_count: int) -> int:
    def stream() -> Iterator[VoteRecord]:
        factory = VoteFactory()
        for index in range(prompt_count):
            yield from factory.pair(
                make_prompt(f"p{index:07d}"), ["a", "a", "b"], strengths=[0, 1, 2]
            )

    tracemalloc.start()
    try:
        ExportWriter(
            TRL, out_root=tmp_path / str(prompt_count), project_slug="demo", conversational=False
        ).write_all(stream())
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_number_of_votes(tmp_path: Path) -> None:
    small = _peak_bytes(tmp_path, 500)
    large = _peak_bytes(tmp_path, 5000)
    # Ten times the votes; a materialised stream would need ten times the memory. Each file
    # holds at most one write block (its lines, then them joined) on top.
    blocks = 2 * 2 * _HashingFile.BLOCK_BYTES
    assert large < small * 2 + 200_000 + blocks


def test_card_keeps_a_multi_line_name_on_one_line(tmp_path: Path) -> None:
    result = ExportWriter(
        TRL,
        out_root=tmp_path,
        project_slug="demo",
        conversational=False,
        card=CardInfo(pretty_name="Two\nlines\u2028here"),
        exported_at=datetime(2026, 3, 1, 12, 0),
    ).write_all(mixed_stream())
    assert result.path.name == "demo-20260301T120000Z-trl"
    assert card_front_matter(result.path)["pretty_name"] == "Two lines here"
    assert "\n# Two lines here\n" in (result.path / "README.md").read_text()


@pytest.mark.parametrize("format", list(ExportFormat))
def test_lines_are_what_the_standard_json_encoder_writes(format: ExportFormat) -> None:
    """encode_row (orjson) must keep the bytes `json.dumps` gives: exports stay reproducible."""
    factory = VoteFactory()
    tricky = 'quote " backslash \\ tab \t nul \x00 unit \x1f line-sep \u2028 é 🗼 </script>'
    votes = [
        *mixed_stream(),
        *factory.pair(
            make_prompt("zz-tricky", tricky, system="sys " + tricky, history=[tricky, tricky]),
            ["a", "b", "a"],
            strengths=[0, 2, 1],
        ),
    ]
    options = dataclasses.replace(TRL, format=format)
    rows = RowStream(options, conversational=format in (ExportFormat.TRL, ExportFormat.KTO))
    split_rows = [item for vote in votes for item in rows.push(vote)] + rows.finish()
    assert len(split_rows) > 10
    for item in split_rows:
        expected = json.dumps(item.row, ensure_ascii=False, separators=(",", ":")) + "\n"
        assert encode_row(item.row) == expected.encode("utf-8")
