"""All configuration comes from the environment; production refuses unsafe defaults."""

import pytest
from pydantic import ValidationError

from pickwise.core.config import DEFAULT_SECRET, Settings


def production(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    monkeypatch.setenv("ENVIRONMENT", "production")
    for name in ("SECRET_KEY", "COOKIE_SECURE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_production_refuses_the_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        production(monkeypatch)
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        production(monkeypatch, SECRET_KEY=DEFAULT_SECRET)


def test_production_refuses_insecure_cookies(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="COOKIE_SECURE"):
        production(monkeypatch, SECRET_KEY="s3cret-from-the-vault", COOKIE_SECURE="false")


def test_production_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = production(
        monkeypatch,
        SECRET_KEY="s3cret-from-the-vault",
        DATABASE_URL="postgresql+psycopg://app:pw@db:5432/pickwise",
        READ_DATABASE_URL="postgresql+psycopg://app:pw@replica:5432/pickwise",
        DB_POOL_SIZE="20",
    )
    assert settings.secure_cookies is True
    assert settings.secret_key.get_secret_value() == "s3cret-from-the-vault"
    assert "s3cret" not in repr(settings)
    assert settings.database_url == "postgresql+psycopg://app:pw@db:5432/pickwise"
    assert settings.read_database_url == "postgresql+psycopg://app:pw@replica:5432/pickwise"
    assert settings.db_pool_size == 20


def test_development_allows_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("COOKIE_SECURE", raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.secure_cookies is False
