"""GraphQL types of methodologies, exchange rules and behaviour reports."""

from __future__ import annotations

import enum
from datetime import date, datetime

import strawberry

from reductions import models
from reductions.errors import ReductionCode
from reductions.service import DAILY_CAP_REACHED, ItemResult, Reject
from reductions.service import ItemStatus as DomainItemStatus
from schema.errors import MutationError, error_codes
from schema.scalars import Long
from wallets.errors import WalletCode

PublicationStatus = strawberry.enum(models.PublicationStatus, name="PublicationStatus")
ReportItemStatus = strawberry.enum(DomainItemStatus, name="ReportItemStatus",
                                   description="credited now, duplicate of an earlier report (its original result), or rejected.")
ReportRejectCode = strawberry.enum(Reject, name="ReportRejectCode", description="Why a report credited nothing.")


@strawberry.enum(description="Why part of a report was not credited.")
class UncreditedReason(enum.Enum):
    DAILY_CAP_REACHED = DAILY_CAP_REACHED


@strawberry.type(description="A published way to quantify a low-carbon behaviour's reduction (碳普惠方法学).")
class Methodology:
    id: strawberry.ID
    code: str
    version: int
    name: str
    behaviour_domain: str
    activity_unit: str
    factor_mg_per_unit: Long = strawberry.field(description="Exact reduction per activity unit, mg CO2e.")
    max_quantity: str = strawberry.field(description="The largest credible quantity in one report.")
    effective_from: date
    effective_to: date | None
    status: PublicationStatus
    source_reference: str
    is_example: bool = strawberry.field(description="True for illustrative seed data, not a published figure.")

    @classmethod
    def from_row(cls, row: models.Methodology) -> "Methodology":
        return cls(id=strawberry.ID(str(row.id)), code=row.code, version=row.version, name=row.name,
                   behaviour_domain=row.behaviour_domain, activity_unit=row.activity_unit,
                   factor_mg_per_unit=row.factor_mg_per_unit, max_quantity=_milli(row.max_quantity_milli),
                   effective_from=row.effective_from, effective_to=row.effective_to,
                   status=models.PublicationStatus(row.status), source_reference=row.source_reference,
                   is_example=row.is_example)


def _milli(value: int) -> str:
    whole, frac = divmod(value, 1000)
    return f"{whole}.{frac:03d}".rstrip("0").rstrip(".") if frac else str(whole)


@strawberry.type(description="How reductions become points (碳积分兑换规则), in force from effectiveFrom.")
class ExchangeRule:
    id: strawberry.ID
    version: int
    methodology_code: str | None = strawberry.field(description="null: applies to every methodology without its own rule.")
    points: Long
    reduction_mg: Long = strawberry.field(description="`points` points per this many mg CO2e, exactly.")
    daily_cap_points: Long = strawberry.field(description="Per person, per methodology, per business day (Asia/Shanghai).")
    acceptance_window_days: int
    validity_years: int
    effective_from: datetime
    status: PublicationStatus
    note: str | None

    @classmethod
    def from_row(cls, row: models.ExchangeRule) -> "ExchangeRule":
        return cls(id=strawberry.ID(str(row.id)), version=row.version, methodology_code=row.methodology_code,
                   points=row.points, reduction_mg=row.reduction_mg, daily_cap_points=row.daily_cap_points,
                   acceptance_window_days=row.acceptance_window_days, validity_years=row.validity_years,
                   effective_from=row.effective_from, status=models.PublicationStatus(row.status), note=row.note)


@strawberry.type(description="What became of one reported item.")
class ReportItemResult:
    report_id: str
    status: ReportItemStatus
    reject_code: ReportRejectCode | None
    points: Long
    reduction_mg: Long
    lot_id: strawberry.ID | None
    expires_at: datetime | None
    uncredited_reduction_mg: Long
    uncredited_reason: UncreditedReason | None

    @classmethod
    def from_result(cls, r: ItemResult) -> "ReportItemResult":
        return cls(report_id=r.report_id, status=r.status, reject_code=Reject(r.reject_code) if r.reject_code else None,
                   points=r.points, reduction_mg=r.reduction_mg, lot_id=strawberry.ID(str(r.lot_id)) if r.lot_id else None,
                   expires_at=r.expires_at, uncredited_reduction_mg=r.uncredited_reduction_mg,
                   uncredited_reason=UncreditedReason(r.uncredited_reason) if r.uncredited_reason else None)


