"""Idempotency keys for mutations that move points, stock or money (and any other that opts in).

The record is written in the same transaction as the effect it guards:
- the first request with a key inserts the record, runs the action and stores its result;
- a concurrent request with the same key blocks on the uncommitted row (PostgreSQL's unique
  check waits for the inserting transaction), then replays the committed result;
- the same key with a different input is refused with IDEMPOTENCY_KEY_REUSED;
- if the action fails, the transaction rolls back with the record, so nothing is remembered
  and the client may retry."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Awaitable, Callable

import orjson
from sqlalchemy import String, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import Clock
from core.db import Base
from core.errors import DomainError

MAX_KEY_LENGTH = 200


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"

    # principal first: records shard with the account that made them
    principal: Mapped[str] = mapped_column(String(80), primary_key=True)
    operation: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    result: Mapped[dict | None] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False)


class IdempotencyKeyReused(DomainError):
    code = "IDEMPOTENCY_KEY_REUSED"


def fingerprint(request: Any) -> str:
    """sha256 of the canonical JSON of the request (sorted keys, no whitespace)."""
    canonical = orjson.dumps(request, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(canonical).hexdigest()


def check_key(key: str, field: str = "idempotencyKey") -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise DomainError(
            "INVALID", f"The idempotency key must be 1 to {MAX_KEY_LENGTH} characters.", field=field
        )
    return key


async def run_idempotent(
    *,
    session: AsyncSession,
    clock: Clock,
    principal: str,
    operation: str,
    key: str,
    request: Any,
    action: Callable[[], Awaitable[dict]],
) -> tuple[dict, bool]:
    """Run `action` once per (principal, operation, key). Returns (result, replayed).

    Must run inside the transaction that `action` writes in; the caller commits."""
    key = check_key(key)
    print_ = fingerprint(request)
    inserted = (
        await session.execute(
            insert(IdempotencyRecord)
            .values(
                principal=principal,
                operation=operation,
                key=key,
                fingerprint=print_,
                created_at=clock.now(),
            )
            .on_conflict_do_nothing()
            .returning(IdempotencyRecord.key)
        )
    ).scalar_one_or_none()
    if inserted is None:
        record = (
            await session.execute(
                select(IdempotencyRecord.fingerprint, IdempotencyRecord.result).where(
                    IdempotencyRecord.principal == principal,
                    IdempotencyRecord.operation == operation,
                    IdempotencyRecord.key == key,
                )
            )
        ).one()
        if record.fingerprint != print_:
            raise IdempotencyKeyReused(
                message="This idempotency key was already used with a different input.",
                field="idempotencyKey",
            )
        return record.result or {}, True
    result = await action()
    await session.execute(
        IdempotencyRecord.__table__.update()
        .where(
            IdempotencyRecord.principal == principal,
            IdempotencyRecord.operation == operation,
            IdempotencyRecord.key == key,
        )
        .values(result=result)
    )
    return result, False
