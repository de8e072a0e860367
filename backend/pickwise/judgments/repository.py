import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.repository import ASSIGNMENT_ID_SEQUENCE, lock_slot_of_assignment
from pickwise.auth.repository import API_TOKEN_HOLDER, SESSION_HOLDER, user_of_api_token_with
from pickwise.core.db import (
    DriverSql,
    adopt,
    column_count,
    column_index,
    columns_of,
    run_pipelined,
)
from pickwise.models import (
    Assignment,
    IdempotencyKey,
    Judgment,
    Pair,
    PairFlag,
    Project,
    Prompt,
    ReplacedDecision,
    User,
)
from pickwise.vocabulary import AccountRole, AssignmentStatus, CanonicalSide, SlotState


# Every submit, skip and flag starts here, once the slot is locked. The row is locked, and
# the objects made of it replace what the session may hold of it (`adopt`); the rater's
# standing (account active, member or admin) is read in the same statement. Straight over
# psycopg, so that it can follow the slot's lock in one round trip. `rater`: the SQL of the
# rater's id (a parameter, or the user of the API token sent with it).
def _locked_assignment(rater: str) -> DriverSql:
    return DriverSql(
        f"""
        SELECT {columns_of(Assignment, "a")}, {columns_of(Project, "p")}, u.is_active,
               u.role = '{AccountRole.ADMIN}' OR EXISTS (
                   SELECT FROM project_members m
                   WHERE m.project_id = a.project_id AND m.user_id = a.rater_id
               )
        FROM assignments a
        JOIN projects p ON p.id = a.project_id
        JOIN users u ON u.id = a.rater_id
        WHERE a.id = :assignment_id AND a.rater_id = {rater}
        FOR UPDATE OF a
        """
    )


_LOCK_SLOT = lock_slot_of_assignment(":rater_id")
_LOCKED_ASSIGNMENT = _locked_assignment(":rater_id")
# The same for the user of an API token that the statements are sent with, or for nobody.
_LOCK_SLOT_OF_TOKEN_HOLDER = lock_slot_of_assignment(API_TOKEN_HOLDER)
_LOCKED_ASSIGNMENT_OF_TOKEN_HOLDER = _locked_assignment(API_TOKEN_HOLDER)
_ASSIGNMENT_COLUMNS = column_count(Assignment)
_PROJECT_COLUMNS = column_count(Project)


@dataclass(frozen=True)
class LockedAssignment:
    assignment: Assignment
    project: Project
    account_active: bool
    member_or_admin: bool


def _locked(session: AsyncSession, rows: list[tuple[Any, ...]]) -> LockedAssignment | None:
    if not rows:
        return None
    row = rows[0]
    projects_end = _ASSIGNMENT_COLUMNS + _PROJECT_COLUMNS
    assignment = adopt(session, Assignment, row[:_ASSIGNMENT_COLUMNS])
    project = adopt(session, Project, row[_ASSIGNMENT_COLUMNS:projects_end])
    active, member_or_admin = row[projects_end:]
    return LockedAssignment(assignment, project, bool(active), bool(member_or_admin))


async def lock_assignment(
    session: AsyncSession, assignment_id: int, rater_id: int
) -> LockedAssignment | None:
    """Lock 5: the rater's assignment (its slot is locked first), with its project and the
    rater's standing; None when the rater has no such assignment."""
    params = {"assignment_id": assignment_id, "rater_id": rater_id}
    return _locked(session, await _LOCKED_ASSIGNMENT.rows(session, params))


async def lock_slot_and_assignment(
    session: AsyncSession, assignment_id: int, rater_id: int
) -> LockedAssignment | None:
    """Locks 1, 4 and 5 for a submit, skip or flag, in one round trip: the project's gate and
    the lease's slot (assignments.repository.lock_slot_of_assignment), then `lock_assignment`'s.
    The statements run one after the other, each with a snapshot of its own (run_pipelined),
    so the assignment is read after the slot's lock is held, as if sent one by one."""
    params = {"assignment_id": assignment_id, "rater_id": rater_id}
    calls = [(_LOCK_SLOT, params), (_LOCKED_ASSIGNMENT, params)]
    return _locked(session, (await run_pipelined(session, calls))[1])


