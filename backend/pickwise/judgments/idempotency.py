"""Replays of one request return its first answer; the same key with another body is refused.

The key row is inserted before the work is done, in the same transaction: a concurrent
request with the same key waits on the unique index until the first commits, then finds the
stored answer, so a retry can never store a second judgment.
"""

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.errors import InvalidInput, PickwiseError
from pickwise.judgments import repository, service
from pickwise.models import User

MAX_KEY_LENGTH = 200


def request_fingerprint(path: str, body: BaseModel) -> str:
    canonical = json.dumps([path, body.model_dump(mode="json")], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def valid_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_LENGTH


async def run_once(
    session: AsyncSession,
    user: User,
    key: str | None,
    fingerprint: str,
    work: Callable[[], Awaitable[tuple[int, dict[str, Any]]]],
    *,
    claimed: bool | None = None,
    written_by_work: service.KeyedAnswer | None = None,
) -> tuple[int, dict[str, Any]]:
    """Returns (status code, JSON body): the first answer for this key, or a fresh one.
    `claimed`: whether this request's claim of the key took effect, when it was claimed
    already, in the round trip of the answer's locks (judgments.service.claim_key_and_locks).
    `written_by_work`: the answer `work` may have written under the key itself, with what it
    stored (judgments.service.submit); it is written here unless that is the answer given."""
    if key is None:
        return await _answer(work)
    if not valid_key(key):
        raise InvalidInput(f"must be 1 to {MAX_KEY_LENGTH} characters", field="Idempotency-Key")
    if claimed is None:
        claimed = await repository.claim_key(session, user.id, key, fingerprint)
    if not claimed:
        stored = await repository.stored_answer(session, user.id, key)
        assert stored is not None
        if stored.request_hash != fingerprint:
            raise InvalidInput(
                "this key was already used with a different request body",
                field="Idempotency-Key",
            )
        return stored.status_code, dict(stored.response_body)
    status_code, body = await _answer(work)
    if written_by_work is None or written_by_work.written != (status_code, body):
        await repository.store_answer(session, user.id, key, status_code, body)
    return status_code, body


async def run_once_locking(
    session: AsyncSession,
    user: User,
    key: str | None,
    fingerprint: str,
    assignment_id: int,
    work: Callable[[service.LeaseLocks | None], Awaitable[tuple[int, dict[str, Any]]]],
    *,
    written_by_work: service.KeyedAnswer | None = None,
) -> tuple[int, dict[str, Any]]:
    """`run_once` for an answer to the assignment (a submit, skip or flag): the key is claimed
    in the round trip of the answer's locks, which are taken only if the claim took effect,
    and `work` gets them (None: it takes them itself)."""
    if key is None or not valid_key(key):
        return await run_once(session, user, key, fingerprint, lambda: work(None))
    claim = await service.claim_key_and_locks(session, user, key, fingerprint, assignment_id)
    return await run_once(
        session,
        user,
        key,
        fingerprint,
        lambda: work(claim.locks),
        claimed=claim.claimed,
        written_by_work=written_by_work,
    )


async def release_claim(session: AsyncSession, user: User, key: str) -> None:
    """Gives back a key claimed already (`claimed=True` in `run_once`) whose request was
    refused before its work could run (a form without a choice or a reason): the key is
    never left claimed without an answer, and the same form sent again with what it lacked
    is stored, as it was before keys were claimed that early."""
    await repository.release_claim(session, user.id, key)


async def _answer(
    work: Callable[[], Awaitable[tuple[int, dict[str, Any]]]],
) -> tuple[int, dict[str, Any]]:
    try:
        return await work()
    except PickwiseError as exc:
        # A refusal (e.g. the late-submit 409) is an answer too: replays get the same one.
        return exc.status_code, exc.body()
