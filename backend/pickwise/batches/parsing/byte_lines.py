"""Reads an upload once, in chunks: hashes every byte and splits it into checked lines of text.

Memory stays at about one chunk plus one line (at most `max_line_bytes`), whatever the file
size: an over-long line is skipped, not buffered.
"""

import hashlib
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pickwise.batches.parsing.report import ImportLimits

CHUNK_BYTES = 1 << 16
UTF8_BOM = b"\xef\xbb\xbf"
# Enough to recognise every signature below.
HEAD_BYTES = 16

COMPRESSION_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"PK\x07\x08", "zip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
)
# "BZh" alone could start a CSV header, so require the block or end-of-stream marker too.
BZIP2_SIGNATURE = re.compile(rb"BZh[1-9](?:1AY&SY|\x17rE8P\x90)")


@runtime_checkable
class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


# A binary file (read in chunks), or any iterable of byte chunks cut anywhere.
ByteSource = Readable | Iterable[bytes]


@dataclass(frozen=True, slots=True)
class TextLine:
    """One physical line without its line ending. `text` is None when `problem` is set."""

    line_no: int
    text: str | None
    byte_length: int
    problem: str | None


def sniff_unreadable(head: bytes) -> str | None:
    """Explains why a file that starts with `head` is not text we can read, or returns None."""
    for signature, name in COMPRESSION_SIGNATURES:
        if head.startswith(signature):
            hint = (
                " (an .xlsx spreadsheet is zip data too: save it as CSV)" if name == "zip" else ""
            )
            return f"the file looks like {name}-compressed data; decompress it first{hint}"
    if BZIP2_SIGNATURE.match(head):
        return "the file looks like bzip2-compressed data; decompress it first"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "the file looks like UTF-16 text; save it as UTF-8"
    return None


def too_large(max_file_bytes: int) -> str:
    return f"the file is larger than the limit of {max_file_bytes:,} bytes"


class ByteLines:
    """Single-use reader of one upload. After `lines()` is exhausted, `sha256`, `byte_count`,
    `line_count` and `file_problem` describe the whole input."""

    def __init__(self, source: ByteSource, limits: ImportLimits) -> None:
        self._source = source
        self._limits = limits
        self._hash = hashlib.sha256()
        self.byte_count = 0
        self.line_count = 0
        # A problem with the whole file; no lines are produced after it.
        self.file_problem: str | None = None

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def lines(self) -> Iterator[TextLine]:
        chunks = self._counted_chunks()
        head = b""
        for chunk in chunks:
            head += chunk
            if len(head) >= HEAD_BYTES:
                break
        unreadable = sniff_unreadable(head)
        if unreadable is not None:
            self.file_problem = unreadable
            # Keep reading so the hash and byte count still describe the whole upload.
            for _ in chunks:
                pass
            return
        if self.file_problem is not None:  # Over the size limit within the first bytes.
            return
        yield from self._split(itertools.chain([head.removeprefix(UTF8_BOM)], chunks))

    def _raw_chunks(self) -> Iterator[bytes]:
        if isinstance(self._source, Readable):
            while chunk := self._source.read(CHUNK_BYTES):
                yield chunk
        else:
            yield from self._source

    def _counted_chunks(self) -> Iterator[bytes]:
        for chunk in self._raw_chunks():
            self._hash.update(chunk)
            self.byte_count += len(chunk)
            if self.byte_count > self._limits.max_file_bytes:
                limit = self._limits.max_file_bytes
                # A compressed file stays reported as such: that is the problem to fix first.
                if self.file_problem is None:
                    self.file_problem = too_large(limit)
                return
            yield chunk

    def _split(self, chunks: Iterable[bytes]) -> Iterator[TextLine]:
        # One byte of slack for the "\r" of a CRLF ending, which does not count.
        keep_at_most = self._limits.max_line_bytes + 1
        pending = bytearray()
        skipping_long_line = False
        for chunk in chunks:
            start = 0
            while (newline := chunk.find(b"\n", start)) != -1:
                piece = chunk[start:newline]
                start = newline + 1
                self.line_count += 1
                if skipping_long_line:
                    skipping_long_line = False
                    yield self._too_long(self.line_count)
                elif pending:
                    pending += piece
                    yield self._checked(self.line_count, bytes(pending))
                    pending.clear()
                else:
                    yield self._checked(self.line_count, piece)
            if not skipping_long_line:
                pending += chunk[start:]
                if len(pending) > keep_at_most:
                    skipping_long_line = True
                    pending.clear()
        if self.file_problem is not None:
            return  # The last line may be cut short: do not report it as well.
        if skipping_long_line or pending:
            self.line_count += 1
            if skipping_long_line:
                yield self._too_long(self.line_count)
            else:
                yield self._checked(self.line_count, bytes(pending))

    def _too_long(self, line_no: int) -> TextLine:
        limit = self._limits.max_line_bytes
        problem = f"is longer than the limit of {limit:,} bytes"
        return TextLine(line_no, None, limit + 1, problem)

    def _checked(self, line_no: int, data: bytes) -> TextLine:
        data = data.removesuffix(b"\r")
        if len(data) > self._limits.max_line_bytes:
            return self._too_long(line_no)
        nul_at = data.find(b"\x00")
        if nul_at != -1:
            problem = (
                f"contains a NUL byte (byte {nul_at + 1} of the line); "
                "is this a binary or UTF-16 file?"
            )
            return TextLine(line_no, None, len(data), problem)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            problem = (
                f"is not valid UTF-8 (byte {exc.start + 1} of the line); save the file as UTF-8"
            )
            return TextLine(line_no, None, len(data), problem)
        return TextLine(line_no, text, len(data), None)
