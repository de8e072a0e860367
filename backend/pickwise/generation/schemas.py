from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pickwise.models.generation import ENDPOINT_NAME_PATTERN, ENV_VAR_PATTERN

BASE_URL_PATTERN = r"^https?://\S+$"


class EndpointSettings(BaseModel):
    base_url: str = Field(
        max_length=2000,
        pattern=BASE_URL_PATTERN,
        description="Up to and including /v1, e.g. https://api.openai.com/v1.",
    )
    model: str = Field(min_length=1, max_length=200, description="The model the server runs.")
    api_key_env: str | None = Field(
        None,
        pattern=ENV_VAR_PATTERN,
        description="Name of the environment variable holding the API key, ending in "
        "`_API_KEY` (the key itself is never stored); empty for servers without keys.",
    )
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)


class EndpointCreate(EndpointSettings):
    name: str | None = Field(
        None,
        pattern=ENDPOINT_NAME_PATTERN,
        description="Model name of the answers in this project; defaults to `model`.",
    )


class EndpointUpdate(BaseModel):
    """Only the fields sent are changed; send null to clear an optional one."""

    base_url: str | None = Field(None, max_length=2000, pattern=BASE_URL_PATTERN)
    model: str | None = Field(None, min_length=1, max_length=200)
    api_key_env: str | None = Field(None, pattern=ENV_VAR_PATTERN)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    is_active: bool | None = None


class EndpointRead(EndpointSettings):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    name: str
    is_active: bool
    created_at: datetime
