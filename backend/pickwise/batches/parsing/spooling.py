"""Adapter for async uploads: an import needs a seekable file (its size, for progress; a
second read when two records may share an id, to name their lines), so an upload stream is
first copied to a temporary file."""

import tempfile
from collections.abc import AsyncIterable
from typing import IO

from pickwise.batches.parsing.report import ImportLimits

# Small uploads stay in memory; bigger ones go to disk.
IN_MEMORY_BYTES = 8 * 1024 * 1024


async def spool_upload(chunks: AsyncIterable[bytes], limits: ImportLimits) -> IO[bytes]:
    """Copies the upload to a temporary file, positioned at the start; the caller closes it.

    Copying stops one byte past `max_file_bytes`, so an oversized upload is not stored in full
    and `validate` still reports it as too large.
    """
    # Returned open, so no `with`; closed here only if copying fails.
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_BYTES)  # noqa: SIM115
    try:
        room = limits.max_file_bytes + 1
        async for chunk in chunks:
            spool.write(chunk[:room])
            room -= min(len(chunk), room)
            if room == 0:
                break
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool
