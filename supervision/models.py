"""The tables of supervision (art. 30-32): violations and their rescissions (the credit record,
append-only), the standing of an organisation in a role (what the hot paths read), and
inspections with their follow-ups and history."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Identity, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, in_enum, new_id


class SupervisedRole(str, enum.Enum):
    """The roles a violation is recorded against (art. 31-32)."""

    APP_OPERATOR = "app_operator"
    MERCHANT = "merchant"
    VERIFIER = "verifier"
    SCENARIO_OPERATOR = "scenario_operator"  # the operating body of a carbon-inclusion scenario (art. 25-28)


class Sanction(str, enum.Enum):
    WARNING = "warning"
    SUSPENSION = "suspension"  # for a period; ends by itself
    REVOCATION = "revocation"  # of the role, for good


class Violation(Base):
    """One entry of an organisation's credit record (信用记录). Never edited: a correction is a
    rescission (violation_rescissions), itself a new entry."""

    __tablename__ = "violations"
    __table_args__ = (
        CheckConstraint(in_enum("role", SupervisedRole), name="role_valid"),
        CheckConstraint(in_enum("sanction", Sanction), name="sanction_valid"),
        CheckConstraint("article BETWEEN 1 AND 33", name="article_valid"),
        CheckConstraint("(sanction = 'suspension') = (suspended_until IS NOT NULL)", name="period_iff_suspension"),
        CheckConstraint("suspended_until IS NULL OR suspended_until > recorded_at", name="period_positive"),
        Index("ix_violations_organisation", "organisation_id", "recorded_at", "id"),
        Index("ix_violations_recorded", "recorded_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    article: Mapped[int] = mapped_column(Integer, nullable=False)  # of the Measures
    finding: Mapped[str] = mapped_column(Text, nullable=False)
    # [{"name", "sha256", "byteSize"}] (core/documents.py)
    documents: Mapped[list] = mapped_column(JSONB, nullable=False)
    sanction: Mapped[str] = mapped_column(String(12), nullable=False)
    # a suspension runs from recorded_at until suspended_until; no job ends it
    suspended_until: Mapped[datetime | None] = mapped_column()
    recorded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(nullable=False)


class ViolationRescission(Base):
    """The correction of a violation recorded in error: a new entry, one per violation."""

    __tablename__ = "violation_rescissions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    violation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("violations.id"), nullable=False, unique=True)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    rescinded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    rescinded_at: Mapped[datetime] = mapped_column(nullable=False)


class OrganisationStanding(Base):
    """An organisation's standing in one role: the end of the suspension in force, kept by the
    violations in the same transaction (the latest end among its unrescinded suspensions). It is
    suspended while now < suspended_until: the state ends by itself, nothing runs to end it."""

    __tablename__ = "organisation_standings"
    __table_args__ = (CheckConstraint(in_enum("role", SupervisedRole), name="role_valid"),)

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    suspended_until: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(nullable=False)


class FollowUpStatus(str, enum.Enum):
    OPEN = "open"
    DONE = "done"


class Inspection(Base):
    """The regulator's inspection of the platform, or of one organisation (art. 30)."""

    __tablename__ = "inspections"
    __table_args__ = (Index("ix_inspections_inspected", "inspected_on", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # null: the platform itself
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    inspected_on: Mapped[date] = mapped_column(Date, nullable=False)
    scope: Mapped[str] = mapped_column(Text, nullable=False)
    findings: Mapped[str] = mapped_column(Text, nullable=False)
    documents: Mapped[list] = mapped_column(JSONB, nullable=False)
    recorded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(nullable=False)


class InspectionFollowUp(Base):
    """Something an inspection asks to be done by a date: open, then done with a note."""

    __tablename__ = "inspection_follow_ups"
    __table_args__ = (
        CheckConstraint(in_enum("status", FollowUpStatus), name="status_valid"),
        CheckConstraint("(status = 'done') = (completed_at IS NOT NULL)", name="done_iff_completed"),
        Index("ix_inspection_follow_ups_inspection", "inspection_id", "added_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    inspection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inspections.id"), nullable=False)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    due_on: Mapped[date] = mapped_column(Date, nullable=False)
    status: Mapped[str] = mapped_column(String(8), nullable=False)
    added_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    added_at: Mapped[datetime] = mapped_column(nullable=False)
    completion_note: Mapped[str | None] = mapped_column(Text)
    completed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    completed_at: Mapped[datetime | None] = mapped_column()


class InspectionEvent(Base):
    """The append-only history of an inspection: recorded, a follow-up added, a follow-up done."""

    __tablename__ = "inspection_events"
    __table_args__ = (Index("ix_inspection_events_inspection", "inspection_id", "seq"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # the order the steps were written in (two steps may share a clock reading)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), nullable=False, unique=True)
    inspection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inspections.id"), nullable=False)
    follow_up_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("inspection_follow_ups.id"))
    action: Mapped[str] = mapped_column(String(40), nullable=False)
    actor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    at: Mapped[datetime] = mapped_column(nullable=False)
    details: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
