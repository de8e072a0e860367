from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from pickwise.models.base import Base, IdMixin, TimestampMixin, one_of
from pickwise.vocabulary import AccountRole


class User(IdMixin, TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(one_of("role", AccountRole), name="role"),
        CheckConstraint("length(trim(display_name)) > 0", name="display_name_not_blank"),
    )

    email: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default=AccountRole.RATER)
    password_hash: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(default=True)
    # Stable pseudonym for exports: never the email.
    pseudonym: Mapped[str] = mapped_column(String(32), unique=True)

    @property
    def is_admin(self) -> bool:
        return self.role == AccountRole.ADMIN


# Case-insensitive uniqueness: "Ann@x.org" and "ann@x.org" are one account.
Index("uq_users_email_lower", func.lower(User.email), unique=True)


class UserSession(IdMixin, TimestampMixin, Base):
    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]


class ApiToken(IdMixin, TimestampMixin, Base):
    __tablename__ = "api_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]


class Invite(IdMixin, TimestampMixin, Base):
    __tablename__ = "invites"
    __table_args__ = (CheckConstraint(one_of("role", AccountRole), name="role"),)

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16), default=AccountRole.RATER)
    project_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="CASCADE")
    )
    created_by_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    # The link's token is drawn from this and the app's secret key (core.security), so an
    # admin can copy the link again later; the database alone cannot rebuild it. NULL for
    # invites made before: their link was shown once.
    token_nonce: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None]


class LoginFailure(IdMixin, Base):
    """Failed logins per email, to slow down password guessing."""

    __tablename__ = "login_failures"

    email: Mapped[str] = mapped_column(String(320), index=True)
    failed_at: Mapped[datetime] = mapped_column(server_default=func.now())
