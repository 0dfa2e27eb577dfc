"""Methodologies (碳普惠方法学, art. 8, 11-14, 20), their filing applications (备案申请, art. 11-13),
exchange rules (碳积分兑换规则, art. 20) and operators' behaviour reports (art. 21)."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, Date, ForeignKey, Identity, Index, Integer, LargeBinary,
                        String, Text, UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, in_enum, new_id


class PublicationStatus(str, enum.Enum):
    DRAFT = "draft"
    PUBLISHED = "published"
    RETIRED = "retired"


class CalculationKind(str, enum.Enum):
    """How a methodology turns a report into a reduction, exactly (integer thousandths x integer mg):
    FACTOR_PER_UNIT: quantity x factor (metro person-km);
    BASELINE_MINUS_ACTUAL: max(0, baseline - actual) x factor, the report carrying both
    (household electricity: the baseline consumption and the actual one, in kWh)."""

    FACTOR_PER_UNIT = "factor_per_unit"
    BASELINE_MINUS_ACTUAL = "baseline_minus_actual"


class ApplicationStatus(str, enum.Enum):
    """A methodology application (art. 11-13): submitted complete, it is under the experts' review
    at once; the regulator then files (备案) and publishes it, or refuses it with reasons."""

    UNDER_REVIEW = "under_review"
    FILED = "filed"
    REFUSED = "refused"


class DocumentKind(str, enum.Enum):
    APPLICATION_FORM = "application_form"  # 备案申请表
    METHODOLOGY_TEXT = "methodology_text"  # 方法学文本
    DRAFTING_NOTES = "drafting_notes"  # 编制说明


class ReportOutcome(str, enum.Enum):
    CREDITED = "credited"
    REJECTED = "rejected"


def _figure_checks() -> tuple[CheckConstraint, ...]:
    return (CheckConstraint("factor_mg_per_unit > 0", name="factor_positive"),
            CheckConstraint("max_quantity_milli > 0", name="max_quantity_positive"),
            CheckConstraint(in_enum("calculation", CalculationKind), name="calculation_valid"))


class MethodologyFigures:
    """What a methodology quantifies and how: the columns an application proposes and its filing
    publishes, alike in both tables."""

    code: Mapped[str] = mapped_column(String(40), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    behaviour_domain: Mapped[str] = mapped_column(String(40), nullable=False)
    activity_unit: Mapped[str] = mapped_column(String(20), nullable=False)
    calculation: Mapped[str] = mapped_column(String(24), nullable=False, server_default="factor_per_unit")
    factor_mg_per_unit: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # a single report above this is absurd (e.g. 500 person-km of metro in one ride)
    max_quantity_milli: Mapped[int] = mapped_column(BigInteger, nullable=False)


class Methodology(MethodologyFigures, Base):
    """A published way to quantify one low-carbon behaviour's reduction (art. 8, 20).

    The reduction factor is exact: integer milligrams CO2e per activity unit. Activity
    quantities are reported with up to three decimals and kept as integer thousandths."""

    __tablename__ = "methodologies"
    __table_args__ = (
        UniqueConstraint("code", "version", name="uq_methodologies_code_version"),
        *_figure_checks(),
        CheckConstraint("status IN ('draft', 'published', 'retired')", name="status_valid"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    effective_from: Mapped[date] = mapped_column(Date, nullable=False)
    effective_to: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    source_reference: Mapped[str] = mapped_column(Text, nullable=False)
    # seed figures that are illustrations, not published Shenzhen values
    is_example: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    published_at: Mapped[datetime | None] = mapped_column()
    # when the regulator retired it (null while published; versions retired before issue 11 have none)
    retired_at: Mapped[datetime | None] = mapped_column()
    # the filed application it was published from (null for versions published before filing existed)
    application_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("methodology_applications.id"))


class MethodologyApplication(MethodologyFigures, Base):
    """An organisation's (or the regulator's own, art. 12) application to file a methodology (art. 11-13).

    Complete on submission or refused whole; opens a review by drawn methodology experts
    (reviews/, field "methodology"); `review_id` names it (the reviews package owns that table).
    The regulator files it, publishing a Methodology version linked back here, or refuses it."""

    __tablename__ = "methodology_applications"
    __table_args__ = (
        CheckConstraint(in_enum("status", ApplicationStatus), name="status_valid"),
        *_figure_checks(),
        Index("ix_methodology_applications_applicant", "applicant_id", "submitted_at", "id"),
        Index("ix_methodology_applications_status", "status", "submitted_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    applicant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    review_id: Mapped[uuid.UUID | None] = mapped_column()
    submitted_at: Mapped[datetime] = mapped_column(nullable=False)
    decided_at: Mapped[datetime | None] = mapped_column()
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    methodology_id: Mapped[uuid.UUID | None] = mapped_column()


class MethodologyDocument(Base):
    """One document of an application: application form, methodology text or drafting notes.

    The bytes are stored here, next to their sha256 and size, rather than as a reference to an
    object store: the filed documents are the public record of what the experts reviewed and the
    regulator filed (art. 13, 29), so they must commit or roll back with the application and be
    backed up with it; the platform runs no object store, and documents are capped
    (reductions/filing.py MAX_DOCUMENT_BYTES) so the table stays small."""

    __tablename__ = "methodology_documents"
    __table_args__ = (
        UniqueConstraint("application_id", "kind", name="uq_methodology_documents_application_kind"),
        CheckConstraint(in_enum("kind", DocumentKind), name="kind_valid"),
        CheckConstraint("size_bytes > 0", name="size_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    application_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("methodology_applications.id"), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    file_name: Mapped[str] = mapped_column(String(200), nullable=False)
    media_type: Mapped[str] = mapped_column(String(100), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    size_bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    content: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class MethodologyApplicationEvent(Base):
    """The journal of an application: who did what when (submitted, filed, refused)."""

    __tablename__ = "methodology_application_events"
    __table_args__ = (
        Index("ix_methodology_application_events_application", "application_id", "seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # the order of the steps, also within one instant
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), nullable=False, unique=True)
    application_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("methodology_applications.id"), nullable=False)
    event: Mapped[str] = mapped_column(String(20), nullable=False)
    actor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    at: Mapped[datetime] = mapped_column(nullable=False)
    note: Mapped[str | None] = mapped_column(Text)


class ExchangeRule(Base):
    """How reductions become points, versioned and dated by the regulator (art. 20).

    `points` per `reduction_mg` is an exact ratio (1 point per 10 g = 1 / 10,000 mg). The rule
    in force at the behaviour's time applies: the published rule with the latest
    effective_from at or before it. A rule for one methodology overrides the general one."""

    __tablename__ = "exchange_rules"
    __table_args__ = (
        UniqueConstraint("version", name="uq_exchange_rules_version"),
        CheckConstraint("points > 0 AND reduction_mg > 0", name="ratio_positive"),
        CheckConstraint("validity_years BETWEEN 1 AND 10", name="validity_at_most_10_years"),
        CheckConstraint("daily_cap_points > 0", name="cap_positive"),
        CheckConstraint("acceptance_window_days BETWEEN 0 AND 366", name="window_range"),
        CheckConstraint("status IN ('draft', 'published', 'retired')", name="status_valid"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    methodology_code: Mapped[str | None] = mapped_column(String(40))
    points: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reduction_mg: Mapped[int] = mapped_column(BigInteger, nullable=False)
    daily_cap_points: Mapped[int] = mapped_column(BigInteger, nullable=False)
    acceptance_window_days: Mapped[int] = mapped_column(Integer, nullable=False)
    validity_years: Mapped[int] = mapped_column(Integer, nullable=False)
    effective_from: Mapped[datetime] = mapped_column(nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    published_at: Mapped[datetime | None] = mapped_column()


class BehaviourReport(Base):
    """One item an operator reported, with what became of it. Idempotent per (operator, report id):
    a retried report returns this row's outcome and credits nothing again."""

    __tablename__ = "behaviour_reports"
    __table_args__ = (
        UniqueConstraint("operator_account_id", "report_id", name="uq_behaviour_reports_operator_report"),
        CheckConstraint("outcome IN ('credited', 'rejected')", name="outcome_valid"),
        CheckConstraint("(baseline_milli IS NULL) = (actual_milli IS NULL)", name="baseline_with_actual"),
        Index("ix_behaviour_reports_operator_received", "operator_account_id", "received_at", "id"),
        # daily caps: what a wallet was credited per methodology and behaviour day
        Index("ix_behaviour_reports_wallet_day", "wallet_id", "behaviour_day", "methodology_code"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    operator_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    report_id: Mapped[str] = mapped_column(String(128), nullable=False)
    external_user_id: Mapped[str] = mapped_column(String(128), nullable=False)
    wallet_id: Mapped[uuid.UUID | None] = mapped_column()
    methodology_code: Mapped[str] = mapped_column(String(40), nullable=False)
    methodology_id: Mapped[uuid.UUID | None] = mapped_column()
    # the quantity the factor multiplies: the reported one, or max(0, baseline - actual)
    quantity_milli: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # reported for a BASELINE_MINUS_ACTUAL methodology, both or neither
    baseline_milli: Mapped[int | None] = mapped_column(BigInteger)
    actual_milli: Mapped[int | None] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(nullable=False)
    received_at: Mapped[datetime] = mapped_column(nullable=False)
    outcome: Mapped[str] = mapped_column(String(10), nullable=False)
    reject_code: Mapped[str | None] = mapped_column(String(40))
    rule_id: Mapped[uuid.UUID | None] = mapped_column()
    reduction_mg: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    points_credited: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    # reduction above the daily cap: recorded, never credited
    uncredited_reduction_mg: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    uncredited_reason: Mapped[str | None] = mapped_column(String(40))
    lot_id: Mapped[uuid.UUID | None] = mapped_column()
    # the business day (Asia/Shanghai) of the behaviour, for daily caps and aggregates
    behaviour_day: Mapped[date] = mapped_column(Date, nullable=False)
