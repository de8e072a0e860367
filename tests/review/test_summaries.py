"""The pair summaries follow every change of what they summarise, whoever makes it: votes
stored, edited and deleted, raters excluded and included, flags, decisions, pair changes."""

import io

from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.slots_service import create_slots
from pickwise.batches.service import import_stream
from pickwise.models import (
    Adjudication,
    Judgment,
    Pair,
    PairFlag,
    PairSlot,
    PairSummary,
)
from pickwise.projects import service as projects_service
from tests.factories import add_member, exclude, make_pairs, make_project, make_user
from tests.review.helpers import vote


async def summary(session: AsyncSession, pair_id: int) -> PairSummary:
    found = await session.scalar(
        select(PairSummary)
        .where(PairSummary.pair_id == pair_id)
        .execution_options(populate_existing=True)
    )
    assert found is not None
    return found


def counts(s: PairSummary) -> tuple[int, ...]:
    return (s.judgments, s.votes, s.votes_a, s.votes_b, s.ties, s.both_bad, s.rationales)


async def test_votes_are_counted_and_an_excluded_raters_are_not(session: AsyncSession) -> None:
    project = await make_project(session, raters_per_pair=4)
    (pair,) = await make_pairs(session, project, 1)
    raters = [await make_user(session) for _ in range(4)]
    for rater in raters:
        await add_member(session, project, rater)
    await projects_service.set_excluded(session, project, raters[3].id, True)
    await vote(session, pair, raters[0], "a", rationale="short")
    await vote(session, pair, raters[1], "a")
    await vote(session, pair, raters[2], "tie")
    await vote(session, pair, raters[3], "b", rationale="excluded rater")
    s = await summary(session, pair.id)
    assert counts(s) == (4, 3, 2, 0, 1, 0, 1)
    assert (s.majority, s.agreement) == ("a", 2 / 3)

    # Included again: their vote counts (2 A, 1 B, 1 tie).
    await projects_service.set_excluded(session, project, raters[3].id, False)
    s = await summary(session, pair.id)
    assert counts(s) == (4, 4, 2, 1, 1, 0, 2)
    assert (s.majority, s.agreement) == ("a", 0.5)
    # Excluded after voting: the recount takes them out again.
    await projects_service.set_excluded(session, project, raters[0].id, True)
    s = await summary(session, pair.id)
    assert counts(s) == (4, 3, 1, 1, 1, 0, 1)
    assert (s.majority, s.agreement_low, s.agreement_high) == (None, 1 / 3, -1 / 3)


async def test_edited_and_deleted_votes_move_the_counts(session: AsyncSession) -> None:
    project = await make_project(session, raters_per_pair=2)
    (pair,) = await make_pairs(session, project, 1)
    first, second = await make_user(session), await make_user(session)
    one = await vote(session, pair, first, "a")
    await vote(session, pair, second, "b", rationale="why")
    assert counts(await summary(session, pair.id)) == (2, 2, 1, 1, 0, 0, 1)
    await session.execute(
        update(Judgment).where(Judgment.id == one.id).values(choice="both_bad", rationale="x")
    )
    assert counts(await summary(session, pair.id)) == (2, 2, 0, 1, 0, 1, 2)
    await session.execute(delete(Judgment).where(Judgment.pair_id == pair.id))
    s = await summary(session, pair.id)
    assert counts(s) == (0,) * 7
    assert (s.agreement, s.majority, s.agreement_low, s.agreement_high) == (None, None, 2, 1)


async def test_flags_decisions_and_pair_changes_are_mirrored(session: AsyncSession) -> None:
    project = await make_project(session)
    (pair,) = await make_pairs(session, project, 1)
    rater = await make_user(session)
    flags = [
        PairFlag(project_id=project.id, pair_id=pair.id, rater_id=rater.id, reason="other")
        for _ in range(2)
    ]
    session.add_all(flags)
    await session.flush()
    assert (await summary(session, pair.id)).open_flags == 2
    flags[0].resolution = "restored"
    await session.flush()
    assert (await summary(session, pair.id)).open_flags == 1

    decision = Adjudication(
        project_id=project.id,
        pair_id=pair.id,
        decision="tie",
        decided_by_id=rater.id,
        decided_at=pair.created_at,
    )
    session.add(decision)
    await session.flush()
    assert (await summary(session, pair.id)).decision == "tie"
    decision.is_current = False
    await session.flush()
    assert (await summary(session, pair.id)).decision is None

    await session.execute(
        update(Pair)
        .where(Pair.id == pair.id)
        .values(status="flagged", excluded=True, votes_wanted=7)
    )
    s = await summary(session, pair.id)
    assert (s.pair_status, s.excluded, s.votes_wanted) == ("flagged", True, 7)
    await session.execute(delete(Pair).where(Pair.id == pair.id))
    assert await session.scalar(select(PairSummary).where(PairSummary.pair_id == pair.id)) is None


