"""Prompt-only batches: answers from chat endpoints (a fake one on loopback), then import."""

import io
import json
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.batches import repository as batches_repository
from pickwise.batches.service import import_stream
from pickwise.generation.chat import EndpointConfig, RetryPolicy
from pickwise.generation.runner import GenerationOptions, GenerationReport, generate_jsonl
from pickwise.models import Project, Prompt, Response
from tests.factories import make_project
from tests.generation.fake_openai import SLOW_SECONDS, FakeServer, fake_openai

FAST_RETRIES = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, timeout=SLOW_SECONDS / 2)


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with fake_openai() as server:
        yield server


def endpoints(fake: FakeServer) -> list[EndpointConfig]:
    return [
        EndpointConfig(
            name="small",
            base_url=fake.base_url,
            model="small-chat",
            api_key="sesame",
            temperature=0.2,
            max_tokens=64,
        ),
        EndpointConfig(name="large", base_url=fake.base_url, model="large-chat", api_key=None),
    ]


def jsonl(*records: dict[str, Any]) -> io.BytesIO:
    return io.BytesIO(b"".join(json.dumps(r).encode() + b"\n" for r in records))


async def generate(
    session: AsyncSession,
    project: Project,
    source: io.BytesIO,
    configs: Sequence[EndpointConfig],
    **options: Any,
) -> tuple[GenerationReport, io.BytesIO]:
    out = io.BytesIO()

    async def known_ids(ids: Sequence[str]) -> set[str]:
        return set(await batches_repository.existing_hashes(session, project.id, ids))

    async with httpx.AsyncClient() as http:
        report = await generate_jsonl(
            source,
            out,
            configs,
            known_ids=known_ids,
            http=http,
            options=GenerationOptions(policy=FAST_RETRIES, **options),
        )
    out.seek(0)
    return report, out


async def responses_of(session: AsyncSession, project: Project, prompt_id: str) -> list[Response]:
    result = await session.execute(
        select(Response)
        .join(Prompt, Prompt.id == Response.prompt_id)
        .where(Prompt.project_id == project.id, Prompt.external_id == prompt_id)
        .order_by(Response.external_id)
    )
    return list(result.scalars())


async def test_prompts_get_one_answer_per_endpoint_with_model_and_settings(
    session: AsyncSession, fake: FakeServer
) -> None:
    project = await make_project(session)
    source = jsonl(
        {"id": "q1", "prompt": "What is 2+2?", "metadata": {"topic": "math"}},
        {
            "id": "q2",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "Name a colour."},
            ],
        },
        {
            "id": "ready",
            "prompt": "Already answered",
            "responses": [{"model": "m1", "content": "one"}, {"model": "m2", "content": "two"}],
        },
    )
    report, out = await generate(session, project, source, endpoints(fake))
    assert (report.generated, report.passed_through, report.answers) == (2, 1, 4)
    assert report.failure_count == 0 and report.retries == 0

    outcome = await import_stream(
        session, project, out, filename="prompts.jsonl", source="cli", user=None
    )
    assert (outcome.prompts_new, outcome.responses_new, outcome.pairs_new) == (3, 6, 3)

    small, large = sorted(await responses_of(session, project, "q1"), key=lambda r: r.model)[::-1]
    assert (small.model, large.model) == ("small", "large")
    assert small.content == "small-chat (t=0.2) answers: What is 2+2?"
    assert small.metadata_["generation"] == {
        "endpoint": "small",
        "model": "small-chat",
        "base_url": fake.base_url,
        "settings": {"temperature": 0.2, "max_tokens": 64},
        "served_model": "small-chat-2025",
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
    }
    assert large.metadata_["generation"]["settings"] == {}

    sent = {(call["model"], call["messages"][-1]["content"]): call for call in fake.seen.calls}
    conversation = sent[("small-chat", "Name a colour.")]
    assert [m["role"] for m in conversation["messages"]] == ["system", "user", "assistant", "user"]
    assert conversation["temperature"] == 0.2 and conversation["max_tokens"] == 64
    assert conversation["authorization"] == "Bearer sesame"
    assert sent[("large-chat", "Name a colour.")]["authorization"] is None
    assert "temperature" not in sent[("large-chat", "Name a colour.")]
    assert len(fake.seen.calls) == 4


async def test_server_errors_and_timeouts_are_retried(
    session: AsyncSession, fake: FakeServer
) -> None:
    project = await make_project(session)
    source = jsonl(
        {"id": "flaky", "prompt": "Flaky [500x2]"},
        {"id": "slow", "prompt": "Slow [slow]"},
    )
    report, _ = await generate(session, project, source, endpoints(fake))
    assert report.generated == 2 and report.failure_count == 0
    # Two 500s for each model on "flaky", one timeout for each model on "slow".
    assert report.retries == 2 * 2 + 2
    assert fake.seen.attempts[("small-chat", "Flaky [500x2]")] == 3


