"""One answer from an OpenAI-compatible `POST {base_url}/chat/completions`, with retries.

Timeouts, dropped connections, 408/409/425/429 and 5xx are retried with exponential backoff
and full jitter (a server's Retry-After is honoured, up to `max_delay`); other answers (a bad
key, an unknown model, a refused prompt) fail at once, since retrying would not change them.
"""

import asyncio
import json
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from pickwise.core.outbound import is_refused_address
from pickwise.models.generation import ENV_VAR_PATTERN

if TYPE_CHECKING:
    from pickwise.models import GenerationEndpoint

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
Sleep = Callable[[float], Awaitable[None]]


class MissingApiKey(Exception):
    def __init__(self, endpoint: str, variable: str, *, refused: bool = False) -> None:
        why = (
            "is refused: only variables whose name ends in _API_KEY are read"
            if refused
            else "(its API key) is not set"
        )
        super().__init__(f"endpoint {endpoint}: the environment variable {variable} {why}")


class GenerationFailed(Exception):
    """This endpoint gave no usable answer to this prompt."""


@dataclass(frozen=True)
class EndpointConfig:
    """An endpoint as the generator uses it, with its API key read from the environment."""

    name: str
    base_url: str
    model: str
    api_key: str | None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None

    @classmethod
    def from_endpoint(
        cls, endpoint: "GenerationEndpoint", environ: Mapping[str, str] = os.environ
    ) -> "EndpointConfig":
        api_key = None
        if endpoint.api_key_env:
            # The database refuses other names too; this guards rows from before that rule.
            if not re.fullmatch(ENV_VAR_PATTERN, endpoint.api_key_env):
                raise MissingApiKey(endpoint.name, endpoint.api_key_env, refused=True)
            api_key = environ.get(endpoint.api_key_env)
            if not api_key:
                raise MissingApiKey(endpoint.name, endpoint.api_key_env)
        return cls(
            name=endpoint.name,
            base_url=endpoint.base_url,
            model=endpoint.model,
            api_key=api_key,
            temperature=endpoint.temperature,
            top_p=endpoint.top_p,
            max_tokens=endpoint.max_tokens,
        )

    @property
    def sampling(self) -> dict[str, float | int]:
        """The sampling settings that were set (the server's defaults apply to the others)."""
        settings: dict[str, float | int | None] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
        }
        return {key: value for key, value in settings.items() if value is not None}

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0
    timeout: float = 120.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class Answer:
    content: str
    finish_reason: str | None
    served_model: str | None
    usage: dict[str, Any]
    attempts: int
    seconds: float


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None  # An HTTP date: rare for APIs; the normal backoff applies.


def error_text(content: bytes) -> str:
    """What an error answer's body says (its `error.message` when it has one), short."""
    try:
        body = json.loads(content)
    except ValueError:
        return content.decode(errors="replace")[:300]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])[:300]
    return str(body)[:300]


def _parse(body: Any) -> tuple[str, str | None, str | None, dict[str, Any]]:
    try:
        choice = body["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise GenerationFailed("the answer has no choices[0].message.content") from exc
    if not isinstance(content, str) or not content.strip():
        reason = choice.get("finish_reason") if isinstance(choice, dict) else None
        raise GenerationFailed(f"the answer is empty (finish_reason: {reason})")
    usage = body.get("usage")
    return (
        content,
        choice.get("finish_reason"),
        body.get("model"),
        usage if isinstance(usage, dict) else {},
    )


async def complete(
    http: httpx.AsyncClient,
    endpoint: EndpointConfig,
    messages: Sequence[Mapping[str, str]],
    policy: RetryPolicy,
    *,
    rng: random.Random | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Answer:
    rng = rng or random.Random()
    body = {"model": endpoint.model, "messages": list(messages), **endpoint.sampling}
    headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
    started = time.monotonic()
    problem = "no attempt was made"
    for attempt in range(1, policy.attempts + 1):
        retry_after = None
        try:
            response = await http.post(
                endpoint.url, json=body, headers=headers, timeout=policy.timeout
            )
        except httpx.TimeoutException:
            problem = f"no answer within {policy.timeout:g} s"
        except httpx.TransportError as exc:
            problem = f"connection failed ({type(exc).__name__}: {exc})"
            if is_refused_address(exc):
                raise GenerationFailed(problem) from exc  # Retrying would not change it.
        else:
            if response.status_code == 200:
                try:
                    parsed = response.json()
                except ValueError as exc:
                    raise GenerationFailed("the answer is not JSON") from exc
                content, finish_reason, served_model, usage = _parse(parsed)
                return Answer(
                    content=content,
                    finish_reason=finish_reason,
                    served_model=served_model,
                    usage=usage,
                    attempts=attempt,
                    seconds=round(time.monotonic() - started, 3),
                )
            problem = f"HTTP {response.status_code}: {error_text(response.content)}"
            if response.status_code not in RETRYABLE_STATUS:
                raise GenerationFailed(problem)
            retry_after = _retry_after(response)
        if attempt < policy.attempts:
            await sleep(policy.delay(attempt, retry_after, rng))
    raise GenerationFailed(f"{problem} (gave up after {policy.attempts} attempts)")
