"""The CER registry's tables (核证减排量, CER, art. 14-17): projects, issuance, serial blocks, their journal.

A CER is one tonne CO2e with a serial number. Issuance creates a serial block; every later act
(reserve for a purchase, deliver, release, retire, cancel) ends the blocks it touches and creates
new ones, split exactly, and records a `cer_moves` journal row naming the serial range. So any
tonne can be traced from issuance to retirement, and nothing is ever edited away: a block row
only gains its `ended_at`/`ended_by_move_id` once.

Conservation, per project and vintage: issued = held + reserved + in_review + retired + cancelled
+ surrendered, where the right side sums the live (not ended) blocks by state."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Identity, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, in_enum, new_id



class ProjectStatus(str, enum.Enum):
    DRAFT = "draft"  # being written by its owner
    NOTICE = "notice"  # published for public notice (公示), pledge taken
    DECLARED = "declared"  # declared after >= 7 working days of notice (art. 16)
    VERIFIED = "verified"  # the commissioned verifier's report is in; drawn experts evaluate it (art. 17)
    FILED = "filed"  # filed (备案) by the regulator; CERs may be issued
    REJECTED = "rejected"


class BlockState(str, enum.Enum):
    HELD = "held"  # in the holder's CER account, free to offer, sell or retire
    RESERVED = "reserved"  # held by the seller but promised to a purchase order awaiting payment
    # held for a neutrality application awaiting review (art. 19, 经审核后予以注销), naming its retirement;
    # approval retires exactly these serials, rejection releases them to HELD with the same holder
    IN_REVIEW = "in_review"
    RETIRED = "retired"  # claimed for a beneficiary (注销 for carbon neutrality); final
    CANCELLED = "cancelled"  # removed by the regulator without a claim; final
    # surrendered for Shenzhen ETS compliance (履约抵销, art. 18) for a compliance entity and year; final
    SURRENDERED = "surrendered"


class MoveKind(str, enum.Enum):
    ISSUE = "issue"
    RESERVE = "reserve"
    RELEASE = "release"
    DELIVER = "deliver"
    RETIRE = "retire"
    REVIEW = "review"  # held -> in_review: a neutrality application submits its tonnes for review (art. 19)
    CANCEL = "cancel"
    SURRENDER = "surrender"  # held -> surrendered for ETS compliance (art. 18)


class Project(Base):
    """A reduction project (art. 15-17), its public notice and its pledge."""

    __tablename__ = "cer_projects"
    __table_args__ = (
        CheckConstraint(in_enum("status", ProjectStatus), name="status_valid"),
        CheckConstraint("expected_tonnes_per_year > 0", name="expected_positive"),
        Index("ix_cer_projects_owner", "owner_id", "created_at"),
        Index("ix_cer_projects_status", "status", "code"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # short public code used in serial numbers, e.g. P000012; from a sequence, never reused
    code: Mapped[str] = mapped_column(String(16), nullable=False, unique=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    methodology_code: Mapped[str] = mapped_column(String(40), nullable=False)
    location: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    expected_tonnes_per_year: Mapped[int] = mapped_column(BigInteger, nullable=False)
    benefit_sharing: Mapped[str] = mapped_column(Text, nullable=False, default="")
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    # the pledge (art. 16): not registered in CCER, green electricity trading or green certificates
    pledge_text: Mapped[str | None] = mapped_column(Text)
    pledged_at: Mapped[datetime | None] = mapped_column()
    notice_started_at: Mapped[datetime | None] = mapped_column()
    # first Asia/Shanghai date on which the declaration may be submitted (7 working days passed)
    notice_ends_on: Mapped[date | None] = mapped_column(Date)
    declared_at: Mapped[datetime | None] = mapped_column()
    filed_at: Mapped[datetime | None] = mapped_column()
    filed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    decision_note: Mapped[str | None] = mapped_column(Text)
    # art. 32: frozen pending review of a false verification report: no issuance, offer, sale or
    # retirement of its tonnes until unfrozen
    frozen_at: Mapped[datetime | None] = mapped_column()
    frozen_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    updated_at: Mapped[datetime] = mapped_column(nullable=False)


class CommissionStatus(str, enum.Enum):
    COMMISSIONED = "commissioned"  # the regulator commissioned the verifier; its report is awaited
    REPORTED = "reported"  # the verifier's report is in; drawn experts evaluate it
    WITHDRAWN = "withdrawn"  # the regulator withdrew the commission (e.g. the verifier was sanctioned)


class VerifierCommission(Base):
    """The regulator's commission of an independent verifier (核查机构) for a declared project
    (art. 17). Only the commissioned verifier may submit the validation and verification report."""

    __tablename__ = "cer_verifier_commissions"
    __table_args__ = (
        CheckConstraint(in_enum("status", CommissionStatus), name="status_valid"),
        # at most one commission in force per project
        Index("uq_cer_verifier_commissions_project_live", "project_id", unique=True,
              postgresql_where=text("status <> 'withdrawn'")),
        Index("ix_cer_verifier_commissions_verifier", "verifier_id", "commissioned_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_projects.id"), nullable=False)
    verifier_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False)
    commissioned_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    commissioned_at: Mapped[datetime] = mapped_column(nullable=False)
    # how many drawn experts evaluate the report
    experts_wanted: Mapped[int] = mapped_column(Integer, nullable=False)
    # the report as submitted: [{"name", "sha256", "byteSize"}] of its documents and the sha256 of the
    # canonical JSON of the whole submission (vintages, tonnes, documents), signed by the verifier's account
    documents: Mapped[list] = mapped_column(JSONB, nullable=False, default=list)
    report_sha256: Mapped[str | None] = mapped_column(String(64))
    reported_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    reported_at: Mapped[datetime | None] = mapped_column()
    review_id: Mapped[uuid.UUID | None] = mapped_column()
    withdrawn_reason: Mapped[str | None] = mapped_column(Text)


class VerifierSanction(Base):
    """A false report recorded against a verifier (art. 32): in force, it bars new commissions and
    flags every project whose reports the verifier signed. Lifting it is a new fact, not an edit."""

    __tablename__ = "cer_verifier_sanctions"
    __table_args__ = (Index("ix_cer_verifier_sanctions_verifier", "verifier_id", "recorded_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    verifier_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    # the report found false, when one is named
    commission_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cer_verifier_commissions.id"))
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    froze_unsold: Mapped[bool] = mapped_column(nullable=False, default=False)
    recorded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(nullable=False)
    lifted_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    lifted_at: Mapped[datetime | None] = mapped_column()
    lift_reason: Mapped[str | None] = mapped_column(Text)


class VerifierReport(Base):
    """Verified tonnes of one vintage, from a commissioned verifier's report. (Rows from before
    issue 10 have no verifier account or commission: the owner typed them in.)"""

    __tablename__ = "cer_verifier_reports"
    __table_args__ = (
        CheckConstraint("verified_tonnes > 0", name="verified_positive"),
        CheckConstraint("vintage BETWEEN 2000 AND 2100", name="vintage_sane"),
        Index("ix_cer_verifier_reports_project", "project_id", "submitted_at"),
        Index("ix_cer_verifier_reports_verifier", "verifier_id", postgresql_where=text("verifier_id IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_projects.id"), nullable=False)
    verifier_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    commission_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cer_verifier_commissions.id"))
    verifier_name: Mapped[str] = mapped_column(String(200), nullable=False)
    report_reference: Mapped[str] = mapped_column(String(500), nullable=False)
    vintage: Mapped[int] = mapped_column(Integer, nullable=False)
    verified_tonnes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # tonnes of this report already issued; issuance never exceeds what was verified
    issued_tonnes: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    submitted_at: Mapped[datetime] = mapped_column(nullable=False)


class Issuance(Base):
    """CERs issued to a project owner's account (art. 17): one serial block."""

    __tablename__ = "cer_issuances"
    __table_args__ = (
        CheckConstraint("last_serial >= first_serial AND first_serial >= 1", name="range_valid"),
        UniqueConstraint("project_id", "vintage", "first_serial", name="serial_start"),
        Index("ix_cer_issuances_project", "project_id", "vintage"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_projects.id"), nullable=False)
    verifier_report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_verifier_reports.id"), nullable=False)
    vintage: Mapped[int] = mapped_column(Integer, nullable=False)
    first_serial: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_serial: Mapped[int] = mapped_column(BigInteger, nullable=False)
    holder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    issued_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    issued_at: Mapped[datetime] = mapped_column(nullable=False)


class SerialCounter(Base):
    """The next serial number per project and vintage; locked while issuing, so serials never repeat."""

    __tablename__ = "cer_serial_counters"

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_projects.id"), primary_key=True)
    vintage: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_serial: Mapped[int] = mapped_column(BigInteger, nullable=False, default=1)


class Move(Base):
    """The journal: one row per act on one serial range. Never updated or deleted."""

    __tablename__ = "cer_moves"
    __table_args__ = (
        CheckConstraint(in_enum("kind", MoveKind), name="kind_valid"),
        CheckConstraint("last_serial >= first_serial", name="range_valid"),
        Index("ix_cer_moves_serials", "project_id", "vintage", "first_serial"),
        Index("ix_cer_moves_to", "to_holder_id", "at"),
        Index("ix_cer_moves_from", "from_holder_id", "at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # commit-independent order of the journal, for tracing a tonne act by act
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_projects.id"), nullable=False)
    vintage: Mapped[int] = mapped_column(Integer, nullable=False)
    first_serial: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_serial: Mapped[int] = mapped_column(BigInteger, nullable=False)
    from_holder_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    to_holder_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    from_state: Mapped[str | None] = mapped_column(String(12))
    to_state: Mapped[str] = mapped_column(String(12), nullable=False)
    # what caused it: an issuance, order, retirement or cancellation id
    reference_kind: Mapped[str] = mapped_column(String(20), nullable=False)
    reference_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    at: Mapped[datetime] = mapped_column(nullable=False)


class Block(Base):
    """A contiguous serial range in one state with one holder. Live while `ended_at` is null."""

    __tablename__ = "cer_blocks"
    __table_args__ = (
        CheckConstraint(in_enum("state", BlockState), name="state_valid"),
        CheckConstraint("last_serial >= first_serial", name="range_valid"),
        CheckConstraint("(state = 'reserved') = (order_id IS NOT NULL)", name="reserved_names_order"),
        CheckConstraint("state <> 'in_review' OR retirement_id IS NOT NULL", name="in_review_names_retirement"),
        CheckConstraint("state <> 'surrendered' OR surrender_id IS NOT NULL", name="surrendered_names_surrender"),
        # the holder's free tonnes, soonest serial first
        Index("ix_cer_blocks_holder_live", "holder_id", "project_id", "vintage", "first_serial",
              postgresql_where=text("ended_at IS NULL")),
        Index("ix_cer_blocks_serials", "project_id", "vintage", "first_serial"),
        Index("ix_cer_blocks_order_live", "order_id", postgresql_where=text("ended_at IS NULL AND order_id IS NOT NULL")),
        # a retirement's serials, for verifying its certificate against the live blocks (migration 0005)
        Index("ix_cer_blocks_retirement", "retirement_id", postgresql_where=text("retirement_id IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_projects.id"), nullable=False)
    vintage: Mapped[int] = mapped_column(Integer, nullable=False)
    first_serial: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_serial: Mapped[int] = mapped_column(BigInteger, nullable=False)
    holder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    state: Mapped[str] = mapped_column(String(12), nullable=False)
    order_id: Mapped[uuid.UUID | None] = mapped_column()
    retirement_id: Mapped[uuid.UUID | None] = mapped_column()
    cancellation_id: Mapped[uuid.UUID | None] = mapped_column()
    # the ETS compliance surrender (art. 18) these serials were surrendered for
    surrender_id: Mapped[uuid.UUID | None] = mapped_column()
    created_by_move_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_moves.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column()
    ended_by_move_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cer_moves.id"))

    @property
    def quantity(self) -> int:
        return self.last_serial - self.first_serial + 1


class CerCancellation(Base):
    """A regulator's cancellation of CERs (e.g. a fraudulent issuance): no claim, a stated reason."""

    __tablename__ = "cer_cancellations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_projects.id"), nullable=False)
    vintage: Mapped[int] = mapped_column(Integer, nullable=False)
    first_serial: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_serial: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    cancelled_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    cancelled_at: Mapped[datetime] = mapped_column(nullable=False)
    details: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)


class WorkingDaySchedule(Base):
    """One year's official holidays and make-up working days (调休) as the State Council published them,
    entered by the regulator for a year the `chinesecalendar` package does not cover (art. 16's notice).

    Append-only: a correction is a new version of the year; the latest version counts."""

    __tablename__ = "working_day_schedules"
    __table_args__ = (
        UniqueConstraint("year", "version", name="uq_working_day_schedules_year_version"),
        CheckConstraint("year BETWEEN 2000 AND 2100", name="year_sane"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    year: Mapped[int] = mapped_column(Integer, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    # every day off of the year's breaks, weekends inside a break included
    holidays: Mapped[list[date]] = mapped_column(ARRAY(Date), nullable=False)
    # weekend days worked in exchange (调休)
    makeup_workdays: Mapped[list[date]] = mapped_column(ARRAY(Date), nullable=False)
    source_reference: Mapped[str] = mapped_column(Text, nullable=False)
    entered_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    entered_at: Mapped[datetime] = mapped_column(nullable=False)


class OffsetScopeStatus(str, enum.Enum):
    DRAFT = "draft"  # being written by the regulator; private
    PUBLISHED = "published"  # in force for its compliance year; immutable
    SUPERSEDED = "superseded"  # replaced by a later published version of the same year (a correction)


class EtsOffsetScope(Base):
    """The regulator's yearly scope of CERs usable to offset Shenzhen ETS obligations (art. 18,
    "确定并公布当年度可用于...履约抵销的核证减排量范围、总量"): eligible vintages, project kinds (the
    behaviour domain of a project's methodology) and/or methodology codes, and the year's cap in tonnes.

    One version per row; a published version is never edited. A correction is a new version of the
    same year that supersedes it; at most one version of a year is published at a time."""

    __tablename__ = "ets_offset_scopes"
    __table_args__ = (
        UniqueConstraint("year", "version", name="uq_ets_offset_scopes_year_version"),
        CheckConstraint(in_enum("status", OffsetScopeStatus), name="status_valid"),
        CheckConstraint("year BETWEEN 2000 AND 2100", name="year_sane"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("cap_tonnes >= 0", name="cap_not_negative"),
        Index("uq_ets_offset_scopes_year_published", "year", unique=True,
              postgresql_where=text("status = 'published'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    year: Mapped[int] = mapped_column(Integer, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False)
    vintages: Mapped[list[int]] = mapped_column(ARRAY(Integer), nullable=False)
    project_kinds: Mapped[list[str]] = mapped_column(ARRAY(String(40)), nullable=False)
    methodology_codes: Mapped[list[str]] = mapped_column(ARRAY(String(40)), nullable=False)
    cap_tonnes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    published_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    published_at: Mapped[datetime | None] = mapped_column()
    superseded_at: Mapped[datetime | None] = mapped_column()
    # the version this one corrected, once published
    supersedes_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ets_offset_scopes.id"))


class EtsSurrender(Base):
    """CERs surrendered for Shenzhen ETS compliance (履约抵销, art. 18): public, final. Names the
    compliance entity (a company: name and unified social credit code), the compliance year, the
    scope version in force and the serial ranges (the blocks carry `surrender_id` too)."""

    __tablename__ = "ets_surrenders"
    __table_args__ = (
        CheckConstraint("tonnes > 0", name="tonnes_positive"),
        Index("ix_ets_surrenders_year", "year", "surrendered_at", "id"),
        Index("ix_ets_surrenders_holder", "holder_id", "surrendered_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    holder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    year: Mapped[int] = mapped_column(Integer, nullable=False)
    scope_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ets_offset_scopes.id"), nullable=False)
    entity_name: Mapped[str] = mapped_column(String(200), nullable=False)
    entity_code: Mapped[str] = mapped_column(String(18), nullable=False)
    tonnes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # [{"projectCode", "vintage", "first", "last"}] as surrendered
    serials: Mapped[list] = mapped_column(JSONB, nullable=False)
    surrendered_at: Mapped[datetime] = mapped_column(nullable=False)
