"""A conversation over the API, end to end: four turns with the fake models, what the models
were sent, what was stored, and the exports equal to what was shown and chosen."""

import json
from typing import Any

from sqlalchemy import func, select, text

from pickwise.core.db import get_engine, session_factory
from pickwise.models import Assignment, Batch, Judgment, Pair, PairSlot, Prompt, Response
from tests.conversations.conftest import World
from tests.conversations.fake_llm import FakeLLM


def shown(turn: dict[str, Any], side: str) -> str:
    return str(turn[side]["content"])


def model_of(text: str) -> str:
    """The fake model that wrote a reply ("[model-a] 3: ..." → "model-a")."""
    return text.split("]")[0].lstrip("[")


async def test_four_turns_are_four_pairs_with_the_context_the_models_saw(
    world: World, fake_llm: FakeLLM
) -> None:
    await world.configure(turn_cap=4, system_prompt="Be brief.")
    conversation = await world.start("Hello there")
    first = conversation["turns"][0]
    assert first["can_vote"] and conversation["can_send"] is False
    assert {model_of(shown(first, "left")), model_of(shown(first, "right"))} == {
        "model-a",
        "model-b",
    }
    record = []  # (context the models were sent, left text, right text, choice)
    choices = ["left", "right", "left", "right"]
    messages = ["Hello there", "Tell me more", "Shorter, please", "Thanks"]
    expected_context: list[dict[str, str]] = [{"role": "system", "content": "Be brief."}]
    for number, (message, choice) in enumerate(zip(messages, choices, strict=True)):
        if number:
            conversation = await world.send(conversation, message)
        turn = conversation["turns"][-1]
        expected_context.append({"role": "user", "content": message})
        calls = fake_llm.calls[-2:]
        assert [call["messages"] for call in calls] == [expected_context] * 2
        assert all(call["stream"] for call in calls)
        record.append((list(expected_context), shown(turn, "left"), shown(turn, "right"), choice))
        conversation = await world.vote(conversation, choice, criteria={"accuracy": choice})
        kept = shown(turn, choice)
        if number == 1:
            edit = await world.api.put(
                f"/api/v1/conversations/{conversation['id']}/turns/{turn['id']}/edit",
                json={"content": "An edited, better reply."},
                headers=world.rater,
            )
            assert edit.status_code == 200, edit.text
            assert edit.json()["turns"][-1]["edited_reply"] == "An edited, better reply."
            kept = "An edited, better reply."
        expected_context.append({"role": "assistant", "content": kept})
    assert conversation["status"] == "complete" and conversation["can_send"] is False
    assert [turn["vote"]["choice"] for turn in conversation["turns"]] == choices
    assert len(fake_llm.calls) == 8

    async with session_factory(get_engine())() as session:
        pairs = (await session.scalars(select(Pair).order_by(Pair.id))).all()
        assert len(pairs) == 4
        for pair, (context, left, right, choice) in zip(pairs, record, strict=True):
            prompt = await session.get(Prompt, pair.prompt_id)
            assert prompt is not None
            assert prompt.system == "Be brief."
            assert prompt.turns == context[1:]
            assert prompt.external_id.startswith(f"conversation:{conversation['id']}:turn:")
            a = await session.get(Response, pair.response_a_id)
            b = await session.get(Response, pair.response_b_id)
            assert a is not None and b is not None
            # Response A is always the endpoint made first (alpha), whichever side it was on.
            assert (a.model, b.model) == ("alpha", "beta")
            assert {a.content, b.content} == {left, right}
            assert a.metadata_["model"] == "model-a" and a.metadata_["served_model"]
            assert a.metadata_["completion_tokens"] == len(a.content.split(" "))
            assert a.metadata_["finish_reason"] == "stop"
            judgment = await session.scalar(select(Judgment).where(Judgment.pair_id == pair.id))
            assert judgment is not None and judgment.rater_id == world.rater_id
            picked = a if (a.content == (left if choice == "left" else right)) else b
            assert judgment.choice == ("a" if picked.id == a.id else "b")
            assert judgment.criteria == {"accuracy": judgment.choice}
            shown_left = a if a.content == left else b
            assert judgment.left_side == ("a" if shown_left.id == a.id else "b")
            assert judgment.submitted_at >= judgment.shown_at
            # One slot, done at birth, leased to the author alone.
            slots = (
                await session.scalars(select(PairSlot).where(PairSlot.pair_id == pair.id))
            ).all()
            assert [(s.state, s.slot_no) for s in slots] == [("done", 1)]
            assignment = await session.get(Assignment, judgment.assignment_id)
            assert assignment is not None and assignment.status == "submitted"


