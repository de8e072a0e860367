"""OpenAI-compatible chat endpoints a project asks for answers to prompt-only batches."""

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pickwise.models.base import Base, IdMixin, TimestampMixin

ENDPOINT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,99}$"
# Only variables named *_API_KEY: the server sends the value to the endpoint's URL, so a free
# choice would let an admin send SECRET_KEY or DATABASE_URL to a host of their choosing.
ENV_VAR_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,91}_API_KEY$"


class GenerationEndpoint(IdMixin, TimestampMixin, Base):
    __tablename__ = "generation_endpoints"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        CheckConstraint(f"name ~ '{ENDPOINT_NAME_PATTERN}'", name="name_format"),
        CheckConstraint("base_url ~ '^https?://'", name="base_url_http"),
        CheckConstraint(
            f"api_key_env IS NULL OR api_key_env ~ '{ENV_VAR_PATTERN}'", name="api_key_env_format"
        ),
        CheckConstraint(
            "temperature IS NULL OR (temperature >= 0 AND temperature <= 2)",
            name="temperature_range",
        ),
        CheckConstraint("top_p IS NULL OR (top_p > 0 AND top_p <= 1)", name="top_p_range"),
        CheckConstraint(
            "max_tokens IS NULL OR max_tokens BETWEEN 1 AND 1000000", name="max_tokens_range"
        ),
    )

    project_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    # The answers' model name in the project (and their response id): unique per project.
    name: Mapped[str] = mapped_column(String(100))
    base_url: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(200))
    # The name of an environment variable holding the API key; the key is never stored.
    api_key_env: Mapped[str | None] = mapped_column(String(100))
    temperature: Mapped[float | None] = mapped_column()
    top_p: Mapped[float | None] = mapped_column()
    max_tokens: Mapped[int | None] = mapped_column()
    is_active: Mapped[bool] = mapped_column(default=True)
