"""Rows as JSON Lines bytes: one encoder for the files and for the HTTP download."""

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

from pickwise.exports.formats import Row
from pickwise.exports.pipeline import ExportOptions, ProgressCallback, RowStream, SplitRow
from pickwise.exports.records import VoteRecord
from pickwise.exports.splits import Split
from pickwise.exports.stats import ExportStats

CHUNK_BYTES = 64 * 1024
NDJSON_MEDIA_TYPE = "application/x-ndjson"


def encode_row(row: Row) -> bytes:
    """One JSON line. Keys keep the format's order; UTF-8 as is, no escapes, no spaces."""
    text = json.dumps(row, ensure_ascii=False, separators=(",", ":"), sort_keys=False)
    return text.encode("utf-8") + b"\n"


def iter_ndjson(
    votes: Iterable[VoteRecord],
    options: ExportOptions,
    *,
    conversational: bool,
    split: Split | None = None,
    stats: ExportStats | None = None,
    progress: ProgressCallback | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[bytes]:
    """Stream one format as NDJSON chunks of about `chunk_bytes`; `split` keeps only one split."""
    stream = RowStream(options, conversational=conversational, stats=stats, progress=progress)
    buffer = _ChunkBuffer(chunk_bytes)
    for vote in votes:
        yield from buffer.add(stream.push(vote), split)
    yield from buffer.add(stream.finish(), split)
    yield from buffer.drain()


async def aiter_ndjson(
    votes: AsyncIterable[VoteRecord],
    options: ExportOptions,
    *,
    conversational: bool,
    split: Split | None = None,
    stats: ExportStats | None = None,
    progress: ProgressCallback | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> AsyncIterator[bytes]:
    """`iter_ndjson` over an async vote stream (e.g. an async session's `stream_scalars`)."""
    stream = RowStream(options, conversational=conversational, stats=stats, progress=progress)
    buffer = _ChunkBuffer(chunk_bytes)
    async for vote in votes:
        for chunk in buffer.add(stream.push(vote), split):
            yield chunk
    for chunk in buffer.add(stream.finish(), split):
        yield chunk
    for chunk in buffer.drain():
        yield chunk


class _ChunkBuffer:
    """Collects encoded lines so the response sends a few large writes, not one per row."""

    def __init__(self, chunk_bytes: int) -> None:
        self._chunk_bytes = chunk_bytes
        self._parts: list[bytes] = []
        self._size = 0

    def add(self, rows: list[SplitRow], split: Split | None) -> Iterator[bytes]:
        for item in rows:
            if split is not None and item.split != split:
                continue
            line = encode_row(item.row)
            self._parts.append(line)
            self._size += len(line)
            if self._size >= self._chunk_bytes:
                yield from self.drain()

    def drain(self) -> Iterator[bytes]:
        if self._parts:
            chunk = b"".join(self._parts)
            self._parts, self._size = [], 0
            yield chunk