async def test_turn_pairs_never_reach_another_raters_queue(world: World, fake_llm: FakeLLM) -> None:
    await world.configure(turn_cap=3)
    conversation = await world.start("One")
    await world.vote(conversation, "left")
    nothing = await world.api.get(f"/api/v1/projects/{world.project_id}/next", headers=world.other)
    assert nothing.status_code == 200 and nothing.json()["assignment_id"] is None
    # Nor can the project be given more raters per pair or gold pairs, by API or in SQL.
    refused = await world.api.patch(
        f"/api/v1/projects/{world.project_id}",
        json={"raters_per_pair": 3},
        headers=world.admin,
    )
    assert refused.status_code == 422, refused.text
    assert "conversation" in refused.json()["detail"]
    async with session_factory(get_engine())() as session:
        try:
            await session.execute(
                text("UPDATE projects SET gold_rate = 0.5 WHERE id = :id"), {"id": world.project_id}
            )
        except Exception as exc:
            assert "conversations_rated_once" in str(exc)
        else:
            raise AssertionError("the database let a conversation project have gold pairs")
    async with session_factory(get_engine())() as session:
        slots = await session.scalar(select(func.count()).select_from(PairSlot))
        assert slots == 1


async def test_a_vote_is_not_changed_through_the_rating_undo(
    world: World, fake_llm: FakeLLM
) -> None:
    """The conversation went on from the reply kept: the rating page's undo leaves it alone."""
    await world.configure(turn_cap=3)
    conversation = await world.start("One")
    await world.vote(conversation, "left")
    last = await world.api.get(
        f"/api/v1/projects/{world.project_id}/last-decision", headers=world.rater
    )
    assert last.status_code == 200 and last.json().get("assignment_id") is None, last.text
    async with session_factory(get_engine())() as session:
        assignment_id = await session.scalar(
            select(Assignment.id).where(Assignment.rater_id == world.rater_id)
        )
        before = await session.scalar(select(Judgment))
        assert before is not None
    for verb, body in (("judgment", {"choice": "right"}), ("skip", {"reason": "cant_judge"})):
        refused = await world.api.put(
            f"/api/v1/assignments/{assignment_id}/{verb}", json=body, headers=world.rater
        )
        assert refused.status_code == 409, refused.text
        assert "conversation" in refused.json()["detail"]
    async with session_factory(get_engine())() as session:
        kept = (await session.scalars(select(Judgment))).all()
        assert [(j.assignment_id, j.submitted_at) for j in kept] == [
            (assignment_id, before.submitted_at)
        ]


async def export_rows(world: World, **params: Any) -> list[dict[str, Any]]:
    reply = await world.api.get(
        f"/api/v1/projects/{world.project_id}/export", params=params, headers=world.admin
    )
    assert reply.status_code == 200, reply.text
    return [json.loads(line) for line in reply.text.splitlines()]


