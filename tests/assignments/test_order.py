"""The order pairs are handed out in: seeded and shuffled across prompts (or in file order),
pairs already started first, and never two pairs of one prompt in a row for a rater while
pairs of other prompts are open to them."""

import io
import itertools
import json
import random
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments import service as assignments
from pickwise.assignments import slots_repository
from pickwise.batches.service import import_stream
from pickwise.core import clock
from pickwise.core.driver_sql import psycopg_sql
from pickwise.judgments import service as judgments
from pickwise.judgments.schemas import JudgmentIn, SkipIn
from pickwise.models import Pair, PairSlot, Project, Prompt, User
from pickwise.projects.schemas import ProjectUpdate
from pickwise.projects.service import update_project
from pickwise.vocabulary import PairOrder
from tests.factories import add_member, make_project, make_user

PAIRS_PER_PROMPT = 3  # three responses: every two of them


def prompts_file(prompts: int, first: int = 0) -> bytes:
    """`prompts` prompts with three responses each, so three pairs each."""
    lines = [
        json.dumps(
            {
                "id": f"q{number:03d}",
                "prompt": f"Question {number}?",
                "responses": [
                    {"model": model, "content": f"{model} answers question {number}."}
                    for model in ("model-a", "model-b", "model-c")
                ],
            }
        )
        for number in range(first, first + prompts)
    ]
    return ("\n".join(lines) + "\n").encode()


async def import_prompts(
    session: AsyncSession, project: Project, prompts: int, first: int = 0
) -> None:
    data = io.BytesIO(prompts_file(prompts, first))
    await import_stream(session, project, data, filename="batch.jsonl", source="cli", user=None)


async def raters_of(session: AsyncSession, project: Project, count: int) -> list[User]:
    raters = [await make_user(session) for _ in range(count)]
    for rater in raters:
        await add_member(session, project, rater)
    return raters


async def queue(session: AsyncSession, project: Project) -> list[tuple[int, int]]:
    """(pair id, prompt id) of the project's pairs, in queue order (slot 1 of each)."""
    rows = await session.execute(
        select(Pair.id, Pair.prompt_id)
        .join(PairSlot, PairSlot.pair_id == Pair.id)
        .where(PairSlot.project_id == project.id, PairSlot.slot_no == 1)
        .order_by(PairSlot.queue_pos)
    )
    return [(pair_id, prompt_id) for pair_id, prompt_id in rows]


# The prompts of the slots open to this rater now, as the claim sees them.
_OPEN_PROMPTS = text(
    """
    SELECT DISTINCT p.prompt_id FROM pair_slots s JOIN pairs p ON p.id = s.pair_id
    WHERE s.project_id = :project_id AND s.state <> 'done'
      AND (s.state = 'open' OR s.lease_expires_at <= :now) AND p.status = 'active'
      AND NOT EXISTS (
          SELECT 1 FROM assignments a WHERE a.pair_id = s.pair_id AND a.rater_id = :rater_id
      )
    """
)


async def prompt_of(session: AsyncSession, pair_id: int) -> int:
    prompt_id = await session.scalar(select(Pair.prompt_id).where(Pair.id == pair_id))
    assert prompt_id is not None
    return prompt_id


@pytest.mark.parametrize("seed", range(24))
async def test_no_rater_gets_one_prompt_twice_in_a_row_while_others_are_open(
    session: AsyncSession, seed: int
) -> None:
    rng = random.Random(seed)
    order = rng.choice(list(PairOrder))
    project = await make_project(
        session, raters_per_pair=1, pairing_seed=seed, pair_order=order, lease_seconds=60
    )
    await import_prompts(session, project, rng.randint(2, 7))
    raters = await raters_of(session, project, rng.randint(1, 4))
    last_prompt: dict[int, int] = {}
    walked_away: dict[int, int] = {}  # rater -> the lease they left to run out
    checked = 0
    for _ in range(300):
        rater = rng.choice(raters)
        params = {"project_id": project.id, "rater_id": rater.id, "now": clock.utcnow()}
        open_prompts = set((await session.scalars(_OPEN_PROMPTS, params)).all())
        lease = await assignments.next_lease(session, project, rater)
        if lease is None:
            continue
        prompt = await prompt_of(session, lease.pair_id)
        if walked_away.pop(rater.id, None) != lease.assignment_id:
            # A new lease (not the old one continued): of another prompt than the last one,
            # unless no pair of another prompt was open to this rater.
            if prompt == last_prompt.get(rater.id):
                assert open_prompts <= {prompt}, (seed, order, rater.id, prompt, open_prompts)
            checked += 1
            last_prompt[rater.id] = prompt
        roll = rng.random()
        if roll < 0.75:
            await judgments.submit(session, lease.assignment_id, rater, JudgmentIn(choice="tie"))
        elif roll < 0.9:
            await judgments.skip(session, lease.assignment_id, rater, SkipIn(reason="cant_judge"))
        else:
            # Walks away: the lease runs out, and the pair goes to whoever asks next (or back
            # to them).
            walked_away[rater.id] = lease.assignment_id
            clock.advance(timedelta(seconds=61))
    assert checked >= 2 * len(raters) or checked >= PAIRS_PER_PROMPT


