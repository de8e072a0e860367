from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "dev-only-insecure-secret-change-me"


class Settings(BaseSettings):
    """Every setting of the app, the commands and the migrations, read from the environment,
    then from `.env` in the working folder, then the defaults here (docs/deploy.md)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    # Unset means: start the embedded Postgres kept in data_dir.
    database_url: str | None = None
    read_database_url: str | None = None
    # Where each app process LISTENs for background work (core.wakeups); unset: the database
    # itself. Must reach Postgres directly: a pooler in transaction mode drops notifications.
    listen_database_url: str | None = None
    pickwise_data_dir: Path = Path(".pickwise")
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET)
    host: str = "127.0.0.1"
    port: int = 8000
    session_days: int = 14
    cookie_secure: bool | None = None
    # Connections per worker. Size the pool to the requests a worker has in flight: the
    # overflow is opened and closed request by request while load hovers above the pool,
    # and every new connection is a new Postgres backend (at 16 raters a pool of 10 doubled
    # Postgres's CPU per judgment; see docs/benchmarks.md).
    db_pool_size: int = 20
    db_max_overflow: int = 10
    # Requests fail fast instead of hanging when Postgres is down.
    db_connect_timeout: int = 3
    db_pool_timeout: float = 5.0
    # Requests in flight per process before new ones get a fast 503 (0 = no limit).
    max_requests_in_flight: int = 100
    import_max_line_bytes: int = 1_000_000
    import_max_file_bytes: int = 2_000_000_000
    exports_dir: Path = Path("exports")
    # Prompts without responses one API upload may have answered by the project's endpoints
    # within the request (more: `pickwise generate`); 0 refuses such uploads.
    generation_max_prompts_per_upload: int = 100
    # Live conversations: replies being written at once per process (more get a fast 503),
    # and the longest one reply may take, from the request to its last token.
    conversation_replies_in_flight: int = 1000
    conversation_reply_seconds: float = 300.0
    # Connections per worker for storing finished replies and checking stop flags, apart
    # from the requests' pool (core/db.py, get_generation_engine).
    generation_pool_size: int = 3
    # Conversation requests using the database at once per process; more wait their turn,
    # so a burst of them leaves the rest of the pool to other requests.
    conversation_database_slots: int = 10
    # May webhooks and chat endpoints point at loopback, private or link-local addresses?
    # Unset: yes outside production (Ollama on localhost), no in production (SSRF).
    outbound_allow_private: bool | None = Field(
        None,
        validation_alias=AliasChoices("PICKWISE_OUTBOUND_ALLOW_PRIVATE", "outbound_allow_private"),
    )

    @model_validator(mode="after")
    def _refuse_defaults_in_production(self) -> "Settings":
        if self.environment == "production":
            if self.secret_key.get_secret_value() == DEFAULT_SECRET:
                raise ValueError("SECRET_KEY must be set to a non-default value in production")
            if self.cookie_secure is False:
                raise ValueError("COOKIE_SECURE=false is refused in production")
        return self

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.environment == "production"


@lru_cache
def get_settings() -> Settings:
    return Settings()