async def test_exports_hold_what_was_shown_and_chosen(world: World, fake_llm: FakeLLM) -> None:
    await world.configure(turn_cap=3, system_prompt="Be kind.")
    expected = []  # (prompt messages, chosen, rejected)
    paths = []
    for opening in ("Alpha question", "Beta question", "Gamma question"):
        conversation = await world.start(opening)
        path = [{"role": "system", "content": "Be kind."}]
        for number, choice in enumerate(("left", "right", "left")):
            if number:
                conversation = await world.send(conversation, f"{opening}, part {number + 1}")
            turn = conversation["turns"][-1]
            prompt = [*path, {"role": "user", "content": turn["user_content"]}]
            other = "right" if choice == "left" else "left"
            expected.append((prompt, shown(turn, choice), shown(turn, other)))
            conversation = await world.vote(conversation, choice)
            path = [*prompt, {"role": "assistant", "content": shown(turn, choice)}]
        paths.append(path)

    trl = await export_rows(world, format="trl", test_fraction=0)
    assert sorted(
        (json.dumps(r["prompt"]), r["chosen"][0]["content"], r["rejected"][0]["content"])
        for r in trl
    ) == sorted((json.dumps(p), c, r) for p, c, r in expected)
    assert all(r["chosen"][0]["role"] == "assistant" for r in trl)
    openai = await export_rows(world, format="openai", test_fraction=0)
    assert sorted(r["preferred_output"][0]["content"] for r in openai) == sorted(
        c for _, c, _ in expected
    )
    kto = await export_rows(world, format="kto", test_fraction=0)
    assert len(kto) == 2 * len(expected) and isinstance(kto[0]["prompt"], list)
    hh = await export_rows(world, format="hh-rlhf", test_fraction=0)
    assert len(hh) == len(expected)
    votes = await export_rows(world, format="votes", test_fraction=0)
    assert len(votes) == len(expected)

    sft = await world.api.get(
        f"/api/v1/projects/{world.project_id}/conversation-export",
        params={"test_fraction": 0},
        headers=world.admin,
    )
    assert sft.status_code == 200, sft.text
    assert [json.loads(line)["messages"] for line in sft.text.splitlines()] == paths

    # Split by conversation: with half to test, each conversation's turns stay together, and
    # the chosen path of a conversation lands on the side its turns took.
    for seed in range(6):
        by_split = {}
        for split in ("train", "test"):
            rows = await export_rows(world, format="trl", test_fraction=0.5, seed=seed, split=split)
            by_split[split] = {r["prompt"][1]["content"] for r in rows}
            paths_here = await world.api.get(
                f"/api/v1/projects/{world.project_id}/conversation-export",
                params={"test_fraction": 0.5, "seed": seed, "split": split},
                headers=world.admin,
            )
            openings = {
                json.loads(line)["messages"][1]["content"] for line in paths_here.text.splitlines()
            }
            assert openings == by_split[split]
        assert not by_split["train"] & by_split["test"]
        assert len(by_split["train"]) + len(by_split["test"]) == 3


async def test_usage_stats_counters_and_the_chosen_path_rules(
    world: World, fake_llm: FakeLLM
) -> None:
    await world.configure(turn_cap=3)
    # One conversation ended after a "both bad" turn that was rewritten, then a "both bad"
    # turn that was not; one left waiting for its vote.
    conversation = await world.start("First")
    conversation = await world.vote(conversation, "both_bad", continue_with="right")
    turn = conversation["turns"][0]
    edited = await world.api.put(
        f"/api/v1/conversations/{conversation['id']}/turns/{turn['id']}/edit",
        json={"content": "A better first reply."},
        headers=world.rater,
    )
    assert edited.status_code == 200
    conversation = await world.send(edited.json(), "Second")
    conversation = await world.vote(conversation, "both_bad")
    ended = await world.api.post(
        f"/api/v1/conversations/{conversation['id']}/end", headers=world.rater
    )
    assert ended.json()["status"] == "ended"
    await world.start("Waiting")

    sft = await world.api.get(
        f"/api/v1/projects/{world.project_id}/conversation-export",
        params={"test_fraction": 0},
        headers=world.admin,
    )
    assert [json.loads(line)["messages"] for line in sft.text.splitlines()] == [
        [
            {"role": "user", "content": "First"},
            {"role": "assistant", "content": "A better first reply."},
        ]
    ]
    stats = await world.api.get(
        f"/api/v1/projects/{world.project_id}/conversation-stats", headers=world.admin
    )
    body = stats.json()
    assert (body["conversations"], body["active"], body["ended"], body["judged_turns"]) == (
        2,
        1,
        1,
        2,
    )
    assert body["turns_per_conversation"] == {"0": 1, "2": 1}
    stops = {row["turn"]: row for row in body["stops"]}
    assert stops[2]["ended_by_rater"] == 1 and stops[1]["open_before_voting"] == 1
    usage = await world.api.get(
        f"/api/v1/projects/{world.project_id}/conversation-usage", headers=world.admin
    )
    rows = {row["endpoint_name"]: row for row in usage.json()}
    assert set(rows) == {"alpha", "beta"}
    for row in rows.values():
        assert (row["requests"], row["replies"], row["failed"]) == (3, 3, 0)
        assert row["prompt_tokens"] == 3 * 7 and row["completion_tokens"] > 0
        assert row["requests_today"] == 3
    async with session_factory(get_engine())() as session:
        batch = await session.scalar(select(Batch).where(Batch.source == "conversation"))
    assert batch is not None and (batch.prompts_new, batch.pairs_new) == (2, 2)
