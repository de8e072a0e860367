"""Prompt-only JSONL in, complete JSONL out: each prompt gets an answer from every endpoint.

Lines that already carry responses (`responses`, or `response_a`/`response_b`) are copied
as they are. A prompt-only line (`id` plus `prompt` or `messages`, optional `system`,
`metadata`, `gold`) gets one response per endpoint (and per sample), whose `model` is the
endpoint's name and whose metadata records the model and sampling settings. A prompt any of
whose calls failed is left out whole and listed, never written with some answers missing.
Prompts the project already has are skipped, so running the same file again only retries
the prompts that failed.

Two passes over the input, like the importer: the first checks every line before any money
is spent on calls, the second generates chunk by chunk (memory stays flat) and keeps the
input's order.
"""

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import httpx

from pickwise.batches.parsing.conversation import read_conversation
from pickwise.batches.parsing.fields import Problem, check_known_fields, read_id, read_object
from pickwise.batches.parsing.json_values import decode_json
from pickwise.batches.parsing.record_shapes import PROMPT_FIELDS
from pickwise.batches.parsing.report import ErrorLog, LineError
from pickwise.generation.chat import (
    Answer,
    EndpointConfig,
    GenerationFailed,
    RetryPolicy,
    complete,
)

# A record with any of these already has its responses and is copied unchanged.
RESPONSE_FIELDS = frozenset({"responses", "response_a", "response_b", "model_a", "model_b"})
CHUNK = 256
MAX_FAILURES_KEPT = 1000

KnownIds = Callable[[Sequence[str]], Awaitable[set[str]]]
"""Given prompt ids, returns those the project already has."""
Progress = Callable[[int, int], None]
"""Called with (prompts finished, prompts to generate)."""


@dataclass(frozen=True)
class GenerationOptions:
    concurrency: int = 8
    samples: int = 1
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    # Stop calling after this many failed prompts: a wrong key or URL fails them all.
    max_failures: int = 100

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.samples < 1 or self.max_failures < 1:
            raise ValueError("concurrency, samples and max_failures must be at least 1")


@dataclass(frozen=True)
class PromptFailure:
    line: int
    prompt_id: str
    problems: tuple[str, ...]


@dataclass
class GenerationReport:
    prompts_to_generate: int = 0
    generated: int = 0
    passed_through: int = 0
    already_in_project: int = 0
    answers: int = 0
    retries: int = 0
    failures: list[PromptFailure] = field(default_factory=list)
    failure_count: int = 0
    stopped_early: bool = False
    invalid: ErrorLog = field(default_factory=lambda: ErrorLog(100))

    @property
    def written(self) -> int:
        """Records in the output, ready to import."""
        return self.generated + self.passed_through

    def add_failure(self, failure: PromptFailure) -> None:
        self.failure_count += 1
        if len(self.failures) < MAX_FAILURES_KEPT:
            self.failures.append(failure)


Plan = list[tuple[EndpointConfig, str]]


def answer_plan(endpoints: Sequence[EndpointConfig], samples: int) -> Plan:
    """(endpoint, response id) of each answer a prompt gets."""
    if samples == 1:
        return [(endpoint, endpoint.name) for endpoint in endpoints]
    return [
        (endpoint, f"{endpoint.name}#{n}") for endpoint in endpoints for n in range(1, samples + 1)
    ]


@dataclass(frozen=True)
class _Line:
    line_no: int
    raw: bytes
    record: dict[str, Any] | None
    # Set for prompt-only records: the messages to send.
    prompt_id: str | None = None
    messages: tuple[dict[str, str], ...] = ()