async def summary_updates(session: AsyncSession) -> int:
    """Summary rows this transaction has updated so far."""
    return int(
        await session.scalar(
            text("SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'pair_summaries'")
        )
        or 0
    )


async def test_an_imported_batch_gets_its_summaries(session: AsyncSession) -> None:
    project = await make_project(session, raters_per_pair=2)
    admin = await make_user(session, role="admin")
    lines = [
        b'{"id": "p1", "prompt": "Hi?", "responses": [{"model": "zed", "content": "a"},'
        b' {"model": "abe", "content": "b"}, {"model": "max", "content": "c"}]}',
        b'{"id": "p2", "prompt": "Gold?", "responses": [{"id": "good", "model": "abe",'
        b' "content": "yes"}, {"id": "bad", "model": "zed", "content": "no"}],'
        b' "gold": {"winner": "good"}}',
    ]
    updates_before = await summary_updates(session)
    await import_stream(
        session,
        project,
        io.BytesIO(b"\n".join(lines) + b"\n"),
        filename="f.jsonl",
        source="cli",
        user=admin,
    )
    rows = (
        await session.execute(
            select(
                PairSummary.model_low,
                PairSummary.model_high,
                PairSummary.is_gold,
                PairSummary.slots,
            ).where(PairSummary.project_id == project.id)
        )
    ).all()
    # Slots counted (k = 2; a gold pair has none), each summary written once: made after the
    # slots, not made with the pairs and then updated by the slots' trigger.
    assert sorted(rows) == [
        ("abe", "max", False, 2),
        ("abe", "zed", False, 2),
        ("abe", "zed", True, 0),
        ("max", "zed", False, 2),
    ]
    assert await summary_updates(session) == updates_before
    # Only the import leaves the summaries to itself: pairs made after it get theirs at once.
    (later,) = await make_pairs(session, project, 1)
    assert (await summary(session, later.id)).slots == 2


async def test_an_excluded_rater_stays_excluded_when_removed_and_added_again(
    session: AsyncSession,
) -> None:
    """The exclusion belongs to the rater in the project, not to the membership (as in
    exports and analytics); a former member can be excluded and included too."""
    project = await make_project(session)
    (pair,) = await make_pairs(session, project, 1)
    rater = await make_user(session)
    await add_member(session, project, rater)
    await exclude(session, project, rater)
    await vote(session, pair, rater, "a")
    assert (await summary(session, pair.id)).votes == 0
    await projects_service.remove_member(session, project, rater.id)
    assert (await summary(session, pair.id)).votes == 0
    await projects_service.add_member(session, project, rater)
    assert (await summary(session, pair.id)).votes == 0
    await projects_service.remove_member(session, project, rater.id)
    await projects_service.set_excluded(session, project, rater.id, False)
    assert (await summary(session, pair.id)).votes == 1
    await projects_service.set_excluded(session, project, rater.id, True)
    assert (await summary(session, pair.id)).votes == 0


async def test_slots_added_and_dropped_are_counted(session: AsyncSession) -> None:
    project = await make_project(session, raters_per_pair=3)
    first, second = await make_pairs(session, project, 2)
    assert (await summary(session, first.id)).slots == 3
    await session.execute(update(Pair).where(Pair.id == first.id).values(votes_wanted=5))
    await create_slots(session, project, raised_only=True)
    assert (await summary(session, first.id)).slots == 5
    assert (await summary(session, second.id)).slots == 3
    dropped = (
        select(PairSlot.id).where(PairSlot.pair_id == first.id).order_by(PairSlot.slot_no.desc())
    ).limit(2)
    await session.execute(delete(PairSlot).where(PairSlot.id.in_(dropped.scalar_subquery())))
    assert (await summary(session, first.id)).slots == 3
    assert (await summary(session, second.id)).slots == 3