async def token_holder_and_lock(
    session: AsyncSession, token_hash: str, now: datetime, assignment_id: int
) -> tuple[User | None, LockedAssignment | None]:
    """Who an API token names and, for them, `lock_slot_and_assignment`, all in one round
    trip. A token that names nobody (invalid, expired, revoked, or its user inactive) locks
    nothing: (None, None)."""
    params = {"assignment_id": assignment_id}
    calls = [(_LOCK_SLOT_OF_TOKEN_HOLDER, params), (_LOCKED_ASSIGNMENT_OF_TOKEN_HOLDER, params)]
    user, answers = await user_of_api_token_with(session, token_hash, now, calls)
    if user is None:
        return None, None
    return user, _locked(session, answers[1])


# An assignment id that was handed out (the sequence has passed it) but names no assignment
# at all: a lease that a Postgres crash undid (assignments.repository, _CLAIM_SLOT), or a
# claim that rolled back.
_LOST_ASSIGNMENT = text(
    f"""
    SELECT :assignment_id BETWEEN 1 AND (
               SELECT CASE WHEN is_called THEN last_value ELSE 0 END
               FROM {ASSIGNMENT_ID_SEQUENCE}
           )
       AND NOT EXISTS (SELECT FROM assignments WHERE id = :assignment_id)
    """
)


async def assignment_was_lost(session: AsyncSession, assignment_id: int) -> bool:
    """Whether the id was handed out but names no assignment (a lease lost in a crash)."""
    return bool(await session.scalar(_LOST_ASSIGNMENT, {"assignment_id": assignment_id}))


@dataclass(frozen=True)
class NewJudgment:
    """A judgment to store, relative to the pair's canonical A / B."""

    project_id: int
    pair_id: int
    assignment_id: int
    rater_id: int
    slot_id: int | None  # None for a gold pair (no slots)
    is_gold: bool
    choice: str
    strength: int | None
    rationale: str | None
    criteria: dict[str, str]
    left_side: str
    shown_at: datetime
    submitted_at: datetime


@dataclass(frozen=True)
class AnswerToWrite:
    """A request's answer to write under its idempotency key (claimed by `user_id` in this
    transaction) once the judgment is in: `body` with the stored judgment's id set as its
    `judgment_id`."""

    user_id: int
    key: str
    status_code: int
    body: dict[str, Any]


@dataclass(frozen=True)
class StoreOutcome:
    slot_was_ours: bool  # the slot was still leased to this assignment
    judgment_id: int | None  # None when nothing was stored
    # With `reserve_next`, an assignment id taken now, in this durable transaction, for the
    # rater's next lease (assignments.repository.ClaimTerms); None when nothing was stored.
    next_assignment_id: int | None = None
    # The rows of the statement sent after the store in its round trip (`then`), if any.
    then_rows: list[tuple[Any, ...]] | None = None


