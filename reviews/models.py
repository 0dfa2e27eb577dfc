"""The technical review's tables (art. 8, 13, 17).

An expert (专家) belongs to the regulator's library (art. 8): fields of expertise, an affiliation,
declared conflicts with organisations, active or suspended. A review is opened on a subject (a
methodology application, a project's verification report, a scenario application) in one field
for a number of seats; the regulator draws experts into the seats, each seated expert gives an
opinion or declines for a conflict (the seat is drawn again), and the regulator decides, giving
reasons. `review_events` journals every step with who and when; nothing in it is updated.

The draw (reviews/draws.py) is re-checkable: the seed of each draw is fixed, and its sha256
published, before the draw (when the review opens, or at the previous draw), and each draw records
its eligible pool in order next to the seed it reveals."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Identity, Index, Integer, BigInteger, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, in_enum, new_id



class ExpertField(str, enum.Enum):
    """The fields of expertise a review is drawn in; besides these, "domain:<behaviour domain>"."""

    METHODOLOGY = "methodology"
    PROJECT_VALIDATION = "project_validation"
    REDUCTION_VERIFICATION = "reduction_verification"
    SCENARIO = "scenario"


class ExpertStatus(str, enum.Enum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class SubjectKind(str, enum.Enum):
    METHODOLOGY_APPLICATION = "methodology_application"
    PROJECT_VERIFICATION = "project_verification"
    SCENARIO_APPLICATION = "scenario_application"


class ReviewStatus(str, enum.Enum):
    OPEN = "open"  # the first draw's seed is committed; no expert is seated yet
    DRAWN = "drawn"  # experts are seated; opinions are coming in
    DECIDED = "decided"  # the regulator decided, giving reasons


class Decision(str, enum.Enum):
    APPROVED = "approved"
    REFUSED = "refused"


class SeatStatus(str, enum.Enum):
    SEATED = "seated"  # drawn; the opinion is outstanding
    ANSWERED = "answered"  # the opinion is in
    DECLINED = "declined"  # declined for a conflict; the seat was drawn again


class Opinion(str, enum.Enum):
    PASS = "pass"
    PASS_WITH_CHANGES = "pass_with_changes"
    FAIL = "fail"


class Expert(Base):
    __tablename__ = "experts"
    __table_args__ = (
        CheckConstraint(in_enum("status", ExpertStatus), name="status_valid"),
        Index("ix_experts_name", "name", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # the person account the expert signs in with (role EXPERT); never shown publicly
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    affiliation: Mapped[str] = mapped_column(String(200), nullable=False)
    fields: Mapped[list[str]] = mapped_column(ARRAY(String(60)), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    added_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    added_at: Mapped[datetime] = mapped_column(nullable=False)
    status_reason: Mapped[str | None] = mapped_column(Text)


class ExpertConflict(Base):
    """An organisation an expert works for or with (declared by the expert or the regulator):
    the expert is never drawn for a review in which that organisation is a party. Private."""

    __tablename__ = "expert_conflicts"
    __table_args__ = (UniqueConstraint("expert_id", "organisation_id", name="uq_expert_conflicts_pair"),
                      Index("ix_expert_conflicts_organisation", "organisation_id"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("experts.id"), nullable=False)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    declared_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    declared_at: Mapped[datetime] = mapped_column(nullable=False)


class Review(Base):
    __tablename__ = "reviews"
    __table_args__ = (
        CheckConstraint(in_enum("subject_kind", SubjectKind), name="subject_kind_valid"),
        CheckConstraint(in_enum("status", ReviewStatus), name="status_valid"),
        CheckConstraint("decision IS NULL OR " + in_enum("decision", Decision), name="decision_valid"),
        CheckConstraint("experts_wanted BETWEEN 1 AND 15", name="seats_sane"),
        CheckConstraint("(status = 'decided') = (decision IS NOT NULL)", name="decided_has_decision"),
        Index("ix_reviews_subject", "subject_kind", "subject_id", "opened_at"),
        Index("ix_reviews_status", "status", "opened_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subject_kind: Mapped[str] = mapped_column(String(30), nullable=False)
    subject_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    field: Mapped[str] = mapped_column(String(60), nullable=False)
    experts_wanted: Mapped[int] = mapped_column(Integer, nullable=False)
    # organisations whose declared conflicts exclude an expert (applicant, verifier, owner)
    parties: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    # the seed of the next draw, kept secret until that draw; its sha256 is public from now on
    next_seed: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    next_commitment: Mapped[str] = mapped_column(String(64), nullable=False)
    draws_done: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    opened_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    opened_at: Mapped[datetime] = mapped_column(nullable=False)
    decision: Mapped[str | None] = mapped_column(String(10))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    decided_at: Mapped[datetime | None] = mapped_column()


class ReviewDraw(Base):
    """One draw: the revealed seed (whose sha256 was published before), the eligible pool in the
    order the draw used, and whom it chose. Enough for anyone to recompute it (reviews/draws.py)."""

    __tablename__ = "review_draws"
    __table_args__ = (UniqueConstraint("review_id", "round", name="uq_review_draws_round"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    review_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reviews.id"), nullable=False)
    round: Mapped[int] = mapped_column(Integer, nullable=False)
    seed: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    commitment: Mapped[str] = mapped_column(String(64), nullable=False)
    pool: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)), nullable=False)
    seats: Mapped[int] = mapped_column(Integer, nullable=False)
    chosen: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)), nullable=False)
    drawn_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    drawn_at: Mapped[datetime] = mapped_column(nullable=False)


class ReviewSeat(Base):
    """A drawn expert's seat in a review, with the opinion or the declination."""

    __tablename__ = "review_seats"
    __table_args__ = (
        CheckConstraint(in_enum("status", SeatStatus), name="status_valid"),
        CheckConstraint("opinion IS NULL OR " + in_enum("opinion", Opinion), name="opinion_valid"),
        CheckConstraint("(status = 'answered') = (opinion IS NOT NULL)", name="answered_has_opinion"),
        UniqueConstraint("review_id", "expert_id", name="uq_review_seats_expert"),
        Index("ix_review_seats_expert", "expert_id", "drawn_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    review_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reviews.id"), nullable=False)
    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("experts.id"), nullable=False)
    round: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    opinion: Mapped[str | None] = mapped_column(String(20))
    text: Mapped[str | None] = mapped_column(Text)
    drawn_at: Mapped[datetime] = mapped_column(nullable=False)
    answered_at: Mapped[datetime | None] = mapped_column()


class ReviewEvent(Base):
    """The review's journal: every step, who and when. Append-only."""

    __tablename__ = "review_events"
    __table_args__ = (Index("ix_review_events_review", "review_id", "seq"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), nullable=False, unique=True)
    review_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reviews.id"), nullable=False)
    action: Mapped[str] = mapped_column(String(30), nullable=False)
    actor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    at: Mapped[datetime] = mapped_column(nullable=False)
    details: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
