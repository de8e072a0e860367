"""The loopback OpenAI-compatible server, with short retry waits for the upload paths."""

from collections.abc import Iterator

import pytest

from pickwise.generation import uploads
from pickwise.generation.chat import RetryPolicy
from tests.generation.fake_openai import FakeServer, fake_openai


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setattr(
        uploads, "POLICY", RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, timeout=10)
    )
    with fake_openai() as server:
        yield server
