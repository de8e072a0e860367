from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, MetaData, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dict[str, Any]: JSONB,
        list[Any]: JSONB,
        datetime: DateTime(timezone=True),
    }


class IdMixin:
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


def one_of(column: str, values: Iterable[str], *, nullable: bool = False) -> str:
    """A CHECK constraint's text: `column` holds one of `values` (a vocabulary), or NULL."""
    quoted = ", ".join(f"'{value}'" for value in values)
    allowed = f"{column} IN ({quoted})"
    return f"{column} IS NULL OR {allowed}" if nullable else allowed


def apply_changes(
    row: object, changes: Mapping[str, Any], *, required: Collection[str] = ()
) -> None:
    """Sets the fields a PATCH sent on `row`; None for a `required` column leaves it as is."""
    for field, value in changes.items():
        if value is None and field in required:
            continue
        setattr(row, field, value)
