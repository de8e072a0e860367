"""Write an export folder: train.jsonl, test.jsonl, README.md (dataset card), manifest.json.

Everything is written into a hidden temporary folder next to the target and renamed into place
at the end, so a failed export leaves nothing behind. Rows are hashed as they are written;
memory does not grow with the number of votes.
"""

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from pickwise.core.clock import utcnow
from pickwise.exports.card import CardInfo, render_dataset_card
from pickwise.exports.errors import InvalidExportOptions
from pickwise.exports.formats import as_utc
from pickwise.exports.manifest import FileDigest, build_manifest, reproduce_command
from pickwise.exports.ndjson import encode_row
from pickwise.exports.pipeline import ExportOptions, ProgressCallback, RowStream, SplitRow
from pickwise.exports.records import VoteRecord
from pickwise.exports.splits import Split
from pickwise.exports.stats import ExportStats

README = "README.md"
MANIFEST = "manifest.json"
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    manifest: dict[str, object]
    stats: ExportStats


def export_folder_name(project_slug: str, options: ExportOptions, exported_at: datetime) -> str:
    stamp = as_utc(exported_at).strftime("%Y%m%dT%H%M%SZ")
    return f"{project_slug}-{stamp}-{options.format.value}"


def split_file_name(split: Split) -> str:
    return f"{split.value}.jsonl"


class ExportWriter:
    """Feed votes with `add`, then `finish`; use as a context manager so errors clean up."""

    def __init__(
        self,
        options: ExportOptions,
        *,
        out_root: Path,
        project_slug: str,
        conversational: bool,
        card: CardInfo | None = None,
        command: str | None = None,
        exported_at: datetime | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        if not _SLUG.fullmatch(project_slug):
            raise InvalidExportOptions(f"{project_slug!r} cannot be part of a folder name")
        self.options = options
        self.project_slug = project_slug
        self.conversational = conversational
        self.card = card or CardInfo(pretty_name=f"{project_slug} ({options.format.value})")
        self.command = command or reproduce_command(project_slug, options)
        self.exported_at = as_utc(exported_at or utcnow())
        self.stats = ExportStats()
        self._done = False
        self.target = out_root / export_folder_name(project_slug, options, self.exported_at)
        if self.target.exists():
            raise FileExistsError(f"{self.target} already exists")
        out_root.mkdir(parents=True, exist_ok=True)
        # mkdir (not mkdtemp) so the folder gets the usual umask permissions, not 0700.
        self._temp = out_root / f".{self.target.name}.{uuid.uuid4().hex}.partial"
        self._temp.mkdir()
        self._files: dict[Split, _HashingFile] = {}
        try:
            for split in Split:
                self._files[split] = _HashingFile(self._temp / split_file_name(split))
        except BaseException:
            self.abort()
            raise
        self._rows = RowStream(
            options, conversational=conversational, stats=self.stats, progress=progress
        )

    def add(self, vote: VoteRecord) -> None:
        self._write(self._rows.push(vote))

    def finish(self) -> ExportResult:
        self._write(self._rows.finish())
        digests = {split_file_name(split): file.close() for split, file in self._files.items()}
        card = render_dataset_card(
            self.card, self.options, self.stats, conversational=self.conversational
        )
        digests[README] = _write_text(self._temp / README, card)
        manifest = build_manifest(
            project_slug=self.project_slug,
            options=self.options,
            stats=self.stats,
            conversational=self.conversational,
            files=digests,
            exported_at=self.exported_at,
            command=self.command,
        )
        _write_text(self._temp / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2))
        if self.target.exists():
            raise FileExistsError(f"{self.target} already exists")
        os.rename(self._temp, self.target)
        self._done = True
        return ExportResult(path=self.target, manifest=manifest, stats=self.stats)

    def abort(self) -> None:
        if self._done:
            return
        for file in self._files.values():
            file.discard()
        shutil.rmtree(self._temp, ignore_errors=True)
        self._done = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Also covers leaving the block without finish(): an export is all or nothing.
        self.abort()

    def _write(self, rows: list[SplitRow]) -> None:
        for item in rows:
            self._files[item.split].write(encode_row(item.row))


def write_export(
    votes: Iterable[VoteRecord],
    options: ExportOptions,
    *,
    out_root: Path,
    project_slug: str,
    conversational: bool,
    card: CardInfo | None = None,
    command: str | None = None,
    exported_at: datetime | None = None,
    progress: ProgressCallback | None = None,
) -> ExportResult:
    with ExportWriter(
        options,
        out_root=out_root,
        project_slug=project_slug,
        conversational=conversational,
        card=card,
        command=command,
        exported_at=exported_at,
        progress=progress,
    ) as writer:
        for vote in votes:
            writer.add(vote)
        return writer.finish()


async def awrite_export(
    votes: AsyncIterable[VoteRecord],
    options: ExportOptions,
    *,
    out_root: Path,
    project_slug: str,
    conversational: bool,
    card: CardInfo | None = None,
    command: str | None = None,
    exported_at: datetime | None = None,
    progress: ProgressCallback | None = None,
) -> ExportResult:
    """`write_export` over an async vote stream. File writes block; fine for the CLI."""
    with ExportWriter(
        options,
        out_root=out_root,
        project_slug=project_slug,
        conversational=conversational,
        card=card,
        command=command,
        exported_at=exported_at,
        progress=progress,
    ) as writer:
        async for vote in votes:
            writer.add(vote)
        return writer.finish()


class _HashingFile:
    def __init__(self, path: Path) -> None:
        self._file: BinaryIO = path.open("wb")
        self._sha256 = hashlib.sha256()
        self._lines = 0
        self._bytes = 0

    def write(self, line: bytes) -> None:
        self._file.write(line)
        self._sha256.update(line)
        self._lines += 1
        self._bytes += len(line)

    def close(self) -> FileDigest:
        self._file.close()
        return FileDigest(sha256=self._sha256.hexdigest(), lines=self._lines, bytes=self._bytes)

    def discard(self) -> None:
        self._file.close()


def _write_text(path: Path, text: str) -> FileDigest:
    data = text.encode("utf-8")
    if not data.endswith(b"\n"):
        data += b"\n"
    path.write_bytes(data)
    return FileDigest(
        sha256=hashlib.sha256(data).hexdigest(), lines=data.count(b"\n"), bytes=len(data)
    )