# Store a judgment in one statement, all or nothing: the slot must still be leased to this
# assignment (gold pairs have no slot); then the judgment goes in, the slot is done and the
# assignment submitted. With :lock_pair (an adaptive project's vote), the pair row is locked
# too (lock 7), once the judgment is in: the overlap decision that follows, in the next
# statement, then sees every other submit on the pair that got the lock before it. With
# :answer_key, the request's answer is written under its idempotency key (still unanswered,
# claimed earlier in this transaction) in the same statement, instead of a round trip of
# its own after it; nothing is written there unless the judgment went in.
_STORE_JUDGMENT = DriverSql(
    f"""
    WITH slot AS (
        SELECT id FROM pair_slots
        WHERE id = :slot_id AND assignment_id = :assignment_id AND state = '{SlotState.LEASED}'
        FOR UPDATE
    ), stored AS (
        INSERT INTO judgments (project_id, pair_id, assignment_id, rater_id, slot_id, is_gold,
                               choice, strength, rationale, criteria, left_side, shown_at,
                               submitted_at)
        SELECT :project_id, :pair_id, :assignment_id, :rater_id, slot.id, :is_gold,
               :choice, CAST(:strength AS integer), CAST(:rationale AS text),
               CAST(:criteria AS jsonb), :left_side, :shown_at, :submitted_at
        FROM (SELECT) AS one
        LEFT JOIN slot ON true
        WHERE slot.id IS NOT NULL OR :is_gold
        -- Cannot happen while the assignment is leased (one per pair and rater); if the data
        -- says otherwise, nothing is written and the rater gets a 409.
        ON CONFLICT DO NOTHING
        RETURNING id, slot_id
    ), done AS (
        UPDATE pair_slots s SET state = '{SlotState.DONE}', lease_expires_at = NULL
        FROM stored
        WHERE s.id = stored.slot_id
    ), closed AS (
        UPDATE assignments SET status = '{AssignmentStatus.SUBMITTED}', completed_at = :now
        WHERE id = :assignment_id AND EXISTS (SELECT FROM stored)
    ), pair AS (
        SELECT id FROM pairs
        WHERE id = :pair_id AND :lock_pair AND EXISTS (SELECT FROM stored)
        FOR NO KEY UPDATE
    ), answered AS (
        UPDATE idempotency_keys k
        SET status_code = :answer_status,
            response_body = CAST(:answer_body AS jsonb)
                            || jsonb_build_object('judgment_id', stored.id)
        FROM stored
        WHERE k.user_id = :answer_user_id AND k.key = CAST(:answer_key AS text)
          AND k.status_code = 0
    )
    SELECT EXISTS (SELECT FROM slot), (SELECT id FROM stored), EXISTS (SELECT FROM pair),
           CASE WHEN :reserve_next AND EXISTS (SELECT FROM stored)
                THEN nextval('{ASSIGNMENT_ID_SEQUENCE}') END
    """
)


async def store_judgment(
    session: AsyncSession,
    new: NewJudgment,
    now: datetime,
    *,
    lock_pair: bool = False,
    reserve_next: bool = False,
    answer: AnswerToWrite | None = None,
    then: tuple[DriverSql, dict[str, Any]] | None = None,
) -> StoreOutcome:
    """One round trip: the judgment, the slot done, the assignment submitted, or nothing;
    with ``lock_pair``, the pair row locked once the judgment is in; with ``reserve_next``,
    an id for the rater's next assignment taken too; with ``answer``, the request's answer
    written under its key if the judgment went in; with ``then``, one more statement sent
    in the same round trip, run after the store with a snapshot of its own (an adaptive
    project's decision, overlap.service.decision_with_vote)."""
    params: dict[str, Any] = {
        "lock_pair": lock_pair,
        "reserve_next": reserve_next,
        "answer_user_id": answer.user_id if answer else None,
        "answer_key": answer.key if answer else None,
        "answer_status": answer.status_code if answer else None,
        "answer_body": json.dumps(answer.body) if answer else None,
        "project_id": new.project_id,
        "pair_id": new.pair_id,
        "assignment_id": new.assignment_id,
        "rater_id": new.rater_id,
        "slot_id": new.slot_id,
        "is_gold": new.is_gold,
        "choice": new.choice,
        "strength": new.strength,
        "rationale": new.rationale,
        "criteria": json.dumps(new.criteria),
        "left_side": new.left_side,
        "shown_at": new.shown_at,
        "submitted_at": new.submitted_at,
        "now": now,
    }
    if then is None:
        slot_was_ours, judgment_id, _, next_id = await _STORE_JUDGMENT.one(session, params)
        return StoreOutcome(bool(slot_was_ours), judgment_id, next_id)
    (stored,), then_rows = await run_pipelined(session, [(_STORE_JUDGMENT, params), then])
    slot_was_ours, judgment_id, _, next_id = stored
    return StoreOutcome(bool(slot_was_ours), judgment_id, next_id, then_rows)


# --- changing the last decision (judgments.changes) ---------------------------------------