@strawberry.type(description="A stored behaviour report, as its operator sees it.")
class BehaviourReport:
    report_id: str
    external_user_id: str
    methodology_code: str
    quantity: str
    occurred_at: datetime
    received_at: datetime
    outcome: str
    reject_code: ReportRejectCode | None
    points: Long
    reduction_mg: Long
    uncredited_reduction_mg: Long
    uncredited_reason: UncreditedReason | None

    @classmethod
    def from_row(cls, row: models.BehaviourReport) -> "BehaviourReport":
        return cls(report_id=row.report_id, external_user_id=row.external_user_id,
                   methodology_code=row.methodology_code, quantity=_milli(row.quantity_milli),
                   occurred_at=row.occurred_at, received_at=row.received_at, outcome=row.outcome,
                   reject_code=Reject(row.reject_code) if row.reject_code else None, points=row.points_credited,
                   reduction_mg=row.reduction_mg, uncredited_reduction_mg=row.uncredited_reduction_mg,
                   uncredited_reason=UncreditedReason(row.uncredited_reason) if row.uncredited_reason else None)


@strawberry.type(description="An operator's reports for one methodology on one behaviour day.")
class ReportAggregate:
    day: date
    methodology_code: str
    reports: int
    credited: int
    rejected: int
    points: Long
    reduction_mg: Long
    uncredited_reduction_mg: Long


@strawberry.type(description="A lot of one of the operator's users that expires within 30 days.")
class OperatorExpiryNotice:
    external_user_id: str
    points: Long
    expires_at: datetime
    noticed_at: datetime


# --- inputs ------------------------------------------------------------------------------------


@strawberry.input
class ReportItemInput:
    report_id: str = strawberry.field(description="The operator's own id for this report; retries reuse it.")
    external_user_id: str
    methodology_code: str
    quantity: str = strawberry.field(description="Activity quantity in the methodology's unit, e.g. \"12.4\" (at most 3 decimals).")
    occurred_at: datetime


@strawberry.input
class ReportBehaviourInput:
    items: list[ReportItemInput]


@strawberry.input
class CreateMethodologyInput:
    code: str
    name: str
    behaviour_domain: str
    activity_unit: str
    factor_mg_per_unit: Long
    max_quantity: str
    effective_from: date
    source_reference: str
    effective_to: date | None = None
    is_example: bool = False


@strawberry.input
class SetMethodologyStatusInput:
    id: strawberry.ID
    status: PublicationStatus


@strawberry.input
class CreateExchangeRuleInput:
    points: Long
    reduction_mg: Long
    daily_cap_points: Long
    acceptance_window_days: int
    effective_from: datetime
    validity_years: int = 10
    methodology_code: str | None = None
    note: str | None = None


@strawberry.input
class PublishExchangeRuleInput:
    id: strawberry.ID


# --- payloads ----------------------------------------------------------------------------------

ReportBehaviourErrorCode = error_codes(
    "ReportBehaviourErrorCode", ReductionCode.INVALID_BATCH, WalletCode.INVALID_VALIDITY)


@strawberry.type
class ReportBehaviourError(MutationError):
    code: ReportBehaviourErrorCode


@strawberry.type
class ReportBehaviourPayload:
    results: list[ReportItemResult] = strawberry.field(default_factory=list)
    errors: list[ReportBehaviourError] = strawberry.field(default_factory=list)


MethodologyErrorCode = error_codes(
    "MethodologyErrorCode", ReductionCode.INVALID_QUANTITY, ReductionCode.INVALID_TRANSITION,
    ReductionCode.QUANTITY_TOO_LARGE)


@strawberry.type
class MethodologyError(MutationError):
    code: MethodologyErrorCode


@strawberry.type
class MethodologyPayload:
    methodology: Methodology | None = None
    errors: list[MethodologyError] = strawberry.field(default_factory=list)


ExchangeRuleErrorCode = error_codes(
    "ExchangeRuleErrorCode", ReductionCode.VALIDITY_TOO_LONG, ReductionCode.UNKNOWN_METHODOLOGY,
    ReductionCode.METHODOLOGY_NOT_PUBLISHED, ReductionCode.INVALID_TRANSITION, ReductionCode.EFFECTIVE_IN_PAST)


@strawberry.type
class ExchangeRuleError(MutationError):
    code: ExchangeRuleErrorCode


@strawberry.type
class ExchangeRulePayload:
    rule: ExchangeRule | None = None
    errors: list[ExchangeRuleError] = strawberry.field(default_factory=list)
