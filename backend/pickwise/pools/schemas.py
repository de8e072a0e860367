from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

COMPLETION_URL_PATTERN = r"^https?://\S+$"


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip() or None


def _stripped_name(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


class PoolSettings(BaseModel):
    quota: int = Field(
        ge=1, le=100_000, description="Judgments each participant gives before they are done."
    )
    completion_code: str | None = Field(
        None, max_length=200, description="Shown on the completion page (e.g. Prolific's code)."
    )
    completion_url: str | None = Field(
        None,
        max_length=2000,
        pattern=COMPLETION_URL_PATTERN,
        description="Where the completion page sends participants back to, if anywhere.",
    )
    max_participants: int | None = Field(
        None, ge=1, description="Refuse new participants past this many; empty = no limit."
    )

    _clean = field_validator("completion_code", "completion_url", mode="before")(_blank_to_none)


class PoolCreate(PoolSettings):
    name: str = Field(min_length=1, max_length=200)

    _name = field_validator("name")(_stripped_name)


class PoolUpdate(BaseModel):
    """Only the fields sent are changed; send null to clear the optional ones."""

    name: str | None = Field(None, min_length=1, max_length=200)
    quota: int | None = Field(None, ge=1, le=100_000)
    completion_code: str | None = Field(None, max_length=200)
    completion_url: str | None = Field(None, max_length=2000, pattern=COMPLETION_URL_PATTERN)
    max_participants: int | None = Field(None, ge=1)
    is_active: bool | None = None

    _clean = field_validator("completion_code", "completion_url", mode="before")(_blank_to_none)
    _name = field_validator("name")(_stripped_name)


class PoolRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    name: str
    token_prefix: str = Field(description="The start of the link's token, to tell links apart.")
    quota: int
    completion_code: str | None
    completion_url: str | None
    max_participants: int | None
    is_active: bool
    created_at: datetime
    participants: int = 0
    completed: int = 0


class PoolLink(BaseModel):
    """The entry link: shown once (only its hash is stored); rotate to get a new one."""

    pool: PoolRead
    entry_url: str = Field(description="Append ?PROLIFIC_PID=… or ?participant_id=….")
    prolific_url: str = Field(description="The link to paste into a Prolific study.")


class ParticipantRead(BaseModel):
    user_id: int
    external_id: str
    display_name: str
    pseudonym: str
    judgments: int
    quota: int
    completed_at: datetime | None
    excluded: bool
    joined_at: datetime