# The rater's newest decided assignment in the project: decisions are made in lease order (one
# lease at a time), so it is among the newest assignments, a short backward walk of the
# (rater_id, project_id, id) index.
_LAST_DECISION_SQL = f"""
    SELECT id FROM assignments
    WHERE rater_id = :rater_id AND project_id = :project_id
      AND status IN ('{AssignmentStatus.SUBMITTED}', '{AssignmentStatus.SKIPPED}',
                     '{AssignmentStatus.FLAGGED}')
    ORDER BY id DESC
    LIMIT 1
    """
_LAST_DECISION = text(_LAST_DECISION_SQL)


async def last_decision(session: AsyncSession, project_id: int, rater_id: int) -> int | None:
    """The id of the rater's last decided assignment in the project (a judgment, a skip or a
    flag), or None."""
    params = {"project_id": project_id, "rater_id": rater_id}
    found: int | None = await session.scalar(_LAST_DECISION, params)
    return found


# `changeable` in one round trip: the last decision (as `_LAST_DECISION` finds it), its
# judgment if any, and, for a check pair, which answer was expected (the judgment's choice
# is compared with it: a rater shown the expected answer may not change theirs). Three or
# four statements before, the page's undo link read on every rating page after a summary.
_LAST_DECISION_WITH_JUDGMENT = DriverSql(
    f"""
    SELECT {columns_of(Assignment, "a")}, {columns_of(Judgment, "j")},
           CASE WHEN p.gold_winner_id = p.response_a_id
                THEN '{CanonicalSide.A}' ELSE '{CanonicalSide.B}' END
    FROM ({_LAST_DECISION_SQL}) AS last
    JOIN assignments a ON a.id = last.id
    LEFT JOIN judgments j ON j.assignment_id = a.id
    LEFT JOIN pairs p ON p.id = a.pair_id AND a.is_gold
    """
)
_JUDGMENT_COLUMNS = column_count(Judgment)
_JUDGMENT_ID_AT = column_index(Judgment, "id")


@dataclass(frozen=True)
class LastDecision:
    """The rater's last decided assignment in a project, read unlocked, with its judgment
    (None for a skip or a flag) and, for a check pair, the side expected of it."""

    assignment: Assignment
    judgment: Judgment | None
    gold_winner: CanonicalSide | None  # None unless a check pair


async def last_decision_with_judgment(
    session: AsyncSession, project_id: int, rater_id: int
) -> LastDecision | None:
    """`last_decision`, `assignment_of` and `judgment_of` it (and the check pair's expected
    side) in one statement; None when the rater has decided nothing in the project."""
    params = {"project_id": project_id, "rater_id": rater_id}
    row = await _LAST_DECISION_WITH_JUDGMENT.first(session, params)
    if row is None:
        return None
    judgment_end = _ASSIGNMENT_COLUMNS + _JUDGMENT_COLUMNS
    assignment = adopt(session, Assignment, row[:_ASSIGNMENT_COLUMNS])
    judgment_row = row[_ASSIGNMENT_COLUMNS:judgment_end]
    judgment = None
    if judgment_row[_JUDGMENT_ID_AT] is not None:
        judgment = adopt(session, Judgment, judgment_row)
    gold_winner = CanonicalSide(row[judgment_end]) if assignment.is_gold else None
    return LastDecision(assignment, judgment, gold_winner)


_ASSIGNMENT = (
    select(Assignment)
    .where(Assignment.id == bindparam("assignment_id"))
    .execution_options(populate_existing=True)
)


async def assignment_of(session: AsyncSession, assignment_id: int) -> Assignment | None:
    """The assignment as it is now, unlocked (a change locks its slots first, then it)."""
    return await session.scalar(_ASSIGNMENT, {"assignment_id": assignment_id})


_JUDGMENT_OF = select(Judgment).where(Judgment.assignment_id == bindparam("assignment_id"))


async def judgment_of(
    session: AsyncSession, assignment_id: int, *, lock: bool = False
) -> Judgment | None:
    """The assignment's judgment; with `lock`, lock 6 (after its slot and assignment)."""
    statement = _JUDGMENT_OF.with_for_update() if lock else _JUDGMENT_OF
    return await session.scalar(
        statement.execution_options(populate_existing=True), {"assignment_id": assignment_id}
    )