async def test_failed_prompts_are_left_out_whole_and_retried_on_the_next_run(
    session: AsyncSession, fake: FakeServer
) -> None:
    project = await make_project(session)
    lines = [
        {"id": "good", "prompt": "Fine"},
        {"id": "down", "prompt": "Broken [always500]"},
        {"id": "same", "prompt": "Echo [same]"},
        {"id": "empty", "prompt": "Nothing [empty]"},
    ]
    report, out = await generate(session, project, jsonl(*lines), endpoints(fake))
    assert report.generated == 1
    failures = {failure.prompt_id: failure.problems for failure in report.failures}
    assert list(failures) == ["down", "same", "empty"]  # In file order.
    assert failures["down"] == (
        "small: HTTP 500: overloaded (gave up after 4 attempts)",
        "large: HTTP 500: overloaded (gave up after 4 attempts)",
    )
    assert failures["same"] == ("the endpoints gave fewer than two different answers",)
    assert "the answer is empty" in failures["empty"][0]

    await import_stream(session, project, out, filename="p.jsonl", source="cli", user=None)
    stored = set(
        (await session.execute(select(Prompt.external_id).where(Prompt.project_id == project.id)))
        .scalars()
        .all()
    )
    assert stored == {"good"}

    calls_before = len(fake.seen.calls)
    again, _ = await generate(session, project, jsonl(*lines), endpoints(fake))
    assert again.already_in_project == 1 and again.failure_count == 3
    assert not any(
        call["messages"][-1]["content"] == "Fine" for call in fake.seen.calls[calls_before:]
    )


async def test_a_bad_key_stops_generation_early(session: AsyncSession, fake: FakeServer) -> None:
    project = await make_project(session)
    locked = [
        EndpointConfig(name="a", base_url=fake.base_url, model="needs-key", api_key="wrong"),
        EndpointConfig(name="b", base_url=fake.base_url, model="other", api_key=None),
    ]
    source = jsonl(*({"id": f"q{n}", "prompt": f"Question {n}"} for n in range(50)))
    report, _ = await generate(session, project, source, locked, max_failures=3, concurrency=1)
    assert report.stopped_early
    assert report.failures[0].problems[0] == "a: HTTP 401: Incorrect API key"
    # 401 is not retried, and calls stop soon after 3 prompts have failed (calls already
    # under way finish), far from the 50 the file has.
    assert 3 <= len([c for c in fake.seen.calls if c["model"] == "needs-key"]) <= 5


async def test_invalid_lines_are_reported_before_any_call(
    session: AsyncSession, fake: FakeServer
) -> None:
    project = await make_project(session)
    source = jsonl(
        {"id": "q1", "prompt": "ok"},
        {"prompt": "no id"},
        {"id": "q1", "prompt": "again"},
        {"id": "q3", "prompt": "gold", "gold": {"winner": "nobody"}},
        {"id": "q4", "messages": [{"role": "assistant", "content": "no user turn"}]},
    )
    report, out = await generate(session, project, source, endpoints(fake))
    problems = [(e.line, e.field) for e in report.invalid.kept]
    assert problems == [(2, "id"), (3, "id"), (4, "gold"), (5, "messages[0].role")]
    assert fake.seen.calls == [] and out.getvalue() == b""


async def test_gold_winner_may_name_an_endpoint(session: AsyncSession, fake: FakeServer) -> None:
    project = await make_project(session)
    source = jsonl({"id": "g", "prompt": "Check", "gold": {"winner": "large"}})
    report, out = await generate(session, project, source, endpoints(fake))
    assert report.generated == 1
    outcome = await import_stream(
        session, project, out, filename="g.jsonl", source="cli", user=None
    )
    assert outcome.pairs_new == 1


async def test_samples_give_several_answers_from_one_endpoint(
    session: AsyncSession, fake: FakeServer
) -> None:
    project = await make_project(session)
    [one] = endpoints(fake)[1:]
    with pytest.raises(ValueError, match="two answers"):
        await generate(session, project, jsonl({"id": "q", "prompt": "x"}), [one])
    report, out = await generate(
        session,
        project,
        jsonl({"id": "q", "prompt": "x"}, {"id": "s", "prompt": "x [same]"}),
        [one],
        samples=2,
    )
    [record] = [json.loads(line) for line in out]
    assert [r["id"] for r in record["responses"]] == ["large#1", "large#2"]
    assert {r["model"] for r in record["responses"]} == {"large"}
    [failure] = report.failures
    assert failure.prompt_id == "s"  # Two samples, one text: nothing to compare.
