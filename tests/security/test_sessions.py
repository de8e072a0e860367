"""Session cookies and login throttling, beyond tests/auth: the cookie's flags under https
and in production, and a throttle that spelling variants of an address cannot get around."""

from collections.abc import Iterator

import pytest
from httpx import AsyncClient
from pydantic import SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.auth.deps import SESSION_COOKIE
from pickwise.auth.service import MAX_FAILURES
from pickwise.core import clock
from pickwise.core.config import Settings, get_settings
from tests.factories import PASSWORD, make_user


@pytest.fixture(autouse=True)
def reset_clock() -> Iterator[None]:
    clock.reset()
    yield
    clock.reset()


async def log_in(client: AsyncClient, email: str, password: str = PASSWORD) -> int:
    response = await client.post("/login", data={"email": email, "password": password})
    return response.status_code


def cookie_attributes(set_cookie: str) -> dict[str, str]:
    parts = [part.strip() for part in set_cookie.split(";")]
    return {name.lower(): value for name, _, value in (p.partition("=") for p in parts[1:])}


async def test_session_cookie_is_secure_httponly_and_samesite_under_https(
    client: AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "cookie_secure", True)
    user = await make_user(session, password=PASSWORD)
    response = await client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 303
    (cookie,) = [c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)]
    attributes = cookie_attributes(cookie)
    assert {"secure", "httponly"} <= attributes.keys()
    assert attributes["samesite"] == "lax" and attributes["path"] == "/"


def test_production_settings_make_cookies_secure_and_refuse_to_turn_that_off() -> None:
    secret = SecretStr("a-real-secret-" + "x" * 32)
    assert Settings(environment="production", secret_key=secret).secure_cookies
    assert not Settings(environment="development").secure_cookies
    with pytest.raises(ValidationError, match="COOKIE_SECURE"):
        Settings(environment="production", secret_key=secret, cookie_secure=False)
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(environment="production")


async def test_spelling_variants_of_an_address_share_one_failure_count(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, password=PASSWORD)
    variants = [user.email, user.email.upper(), f"  {user.email} ", user.email.title()]
    for attempt in range(MAX_FAILURES):
        assert await log_in(client, variants[attempt % len(variants)], "wrong-password") == 401
    assert await log_in(client, user.email) == 429
    assert await log_in(client, user.email.upper()) == 429
    # Another account is not locked by this one's failures.
    bystander = await make_user(session, password=PASSWORD)
    assert await log_in(client, bystander.email) == 303


async def test_unknown_addresses_are_throttled_like_real_ones(
    client: AsyncClient, session: AsyncSession
) -> None:
    """Otherwise the throttle itself would tell which addresses have accounts."""
    user = await make_user(session, password=PASSWORD)
    answers = {}
    for email in (user.email, "nobody-here@example.org"):
        for _ in range(MAX_FAILURES):
            assert await log_in(client, email, "wrong-password") == 401
        answers[email] = await client.post("/login", data={"email": email, "password": "x"})
    real, unknown = answers.values()
    assert real.status_code == unknown.status_code == 429
    assert "Too many failed logins" in real.text and "Too many failed logins" in unknown.text


@pytest.mark.parametrize(
    "next_url",
    [
        "//evil.example/",
        "/\\evil.example/",
        "/\t/evil.example/",
        "\\\\evil.example/",
        "https://evil.example/",
        "javascript:alert(1)",
        " //evil.example/",
    ],
)
async def test_login_never_redirects_off_site(
    client: AsyncClient, session: AsyncSession, next_url: str
) -> None:
    """Browsers read a backslash as a slash and drop tabs, so "/\\evil" is "//evil"."""
    user = await make_user(session, password=PASSWORD)
    response = await client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "next": next_url}
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/") and location[1:2] not in ("/", "\\"), location
    assert not any(character in location for character in "\\\t\n\r "), location