def _lines(source: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    for line_no, raw in enumerate(source, start=1):
        if raw.strip():
            yield line_no, raw


def _decode(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "is not valid UTF-8 text"
    value, problem = decode_json(text)
    if problem is not None:
        return None, problem
    if not isinstance(value, dict):
        return None, "must be a JSON object ({...})"
    return value, None


def _check_prompt(record: dict[str, Any], answer_ids: Sequence[str]) -> list[Problem]:
    problems: list[Problem] = []
    check_known_fields(record, PROMPT_FIELDS, "", problems)
    read_id(record, "id", "", problems, required=True)
    read_conversation(record, problems)
    read_object(record, "metadata", "", problems)
    gold = record.get("gold")
    if gold is not None and (not isinstance(gold, dict) or gold.get("winner") not in answer_ids):
        listing = ", ".join(f'"{answer_id}"' for answer_id in answer_ids)
        problems.append(("gold", f'must be {{"winner": <one of {listing}>}}'))
    return problems


def count_prompt_only(source: IO[bytes], stop_after: int) -> int:
    """Lines that are JSON objects without responses, counting no further than `stop_after`.

    Reads from the current position; lines that are not JSON objects are left to the
    importer's checks."""
    count = 0
    for _, raw in _lines(source):
        record, _ = _decode(raw)
        if record is not None and RESPONSE_FIELDS.isdisjoint(record):
            count += 1
            if count >= stop_after:
                break
    return count


def _validate(source: IO[bytes], answer_ids: Sequence[str], report: GenerationReport) -> None:
    first_line_of: dict[str, int] = {}
    for line_no, raw in _lines(source):
        record, problem = _decode(raw)
        if record is None:
            report.invalid.add(LineError(line_no, None, problem or "cannot be read"))
            continue
        if RESPONSE_FIELDS.isdisjoint(record):
            problems = _check_prompt(record, answer_ids)
            for path, message in problems:
                report.invalid.add(LineError(line_no, path, message))
            if problems:
                continue
            report.prompts_to_generate += 1
        record_id = record.get("id")
        if isinstance(record_id, str | int) and not isinstance(record_id, bool):
            earlier = first_line_of.setdefault(str(record_id), line_no)
            if earlier != line_no:
                report.invalid.add(LineError(line_no, "id", f"is already used on line {earlier}"))


def _messages(record: dict[str, Any]) -> tuple[str, tuple[dict[str, str], ...]]:
    problems: list[Problem] = []
    prompt_id = read_id(record, "id", "", problems, required=True)
    conversation = read_conversation(record, problems)
    assert prompt_id is not None and conversation is not None, "validated in the first pass"
    system, turns = conversation
    messages = [{"role": "system", "content": system}] if system is not None else []
    messages += [{"role": turn.role, "content": turn.content} for turn in turns]
    return prompt_id, tuple(messages)


def _read_chunk(lines: Iterator[tuple[int, bytes]]) -> list[_Line]:
    chunk = []
    for line_no, raw in lines:
        record, _ = _decode(raw)
        assert record is not None, "validated in the first pass"
        if RESPONSE_FIELDS.isdisjoint(record):
            prompt_id, messages = _messages(record)
            chunk.append(_Line(line_no, raw, record, prompt_id, messages))
        else:
            chunk.append(_Line(line_no, raw, None))
        if len(chunk) == CHUNK:
            break
    return chunk


def _response(endpoint: EndpointConfig, response_id: str, answer: Answer) -> dict[str, Any]:
    generation: dict[str, Any] = {
        "endpoint": endpoint.name,
        "model": endpoint.model,
        "base_url": endpoint.base_url,
        "settings": endpoint.sampling,
        "served_model": answer.served_model,
        "finish_reason": answer.finish_reason,
    }
    if answer.usage:
        generation["usage"] = answer.usage
    return {
        "id": response_id,
        "model": endpoint.name,
        "content": answer.content,
        "metadata": {"generation": generation},
    }


class _Generator:
    def __init__(
        self,
        endpoints: Sequence[EndpointConfig],
        http: httpx.AsyncClient,
        options: GenerationOptions,
        report: GenerationReport,
        rng: random.Random,
    ) -> None:
        self.http, self.options, self.report, self.rng = http, options, report, rng
        self.calls = asyncio.Semaphore(options.concurrency)
        self.plan = answer_plan(endpoints, options.samples)
        self.answer_ids = [response_id for _, response_id in self.plan]

    async def _call(
        self, endpoint: EndpointConfig, messages: Sequence[dict[str, str]]
    ) -> Answer | str:
        async with self.calls:
            if self.report.failure_count >= self.options.max_failures:
                return "not tried: too many prompts failed already"
            try:
                answer = await complete(
                    self.http, endpoint, messages, self.options.policy, rng=self.rng
                )
            except GenerationFailed as exc:
                return str(exc)
        self.report.retries += answer.attempts - 1
        return answer

    async def answer(self, line: _Line) -> dict[str, Any] | PromptFailure:
        """The complete record, or why the prompt is left out."""
        assert line.record is not None and line.prompt_id is not None
        plan = self.plan
        outcomes = await asyncio.gather(
            *(self._call(endpoint, line.messages) for endpoint, _ in plan)
        )
        problems = [
            f"{response_id}: {outcome}"
            for (_, response_id), outcome in zip(plan, outcomes, strict=True)
            if isinstance(outcome, str)
        ]
        if problems:
            return PromptFailure(line.line_no, line.prompt_id, tuple(problems))
        responses, seen = [], set()
        for (endpoint, response_id), outcome in zip(plan, outcomes, strict=True):
            assert isinstance(outcome, Answer)
            # Identical answers cannot be compared; the importer would refuse the record.
            if outcome.content.strip() not in seen:
                seen.add(outcome.content.strip())
                responses.append(_response(endpoint, response_id, outcome))
        gold = line.record.get("gold")
        kept_ids = {response["id"] for response in responses}
        if len(responses) < 2 or (isinstance(gold, dict) and gold["winner"] not in kept_ids):
            return PromptFailure(
                line.line_no,
                line.prompt_id,
                ("the endpoints gave fewer than two different answers",),
            )
        return {**line.record, "responses": responses}


async def generate_jsonl(
    source: IO[bytes],
    out: IO[bytes],
    endpoints: Sequence[EndpointConfig],
    *,
    known_ids: KnownIds,
    http: httpx.AsyncClient,
    options: GenerationOptions | None = None,
    progress: Progress | None = None,
    rng: random.Random | None = None,
) -> GenerationReport:
    """Writes complete records to `out`; nothing when a line of `source` is invalid (see
    `report.invalid`). `source` must be seekable: it is read twice."""
    options = options or GenerationOptions()
    if len(answer_plan(endpoints, options.samples)) < 2:
        raise ValueError("two answers per prompt are needed: add an endpoint or more samples")
    report = GenerationReport()
    generator = _Generator(endpoints, http, options, report, rng or random.Random())
    await asyncio.to_thread(_validate, source, generator.answer_ids, report)
    if report.invalid.count:
        return report
    source.seek(0)
    lines = _lines(source)
    finished = 0
    if progress:
        progress(finished, report.prompts_to_generate)
    while chunk := await asyncio.to_thread(_read_chunk, lines):
        prompt_ids = [line.prompt_id for line in chunk if line.prompt_id is not None]
        known = await known_ids(prompt_ids) if prompt_ids else set()

        async def settle(line: _Line, known: set[str]) -> dict[str, Any] | PromptFailure | None:
            nonlocal finished
            try:
                if line.prompt_id in known:
                    return None
                outcome = await generator.answer(line)
                if isinstance(outcome, PromptFailure):
                    # Counted at once, so the remaining calls see when to stop.
                    report.add_failure(outcome)
                return outcome
            finally:
                finished += 1
                if progress:
                    progress(finished, report.prompts_to_generate)

        prompts = [line for line in chunk if line.prompt_id is not None]
        outcomes = await asyncio.gather(*(settle(line, known) for line in prompts))
        outcome_of = {
            line.line_no: outcome for line, outcome in zip(prompts, outcomes, strict=True)
        }
        for line in chunk:
            if line.prompt_id is None:
                out.write(line.raw if line.raw.endswith(b"\n") else line.raw + b"\n")
                report.passed_through += 1
                continue
            outcome = outcome_of[line.line_no]
            if outcome is None:
                report.already_in_project += 1
            elif isinstance(outcome, dict):
                out.write(json.dumps(outcome, ensure_ascii=False).encode("utf-8") + b"\n")
                report.generated += 1
                report.answers += len(outcome["responses"])
        if report.failure_count >= options.max_failures:
            report.stopped_early = True
            break
    out.flush()
    report.failures.sort(key=lambda failure: failure.line)
    return report
