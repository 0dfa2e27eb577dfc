"""Keyset (seek) pagination: stable opaque cursors over an ordered, unique key.

A page is fetched with `WHERE (k1, k2, ...) > (:v1, :v2, ...) ORDER BY k1, k2, ... LIMIT first+1`,
so it costs the same on page 1 and page 10,000 and never skips or repeats rows when new rows
arrive. The last key column must be unique (usually the id)."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, Sequence, TypeVar

import orjson
from sqlalchemy import Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import CoreCode, DomainError

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20

T = TypeVar("T")


class InvalidCursor(DomainError):
    code = CoreCode.INVALID_CURSOR.value


@dataclass(frozen=True)
class PageItem(Generic[T]):
    cursor: str
    node: T


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[PageItem[T]]
    has_next_page: bool
    has_previous_page: bool

    @property
    def end_cursor(self) -> str | None:
        return self.items[-1].cursor if self.items else None

    @property
    def start_cursor(self) -> str | None:
        return self.items[0].cursor if self.items else None


def _tag(value: Any) -> Any:
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, date):
        return ["d", value.isoformat()]
    if isinstance(value, uuid.UUID):
        return ["u", str(value)]
    if isinstance(value, bool) or value is None:
        raise TypeError("cursor keys must not be bool or null")
    if isinstance(value, (int, str)):
        return value
    raise TypeError(f"unsupported cursor key type {type(value).__name__}")


def _untag(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 2:
        kind, text = value
        if kind == "t":
            return datetime.fromisoformat(text)
        if kind == "d":
            return date.fromisoformat(text)
        if kind == "u":
            return uuid.UUID(text)
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        return value
    raise ValueError("bad cursor value")


def encode_cursor(keys: Sequence[Any]) -> str:
    raw = orjson.dumps([_tag(k) for k in keys])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _fits(value: Any, column: Any) -> bool:
    """Whether a decoded cursor value can be compared with the key column: a crafted cursor
    with the right width but the wrong types must be the client's error, not a database one."""
    column_type = getattr(column, "type", None)
    try:
        expected = column_type.python_type if column_type is not None else None
    except NotImplementedError:
        return True
    if expected is datetime:
        aware = value.tzinfo is not None if isinstance(value, datetime) else None
        return isinstance(value, datetime) and aware == bool(getattr(column_type, "timezone", False))
    if expected is date:
        return isinstance(value, date) and not isinstance(value, datetime)
    if expected is uuid.UUID:
        return isinstance(value, uuid.UUID)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
    if expected is str:
        return isinstance(value, str) and "\x00" not in value
    return expected is None or isinstance(value, expected)


def decode_cursor(cursor: str, width: int, columns: Sequence[Any] | None = None) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != width:
            raise ValueError("width")
        decoded = [_untag(v) for v in values]
        if columns is not None and not all(_fits(v, c) for v, c in zip(decoded, columns)):
            raise ValueError("types")
        return decoded
    except Exception as exc:  # any malformed cursor is the client's error
        raise InvalidCursor(message="The cursor is not valid for this list.", field="after") from exc


def check_page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if first < 1 or first > MAX_PAGE_SIZE:
        raise DomainError(
            CoreCode.INVALID_PAGE_SIZE, f"first must be between 1 and {MAX_PAGE_SIZE}.", field="first"
        )
    return first


async def keyset_page(
    session: AsyncSession,
    stmt: Select,
    *,
    keys: Sequence[Any],
    first: int | None,
    after: str | None,
    descending: bool = False,
    node=lambda row: row,
) -> Page:
    """Run `stmt` (a select of one entity or row) ordered by `keys`, one page at a time.

    `keys` are column expressions; the row's key values are read back from the selected entity
    by the columns' attribute names (`key.key`)."""
    size = check_page_size(first)
    if after is not None:
        values = decode_cursor(after, len(keys), keys)
        row_key = tuple_(*keys)
        stmt = stmt.where(row_key < tuple_(*values) if descending else row_key > tuple_(*values))
    order = [k.desc() for k in keys] if descending else list(keys)
    rows = (await session.execute(stmt.order_by(*order).limit(size + 1))).all()
    more = len(rows) > size
    items = []
    for row in rows[:size]:
        entity = row[0] if len(row) == 1 else row
        key_values = [getattr(entity, k.key) for k in keys]
        items.append(PageItem(cursor=encode_cursor(key_values), node=node(entity)))
    return Page(items=items, has_next_page=more, has_previous_page=after is not None)
