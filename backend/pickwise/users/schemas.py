from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pickwise.users.email import Email
from pickwise.vocabulary import AccountRole


class UserCreate(BaseModel):
    email: Email
    display_name: str = Field(min_length=1, max_length=200)
    role: AccountRole = AccountRole.RATER
    password: str = Field(min_length=8, max_length=1000)
    project_ids: list[int] = Field(default_factory=list)


class UserUpdate(BaseModel):
    """Only the fields sent are changed."""

    is_active: bool | None = Field(
        None,
        description="false deactivates the account: it can no longer log in or use its API "
        "tokens, its leases end at once and their pairs go back to the pool.",
    )


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    display_name: str
    role: str
    is_active: bool
    pseudonym: str
    created_at: datetime