async def test_the_shuffled_queue_mixes_prompts_and_follows_the_seed(
    session: AsyncSession,
) -> None:
    orders = []
    for seed in (1, 1, 2):
        project = await make_project(session, pairing_seed=seed)
        await import_prompts(session, project, 8)
        prompts = [prompt for _, prompt in await queue(session, project)]
        # One pair of each prompt per round: never the same prompt twice running.
        assert all(a != b for a, b in itertools.pairwise(prompts))
        assert len(prompts) == 8 * PAIRS_PER_PROMPT
        # As the file's ids: each project has prompt rows of its own.
        names = dict(
            (
                await session.execute(
                    select(Prompt.id, Prompt.external_id).where(Prompt.project_id == project.id)
                )
            ).all()
        )
        orders.append([names[prompt] for prompt in prompts])
    assert orders[0] == orders[1]  # the same seed, the same order
    assert orders[0] != orders[2]
    assert orders[0][:8] != sorted(orders[0][:8])  # not the file's order


async def test_file_order_follows_the_file(session: AsyncSession) -> None:
    project = await make_project(session, pair_order=PairOrder.FILE)
    await import_prompts(session, project, 5)
    pair_ids = [pair_id for pair_id, _ in await queue(session, project)]
    assert pair_ids == sorted(pair_ids)


async def test_started_pairs_are_finished_before_new_ones_open(session: AsyncSession) -> None:
    project = await make_project(session, raters_per_pair=3, pairing_seed=5)
    await import_prompts(session, project, 6)
    first_pair = (await queue(session, project))[0][0]
    raters = await raters_of(session, project, 4)
    # Three raters in turn: the first pair's three slots, before any other pair.
    for rater in raters[:3]:
        lease = await assignments.next_lease(session, project, rater)
        assert lease is not None and lease.pair_id == first_pair
    # A new batch joins the end of the queue: what is under way is finished first.
    second_pair = (await queue(session, project))[1][0]
    await import_prompts(session, project, 4, first=100)
    lease = await assignments.next_lease(session, project, raters[3])
    assert lease is not None and lease.pair_id == second_pair
    new_prompts = set(
        (
            await session.scalars(
                select(Pair.prompt_id).where(
                    Pair.id.in_([pair for pair, _ in (await queue(session, project))[-12:]])
                )
            )
        ).all()
    )
    assert len(new_prompts) == 4  # the last twelve places are the new batch's


async def test_a_new_order_places_the_pairs_not_started(session: AsyncSession) -> None:
    project = await make_project(session, pairing_seed=3)
    await import_prompts(session, project, 5)
    (rater,) = await raters_of(session, project, 1)
    lease = await assignments.next_lease(session, project, rater)
    assert lease is not None
    await update_project(session, project, ProjectUpdate(pair_order=PairOrder.FILE))
    after = [pair for pair, _ in await queue(session, project)]
    # The started pair stays first; the others follow in file order.
    assert after[0] == lease.pair_id
    assert after[1:] == sorted(after[1:])
    await update_project(session, project, ProjectUpdate(pair_order=PairOrder.SHUFFLED))
    shuffled = await queue(session, project)
    assert shuffled[0][0] == lease.pair_id
    prompts = [prompt for _, prompt in shuffled[1:]]
    assert [pair for pair, _ in shuffled[1:]] != sorted(pair for pair, _ in shuffled[1:])
    assert sum(a == b for a, b in itertools.pairwise(prompts)) <= 1


async def test_a_batchs_slots_get_ids_in_queue_order_k_each(session: AsyncSession) -> None:
    """Writers lock slots in id order, so ids follow the queue (with ids out of queue order,
    concurrent claims and judgments deadlock), whatever order the rows are written in."""
    project = await make_project(session, raters_per_pair=2, pairing_seed=4)
    await import_prompts(session, project, 12)
    rows = (
        await session.execute(
            select(PairSlot.pair_id, PairSlot.slot_no, PairSlot.queue_pos)
            .where(PairSlot.project_id == project.id)
            .order_by(PairSlot.id)
        )
    ).all()
    pair_ids = (await session.scalars(select(Pair.id).where(Pair.project_id == project.id))).all()
    assert sorted((pair_id, slot_no) for pair_id, slot_no, _ in rows) == [
        (pair_id, slot_no) for pair_id in sorted(pair_ids) for slot_no in (1, 2)
    ]
    by_id = [(queue_pos, slot_no) for _, slot_no, queue_pos in rows]
    assert by_id == sorted(by_id)
    in_queue = [pair_id for pair_id, _ in await queue(session, project)]
    assert in_queue != sorted(in_queue)  # shuffled: queue order is not pair order


async def test_slots_are_written_in_pair_order(session: AsyncSession) -> None:
    """The rows reach the insert sorted by pair, not in the shuffled queue order, so each
    slot's foreign-key check, its (pair_id, slot_no) entry and the batch's summaries' slot
    count walk the pairs in order (docs/benchmarks.md, "i29b")."""
    params = {
        "k": 2,
        "project_id": 0,
        "batch_id": 0,
        "pair_order": PairOrder.SHUFFLED.value,
        "seed": 1,
        "raised_only": False,
    }
    connection = await session.connection()
    plan = (
        (
            await connection.exec_driver_sql(
                "EXPLAIN (VERBOSE, COSTS OFF) " + psycopg_sql(slots_repository.CREATE_SLOTS), params
            )
        )
        .scalars()
        .all()
    )
    # What the insert reads: the rows of its SELECT, sorted by pair and slot first.
    reads = [at for at, line in enumerate(plan) if 'Subquery Scan on "*SELECT*"' in line]
    assert reads, "\n".join(plan)
    select_at = reads[0]
    nodes = [line.strip() for line in plan[select_at + 1 :] if line.strip().startswith("->")]
    assert nodes[0].startswith("->  Sort")
    sort_keys = [line.strip() for line in plan[select_at:] if line.strip().startswith("Sort Key:")]
    assert sort_keys[0] == "Sort Key: numbered.pair_id, numbered.slot_no"
