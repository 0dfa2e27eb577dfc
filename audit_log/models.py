"""The audit log's one table (art. 30-31). Append-only: a database trigger refuses UPDATE, DELETE
and TRUNCATE (migration 0024); `seq` numbers the entries without gaps and `hash` chains each to the
one before (audit_log.chain), so tampering by someone able to drop the trigger is still detected."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, new_id


class AuditEvent(Base):
    """Who did what to whom, with the public facts before and after; no contact data anywhere."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_at", "at", "id"),
        UniqueConstraint("seq", name="uq_audit_events_seq"),
        CheckConstraint("seq >= 1", name="seq_positive"),
        CheckConstraint("length(hash) = 64 AND length(prev_hash) = 64", name="hashes_sha256"),
        Index("ix_audit_events_actor_seq", "actor_account_id", "seq"),
        Index("ix_audit_events_subject_seq", "subject_type", "subject_id", "seq"),
        Index("ix_audit_events_action_seq", "action", "seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # 1, 2, 3... in commit order, no gaps (given under the chain's lock)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    actor_account_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    # the actor's active roles when they acted (empty for entries written before the chain existed)
    actor_roles: Mapped[list[str]] = mapped_column(ARRAY(String(20)), nullable=False,
                                                   server_default=text("'{}'::varchar[]"))
    action: Mapped[str] = mapped_column(String(60), nullable=False)
    subject_type: Mapped[str] = mapped_column(String(40), nullable=False)
    subject_id: Mapped[uuid.UUID | None] = mapped_column()
    details: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    before: Mapped[dict | None] = mapped_column(JSONB)
    after: Mapped[dict | None] = mapped_column(JSONB)
    at: Mapped[datetime] = mapped_column(nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)