async def keep_replaced(session: AsyncSession, replaced: ReplacedDecision) -> None:
    session.add(replaced)
    await session.flush()


async def withdraw_judgment(session: AsyncSession, judgment: Judgment) -> None:
    await session.delete(judgment)
    await session.flush()


_REPLACED_OF_PAIR = (
    select(ReplacedDecision)
    .where(
        ReplacedDecision.project_id == bindparam("project_id"),
        ReplacedDecision.pair_id == bindparam("pair_id"),
    )
    .order_by(ReplacedDecision.id)
)


async def replaced_decisions(
    session: AsyncSession, project_id: int, pair_id: int
) -> Sequence[ReplacedDecision]:
    """The decisions raters replaced on a pair, oldest first."""
    params = {"project_id": project_id, "pair_id": pair_id}
    return (await session.scalars(_REPLACED_OF_PAIR, params)).all()


async def get_pair(session: AsyncSession, pair_id: int) -> Pair | None:
    return await session.get(Pair, pair_id)


async def lock_pair(
    session: AsyncSession, pair_id: int, project_id: int | None = None
) -> Pair | None:
    """Lock 7: the pair row (of the project, when given). FOR NO KEY UPDATE: a claim inserting
    an assignment for this pair (which takes a key-share lock on it through the foreign key)
    is not held up."""
    statement = select(Pair).where(Pair.id == pair_id).with_for_update(key_share=True)
    if project_id is not None:
        statement = statement.where(Pair.project_id == project_id)
    return await session.scalar(statement)


async def unresolved_flags(session: AsyncSession, pair_id: int) -> Sequence[PairFlag]:
    statement = select(PairFlag).where(PairFlag.pair_id == pair_id, PairFlag.resolution.is_(None))
    return (await session.scalars(statement)).all()


async def open_flags(
    session: AsyncSession, project_id: int, limit: int
) -> Sequence[tuple[PairFlag, str, list[Any]]]:
    """The project's unresolved flags with their pair's status and prompt turns, by pair."""
    rows = await session.execute(
        select(PairFlag, Pair.status, Prompt.turns)
        .join(Pair, Pair.id == PairFlag.pair_id)
        .join(Prompt, Prompt.id == Pair.prompt_id)
        .where(PairFlag.project_id == project_id, PairFlag.resolution.is_(None))
        .order_by(PairFlag.pair_id, PairFlag.id)
        .limit(limit)
    )
    return [(flag, status, turns) for flag, status, turns in rows]


# --- replays (judgments.idempotency) ------------------------------------------------------


# The key's two statements run on every rating form's POST (every judgment of the rating
# page): straight through psycopg (see DriverSql), as the judgment's own statements.
_CLAIM_KEY = DriverSql(
    """
    INSERT INTO idempotency_keys (user_id, key, request_hash, status_code, response_body)
    VALUES (:user_id, :key, :request_hash, 0, '{}')
    ON CONFLICT DO NOTHING
    RETURNING key
    """
)
_STORE_ANSWER = DriverSql(
    """
    UPDATE idempotency_keys
    SET status_code = :status_code, response_body = CAST(:response_body AS jsonb)
    WHERE user_id = :user_id AND key = :key
    """
)

# A claim whose request was refused before its work ran: gone, so that the same form, sent
# again with what it lacked (the back button), is a first request, as before any claim.
_RELEASE_CLAIM = DriverSql(
    """
    DELETE FROM idempotency_keys
    WHERE user_id = :user_id AND key = :key AND status_code = 0
    """
)


def _claim_key_of(holder: str) -> DriverSql:
    """The claim for the user `holder` names (the SQL of an id, or NULL: no row), to send with
    the lookup of who asks (an API token's, a web session's)."""
    return DriverSql(
        f"""
        INSERT INTO idempotency_keys (user_id, key, request_hash, status_code, response_body)
        SELECT holder.id, :key, :request_hash, 0, '{{}}'
        FROM (SELECT {holder} AS id) AS holder
        WHERE holder.id IS NOT NULL
        ON CONFLICT DO NOTHING
        RETURNING key
        """
    )


