from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pickwise.users.email import Email
from pickwise.vocabulary import AccountRole


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    expires_days: int | None = Field(None, ge=1, le=3650)


class TokenCreated(BaseModel):
    id: int
    name: str
    token: str = Field(description="Shown once; only its hash is stored.")
    expires_at: datetime | None


class TokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class InviteCreate(BaseModel):
    email: Email
    role: AccountRole = AccountRole.RATER
    project_id: int | None = None
    valid_days: int = Field(7, ge=1, le=90)


class InviteCreated(BaseModel):
    id: int
    email: str
    url: str
    expires_at: datetime


class PendingInvite(BaseModel):
    """An invite not yet used, withdrawn or expired."""

    id: int
    email: str
    role: AccountRole
    project_id: int | None
    expires_at: datetime
    url: str | None = Field(
        description="The link to send again; null for an invite whose link was shown only once "
        "(made before links could be shown again, or before the secret key changed)."
    )
