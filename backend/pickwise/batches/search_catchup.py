"""The search catch-up: imported answers get their search words, and imported prompts their
place in the prompts' search index, after the import commits.

An import writes its rows without words (`responses.search_vector` NULL, `prompts.searchable`
false, which keeps a prompt out of `ix_prompts_search`) and counts the answers in its batch's
`search_pending`. The catch-up walks each such batch's prompts in id order, a chunk at a
time, each chunk its own short transaction that marks the chunk's prompts searchable, fills
the words of their answers and moves the batch's place (`search_done_through`) on: a crash
or restart loses at most one chunk's work, and resumes from the place. Raters are never
blocked: the chunk updates only answers' words and prompts' flag, which no rater's
transaction writes. Several processes share the work (the pending batch is taken with SKIP
LOCKED).

Every app process runs the catch-up in the background (the lifespan in app.py), woken by the
commit of an import (a trigger NOTIFYs, core.wakeups); `pickwise import` runs it right after
its commit, and `pickwise search-catch-up` on demand. Until it is done the explorer says how
many answers are not searchable yet, and reads them and their prompts directly when they are
few (review.service).
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.batches import repository
from pickwise.core.background import (
    FALLBACK_SECONDS,
    Transaction,
    background_transaction,
    run_rounds,
    running_task,
)
from pickwise.core.wakeups import Wake

# Prompts a transaction: a few thousand answers, well under a second of work.
CHUNK_PROMPTS = 1_000
# How often it looks when it cannot be woken (no listener, or its connection is down).
POLL_SECONDS = 2.0


@dataclass
class CatchUpReport:
    answers: int = 0
    prompts: int = 0
    seconds: float = 0.0

    @property
    def answers_per_s(self) -> float:
        return self.answers / self.seconds if self.seconds else 0.0


async def catch_up_chunk(
    session: AsyncSession, chunk_prompts: int = CHUNK_PROMPTS
) -> tuple[int, int] | None:
    """One chunk of the oldest pending batch, in the caller's transaction: (prompts walked,
    answers made searchable), or None when no batch is pending (or free to take)."""
    batch = await repository.lock_pending_batch(session)
    if batch is None:
        return None
    return await repository.fill_search_words(session, batch, chunk_prompts)


async def catch_up(
    transaction: Transaction,
    *,
    chunk_prompts: int = CHUNK_PROMPTS,
    progress: Callable[[CatchUpReport], None] | None = None,
) -> CatchUpReport:
    """Chunks, one transaction each, until no batch is pending."""
    report = CatchUpReport()
    started = time.perf_counter()
    while True:
        async with transaction() as session:
            done = await catch_up_chunk(session, chunk_prompts)
        if done is None:
            break
        report.prompts += done[0]
        report.answers += done[1]
        report.seconds = time.perf_counter() - started
        if progress:
            progress(report)
    report.seconds = time.perf_counter() - started
    return report


async def catch_up_forever(
    transaction: Transaction,
    stopping: asyncio.Event,
    wake: Wake | None = None,
    fallback_seconds: float = FALLBACK_SECONDS,
) -> None:
    async def one_round() -> None:
        await catch_up(transaction)
        # Nothing pending now: an import's commit notifies `wake` (core.wakeups).

    await run_rounds(
        one_round,
        stopping,
        name="search catch-up",
        poll_seconds=POLL_SECONDS,
        wake=wake,
        fallback_seconds=fallback_seconds,
    )


@contextlib.asynccontextmanager
async def running_catch_up(
    transaction: Transaction = background_transaction,
    wake: Wake | None = None,
    fallback_seconds: float = FALLBACK_SECONDS,
) -> AsyncIterator[None]:
    """The catch-up as a background task for as long as the block runs; it looks for work
    when `wake` is notified (or every `fallback_seconds`), or every POLL_SECONDS without."""
    stopping = asyncio.Event()
    work = catch_up_forever(transaction, stopping, wake, fallback_seconds)
    async with running_task(work, stopping.set, name="search-catch-up"):
        yield