_CLAIM_KEY_OF_TOKEN_HOLDER = _claim_key_of(API_TOKEN_HOLDER)
_CLAIM_KEY_OF_SESSION_HOLDER = _claim_key_of(SESSION_HOLDER)


def _claimant(user: str) -> str:
    """The SQL of `user`'s id when this transaction has just claimed :key for them, else NULL.

    Sent after the claim in one round trip, a lock statement for the claimant takes effect
    only when the claim did: a key that was taken before (a replay, which waited for its first
    request to commit) is seen with its stored answer, never with status 0, since the first
    request stores its answer before it commits or rolls the claim back with everything else.
    """
    return f"""(
        SELECT k.user_id FROM idempotency_keys k
        WHERE k.user_id = {user} AND k.key = :key AND k.status_code = 0
    )"""


_LOCK_SLOT_OF_CLAIMANT = lock_slot_of_assignment(_claimant(":user_id"))
_LOCKED_ASSIGNMENT_OF_CLAIMANT = _locked_assignment(_claimant(":user_id"))
_LOCK_SLOT_OF_CLAIMING_TOKEN_HOLDER = lock_slot_of_assignment(_claimant(API_TOKEN_HOLDER))
_LOCKED_ASSIGNMENT_OF_CLAIMING_TOKEN_HOLDER = _locked_assignment(_claimant(API_TOKEN_HOLDER))
_LOCK_SLOT_OF_CLAIMING_SESSION_HOLDER = lock_slot_of_assignment(_claimant(SESSION_HOLDER))
_LOCKED_ASSIGNMENT_OF_CLAIMING_SESSION_HOLDER = _locked_assignment(_claimant(SESSION_HOLDER))


@dataclass(frozen=True)
class KeyClaim:
    """A key's claim sent with the lease's locks: whether it took effect and, only then, what
    the locks found (`lock_slot_and_assignment`)."""

    claimed: bool
    found: LockedAssignment | None


def key_claim(session: AsyncSession, answers: list[list[tuple[Any, ...]]]) -> KeyClaim:
    claimed = bool(answers[0])
    return KeyClaim(claimed, _locked(session, answers[2]) if claimed else None)


async def claim_key_and_lock(
    session: AsyncSession, user_id: int, key: str, fingerprint: str, assignment_id: int
) -> KeyClaim:
    """`claim_key`, then `lock_slot_and_assignment` for the user if the claim took effect, in
    one round trip; a replay locks nothing."""
    params = {
        "user_id": user_id,
        "key": key,
        "request_hash": fingerprint,
        "assignment_id": assignment_id,
    }
    calls = [(_CLAIM_KEY, params), (_LOCK_SLOT_OF_CLAIMANT, params)]
    calls.append((_LOCKED_ASSIGNMENT_OF_CLAIMANT, params))
    return key_claim(session, await run_pipelined(session, calls))


async def token_holder_claim_and_lock(
    session: AsyncSession,
    token_hash: str,
    now: datetime,
    key: str,
    fingerprint: str,
    assignment_id: int,
) -> tuple[User | None, KeyClaim]:
    """Who an API token names and `claim_key_and_lock` for them, all in one round trip. A
    token that names nobody claims and locks nothing, so the key stays free for its owner."""
    params = {"key": key, "request_hash": fingerprint, "assignment_id": assignment_id}
    calls = [
        (_CLAIM_KEY_OF_TOKEN_HOLDER, params),
        (_LOCK_SLOT_OF_CLAIMING_TOKEN_HOLDER, params),
        (_LOCKED_ASSIGNMENT_OF_CLAIMING_TOKEN_HOLDER, params),
    ]
    user, answers = await user_of_api_token_with(session, token_hash, now, calls)
    if user is None:
        return None, KeyClaim(False, None)
    return user, key_claim(session, answers)


