"""Declarative base and column helpers shared by every domain's models, and `get_row`: a row by its
primary key, optionally locked, or NotFound."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, MetaData, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.errors import NotFound

T = TypeVar("T")

# Stable constraint names so Alembic migrations are deterministic.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}


def in_enum(column: str, enum_cls: type[enum.Enum]) -> str:
    """The CHECK condition that `column` holds one of the enum's values."""
    return f"{column} IN ({', '.join(repr(m.value) for m in enum_cls)})"


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, default=new_id)


def created_at_column() -> Mapped[datetime]:
    # Set by the clock of the service call; the server default only covers raw inserts.
    return mapped_column(nullable=False, server_default=func.now())


async def get_row(session: AsyncSession, model: type[T], row_id: Any, *, lock: bool = False, message: str,
                  field: str) -> T:
    """The row of `model` with this primary key, or NotFound(message, field). With `lock`, it is
    read afresh from the database FOR UPDATE (never the session's stale copy) and locked to commit."""
    row = await session.get(model, row_id, with_for_update=True if lock else None, populate_existing=lock)
    if row is None:
        raise NotFound(message=message, field=field)
    return row
