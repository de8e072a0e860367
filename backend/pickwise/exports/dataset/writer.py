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
import tempfile
import uuid
import zipfile
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from pickwise.core.clock import utcnow
from pickwise.exports.dataset.aggregation import ExportStats
from pickwise.exports.dataset.card import CardInfo, render_dataset_card
from pickwise.exports.dataset.formats import as_utc
from pickwise.exports.dataset.manifest import (
    FileDigest,
    SelectionRecord,
    build_manifest,
    reproduce_command,
)
from pickwise.exports.dataset.ndjson import encode_row
from pickwise.exports.dataset.pipeline import (
    ExportItem,
    ExportOptions,
    ProgressCallback,
    RowStream,
    SplitRow,
)
from pickwise.exports.dataset.records import InvalidExportOptions
from pickwise.exports.dataset.splits import Split

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
    """Feed votes or pairs with `add`, then `finish` (or both: `write_all`); use as a context
    manager so errors clean up."""

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
        selection: SelectionRecord | None = None,
    ) -> None:
        if not _SLUG.fullmatch(project_slug):
            raise InvalidExportOptions(f"{project_slug!r} cannot be part of a folder name")
        self.options = options
        self.project_slug = project_slug
        self.conversational = conversational
        self.card = card or CardInfo(pretty_name=f"{project_slug} ({options.format.value})")
        self.selection = selection
        self.command = command or reproduce_command(project_slug, options, selection)
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

    def add(self, item: ExportItem) -> None:
        self._write(self._rows.push(item))

    def write_all(self, items: Iterable[ExportItem]) -> ExportResult:
        """Add every item and finish; on any error nothing is left behind."""
        with self:
            for item in items:
                self.add(item)
            return self.finish()

    async def awrite_all(self, items: AsyncIterable[ExportItem]) -> ExportResult:
        """`write_all` over an async stream. File writes block; fine for the CLI and admin page."""
        with self:
            async for item in items:
                self.add(item)
            return self.finish()

    def finish(self) -> ExportResult:
        self._write(self._rows.finish())
        digests = {split_file_name(split): file.close() for split, file in self._files.items()}
        card = render_dataset_card(
            self.card,
            self.options,
            self.stats,
            conversational=self.conversational,
            selection=self.selection,
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
            overlap=self.card.overlap,
            selection=self.selection,
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


class _HashingFile:
    """Lines are written and hashed in blocks of about `BLOCK_BYTES`, not one call per line."""

    BLOCK_BYTES = 64 * 1024

    def __init__(self, path: Path) -> None:
        self._file: BinaryIO = path.open("wb")
        self._sha256 = hashlib.sha256()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._lines = 0
        self._bytes = 0

    def write(self, line: bytes) -> None:
        self._pending.append(line)
        self._pending_bytes += len(line)
        if self._pending_bytes >= self.BLOCK_BYTES:
            self._flush()

    def close(self) -> FileDigest:
        self._flush()
        self._file.close()
        return FileDigest(sha256=self._sha256.hexdigest(), lines=self._lines, bytes=self._bytes)

    def _flush(self) -> None:
        block = b"".join(self._pending)
        self._file.write(block)
        self._sha256.update(block)
        self._lines += len(self._pending)
        self._bytes += len(block)
        self._pending, self._pending_bytes = [], 0

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


def zip_export(folder: Path, destination: Path | None = None) -> Path:
    """Write `<folder>.zip` (or `destination`) holding the folder's files under its name.

    The archive is built in a temporary file beside the destination and renamed into place,
    so a half-written zip is never left under the final name.
    """
    destination = destination or folder.with_name(folder.name + ".zip")
    fd, temp_name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".partial", dir=destination.parent
    )
    os.close(fd)
    temp = Path(temp_name)
    try:
        with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.iterdir()):
                if path.is_file():
                    archive.write(path, arcname=f"{folder.name}/{path.name}")
        os.replace(temp, destination)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return destination