def session_holder_claim_and_lock_calls(
    key: str, fingerprint: str, assignment_id: int
) -> list[tuple[DriverSql, dict[str, Any]]]:
    """`claim_key_and_lock` for the user of the web session whose lookup they are sent with
    (auth.repository.rater_of_session_in_project), when the form's CSRF token is the
    session's: a forged form, or a session that names nobody, claims and locks nothing.
    Their answers make a KeyClaim (`key_claim`)."""
    params = {"key": key, "request_hash": fingerprint, "assignment_id": assignment_id}
    return [
        (_CLAIM_KEY_OF_SESSION_HOLDER, params),
        (_LOCK_SLOT_OF_CLAIMING_SESSION_HOLDER, params),
        (_LOCKED_ASSIGNMENT_OF_CLAIMING_SESSION_HOLDER, params),
    ]


async def claim_key(session: AsyncSession, user_id: int, key: str, fingerprint: str) -> bool:
    """Records the key as taken by this request; False when it was taken before. A request
    with the same key waits here, on the unique index, until the first one commits."""
    params = {"user_id": user_id, "key": key, "request_hash": fingerprint}
    return await _CLAIM_KEY.first(session, params) is not None


async def stored_answer(session: AsyncSession, user_id: int, key: str) -> IdempotencyKey | None:
    return await session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    )


async def store_answer(
    session: AsyncSession, user_id: int, key: str, status_code: int, body: dict[str, Any]
) -> None:
    params = {"user_id": user_id, "key": key, "status_code": status_code}
    await _STORE_ANSWER.rows(session, {**params, "response_body": json.dumps(body)})


async def release_claim(session: AsyncSession, user_id: int, key: str) -> None:
    await _RELEASE_CLAIM.rows(session, {"user_id": user_id, "key": key})


# --- a rater's own patterns (judgments.patterns) ------------------------------------------

# The summary's lines compare the two answers of each choice, never its prompt: the prompts'
# turns (JSON to decode, 500 rows every 20 judgments) are not read. Nor are the answers' texts
# here: the summary asks for those it has not scanned before (`answer_texts`), by id.
# The latest judgments are taken first (an index-only scan of ix_judgments_rater_project_latest
# in its order), then each one's pair by its key. As a plain join, Postgres estimated the
# rater's every judgment joined before the sort and hashed the project's every pair for it
# (6-10 ms a summary with 20,000 pairs); OFFSET 0 keeps the pair lookup a subquery run per
# judgment (0.7 ms for 500).
_RATER_CHOICES = DriverSql(
    """
    SELECT q.response_a_id, q.response_b_id, latest.choice, latest.left_side
    FROM (
        SELECT j.pair_id, j.choice, j.left_side, j.submitted_at, j.id
        FROM judgments j
        WHERE j.project_id = :project_id AND j.rater_id = :rater_id
        ORDER BY j.submitted_at DESC, j.id DESC
        LIMIT :limit
    ) AS latest
    CROSS JOIN LATERAL (
        SELECT p.response_a_id, p.response_b_id FROM pairs p WHERE p.id = latest.pair_id
        OFFSET 0
    ) AS q
    ORDER BY latest.submitted_at DESC, latest.id DESC
    """
)
_ANSWER_TEXTS = DriverSql("SELECT id, content FROM responses WHERE id = ANY(:ids)")


async def latest_choices(
    session: AsyncSession, project_id: int, rater_id: int, limit: int
) -> Sequence[tuple[int, int, str, str]]:
    """The rater's latest judgments in the project: (answer A's id, answer B's id, choice,
    side shown left), newest first."""
    params = {"project_id": project_id, "rater_id": rater_id, "limit": limit}
    rows = await _RATER_CHOICES.rows(session, params)
    return [(answer_a, answer_b, choice, left) for answer_a, answer_b, choice, left in rows]


async def answer_texts(session: AsyncSession, answer_ids: Sequence[int]) -> dict[int, str]:
    """The texts of the answers (responses) of `answer_ids`, by id."""
    rows = await _ANSWER_TEXTS.rows(session, {"ids": list(answer_ids)})
    return {answer_id: text for answer_id, text in rows}
