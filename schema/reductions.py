"""GraphQL types of methodologies, their filing (art. 11-14), exchange rules and behaviour reports."""

from __future__ import annotations

import base64
import enum
from datetime import date, datetime

import strawberry

from reductions import models
from reductions.errors import ReductionCode
from reductions.service import DAILY_CAP_REACHED, ItemResult, Reject
from reductions.service import ItemStatus as DomainItemStatus
from core.errors import CoreCode
from reviews.errors import ReviewCode
from reviews.models import Opinion, Review
from schema.errors import MutationError, error_codes
from schema.scalars import Long
from wallets.errors import WalletCode

PublicationStatus = strawberry.enum(models.PublicationStatus, name="PublicationStatus")
CalculationKind = strawberry.enum(
    models.CalculationKind, name="CalculationKind",
    description="FACTOR_PER_UNIT: quantity x factor. BASELINE_MINUS_ACTUAL: max(0, baseline - actual) x factor, "
                "the report carrying baselineQuantity and actualQuantity.")
MethodologyApplicationStatus = strawberry.enum(
    models.ApplicationStatus, name="MethodologyApplicationStatus",
    description="UNDER_REVIEW from submission (drawn experts evaluate it), then FILED (published) or REFUSED.")
MethodologyDocumentKind = strawberry.enum(models.DocumentKind, name="MethodologyDocumentKind")
ReportItemStatus = strawberry.enum(DomainItemStatus, name="ReportItemStatus",
                                   description="credited now, duplicate of an earlier report (its original result), or rejected.")
# what reviews.service.decide_review refuses with, which filing and refusing answer. WRONG_STATUS (a decided
# review) is not met in practice, filing._locked answering INVALID_TRANSITION for a decided application first,
# but it stays declared: tests/structure/test_conventions_error_codes.py follows decide_review statically
REVIEW_DECISION_CODES = (ReviewCode.OPINIONS_OUTSTANDING, ReviewCode.REASON_REQUIRED, ReviewCode.WRONG_STATUS)
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
    calculation: CalculationKind
    retired_at: datetime | None = strawberry.field(description="When the regulator retired this version (null while "
                                                               "published, and for versions retired before it was kept).")
    filing: "MethodologyFiling | None" = strawberry.field(
        description="The filed application and the review it passed (null for versions published before filing).")

    @classmethod
    def from_row(cls, row: models.Methodology, filing: "MethodologyFiling | None" = None) -> "Methodology":
        return cls(id=strawberry.ID(str(row.id)), code=row.code, version=row.version, name=row.name,
                   behaviour_domain=row.behaviour_domain, activity_unit=row.activity_unit,
                   factor_mg_per_unit=row.factor_mg_per_unit, max_quantity=_milli(row.max_quantity_milli),
                   effective_from=row.effective_from, effective_to=row.effective_to,
                   status=models.PublicationStatus(row.status), source_reference=row.source_reference,
                   is_example=row.is_example, calculation=models.CalculationKind(row.calculation),
                   retired_at=row.retired_at, filing=filing)


@strawberry.type(description="A document of a methodology application, with its sha256 to check a copy against.")
class MethodologyDocument:
    kind: MethodologyDocumentKind
    file_name: str
    media_type: str
    sha256: str
    size_bytes: int
    content_base64: str | None = strawberry.field(
        description="The bytes, base64, on methodologyApplication(id) (null in lists).")

    @classmethod
    def from_row(cls, row: models.MethodologyDocument, with_content: bool) -> "MethodologyDocument":
        return cls(kind=models.DocumentKind(row.kind), file_name=row.file_name, media_type=row.media_type,
                   sha256=row.sha256, size_bytes=row.size_bytes,
                   content_base64=base64.b64encode(row.content).decode() if with_content else None)


@strawberry.type(description="How many of a review's seated experts gave each opinion.")
class ExpertOpinionCounts:
    passed: int = strawberry.field(description="Opinions PASS.")
    passed_with_changes: int = strawberry.field(description="Opinions PASS_WITH_CHANGES.")
    failed: int = strawberry.field(description="Opinions FAIL.")

    @classmethod
    def from_counts(cls, counts: dict[str, int]) -> "ExpertOpinionCounts":
        return cls(passed=counts.get(Opinion.PASS.value, 0),
                   passed_with_changes=counts.get(Opinion.PASS_WITH_CHANGES.value, 0),
                   failed=counts.get(Opinion.FAIL.value, 0))


@strawberry.type(description="The public record of a methodology's filing (备案, art. 13, 29): who applied, the "
                             "experts' review (recheck its draw by reviewId), the regulator's decision and reasons.")
class MethodologyFiling:
    application_id: strawberry.ID
    applicant_name: str
    submitted_at: datetime
    filed_at: datetime
    review_id: strawberry.ID | None
    review_outcome: str = strawberry.field(description="The review's decision (approved or refused), as the review "
                                                       "records it.")
    expert_opinions: ExpertOpinionCounts = strawberry.field(description="The experts' opinions in that review.")
    decision_reason: str
    documents: list[MethodologyDocument]

    @classmethod
    def from_row(cls, row: models.MethodologyApplication, applicant_name: str,
                 documents: list[models.MethodologyDocument], review: Review | None,
                 opinions: dict[str, int]) -> "MethodologyFiling":
        return cls(application_id=strawberry.ID(str(row.id)), applicant_name=applicant_name,
                   submitted_at=row.submitted_at, filed_at=row.decided_at,
                   review_id=strawberry.ID(str(row.review_id)) if row.review_id else None,
                   review_outcome=(review.decision if review else None) or "",
                   expert_opinions=ExpertOpinionCounts.from_counts(opinions),
                   decision_reason=row.decision_reason or "",
                   documents=[MethodologyDocument.from_row(d, with_content=False) for d in documents])


@strawberry.type(description="One step of an application's journal: who did what, when.")
class MethodologyApplicationEvent:
    event: str = strawberry.field(description="submitted, filed or refused.")
    actor_id: strawberry.ID
    at: datetime
    note: str | None


@strawberry.type(description="An application to file a methodology (备案申请, art. 11-13).")
class MethodologyApplication:
    id: strawberry.ID
    applicant_id: strawberry.ID
    code: str
    name: str
    behaviour_domain: str
    activity_unit: str
    calculation: CalculationKind
    factor_mg_per_unit: Long
    max_quantity: str
    status: MethodologyApplicationStatus
    review_id: strawberry.ID | None = strawberry.field(description="The experts' review (reviews), opened on submission.")
    submitted_at: datetime
    decided_at: datetime | None
    decision_reason: str | None
    methodology_id: strawberry.ID | None = strawberry.field(description="The published version, once filed.")
    documents: list[MethodologyDocument]
    journal: list[MethodologyApplicationEvent] = strawberry.field(
        description="Empty in lists; the whole journal on methodologyApplication(id).")

    @classmethod
    def from_row(cls, row: models.MethodologyApplication, documents: list[models.MethodologyDocument],
                 journal: list[models.MethodologyApplicationEvent] | None = None,
                 with_content: bool = False) -> "MethodologyApplication":
        return cls(
            id=strawberry.ID(str(row.id)), applicant_id=strawberry.ID(str(row.applicant_id)), code=row.code,
            name=row.name, behaviour_domain=row.behaviour_domain, activity_unit=row.activity_unit,
            calculation=models.CalculationKind(row.calculation), factor_mg_per_unit=row.factor_mg_per_unit,
            max_quantity=_milli(row.max_quantity_milli), status=models.ApplicationStatus(row.status),
            review_id=strawberry.ID(str(row.review_id)) if row.review_id else None, submitted_at=row.submitted_at,
            decided_at=row.decided_at, decision_reason=row.decision_reason,
            methodology_id=strawberry.ID(str(row.methodology_id)) if row.methodology_id else None,
            documents=[MethodologyDocument.from_row(d, with_content) for d in documents],
            journal=[MethodologyApplicationEvent(event=e.event, actor_id=strawberry.ID(str(e.actor_id)), at=e.at,
                                                 note=e.note) for e in journal or []])


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
    quantity: str = strawberry.field(description="The quantity the factor multiplied: the reported one, or "
                                                 "max(0, baseline - actual).")
    baseline_quantity: str | None
    actual_quantity: str | None
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
                   baseline_quantity=_milli(row.baseline_milli) if row.baseline_milli is not None else None,
                   actual_quantity=_milli(row.actual_milli) if row.actual_milli is not None else None,
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
    occurred_at: datetime
    quantity: str | None = strawberry.field(
        default=None, description="Activity quantity in the methodology's unit, e.g. \"12.4\" (at most 3 decimals), "
                                  "for a FACTOR_PER_UNIT methodology.")
    baseline_quantity: str | None = strawberry.field(
        default=None, description="For a BASELINE_MINUS_ACTUAL methodology: the baseline, e.g. a household's "
                                  "baseline kWh for the day.")
    actual_quantity: str | None = strawberry.field(
        default=None, description="For a BASELINE_MINUS_ACTUAL methodology: the actual quantity.")


@strawberry.input
class ReportBehaviourInput:
    items: list[ReportItemInput]


@strawberry.input(description="A document, its bytes base64 (at most 200,000 bytes decoded).")
class MethodologyDocumentInput:
    file_name: str
    media_type: str
    content_base64: str


@strawberry.input(description="Every item may be left out here; an incomplete application is refused naming each "
                              "missing one (MISSING_ITEM).")
class ApplyForMethodologyFilingInput:
    idempotency_key: str
    code: str | None = None
    name: str | None = None
    behaviour_domain: str | None = None
    activity_unit: str | None = None
    calculation: CalculationKind | None = None
    factor_mg_per_unit: Long | None = strawberry.field(default=None, description="mg CO2e per activity unit.")
    max_quantity: str | None = strawberry.field(default=None, description="The largest credible quantity of one report.")
    application_form: MethodologyDocumentInput | None = strawberry.field(default=None, description="备案申请表")
    methodology_text: MethodologyDocumentInput | None = strawberry.field(default=None, description="方法学文本")
    drafting_notes: MethodologyDocumentInput | None = strawberry.field(default=None, description="编制说明")


@strawberry.input
class FileMethodologyInput:
    application_id: strawberry.ID
    reason: str
    idempotency_key: str
    effective_from: date | None = strawberry.field(default=None, description="Default: today (Asia/Shanghai).")


@strawberry.input
class RefuseMethodologyApplicationInput:
    application_id: strawberry.ID
    reason: str
    idempotency_key: str


@strawberry.input
class RetireMethodologyInput:
    id: strawberry.ID


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


RetireMethodologyErrorCode = error_codes("RetireMethodologyErrorCode", ReductionCode.INVALID_TRANSITION)


@strawberry.type
class RetireMethodologyError(MutationError):
    code: RetireMethodologyErrorCode


@strawberry.type
class RetireMethodologyPayload:
    methodology: Methodology | None = None
    errors: list[RetireMethodologyError] = strawberry.field(default_factory=list)


ApplyForMethodologyFilingErrorCode = error_codes(
    "ApplyForMethodologyFilingErrorCode", ReductionCode.MISSING_ITEM, ReductionCode.INVALID_APPLICATION,
    ReductionCode.DOCUMENT_TOO_LARGE, ReductionCode.INVALID_QUANTITY, ReductionCode.QUANTITY_TOO_LARGE,
    CoreCode.IDEMPOTENCY_KEY_REUSED,
    # reviews.service.open_review checks its field, which here is always "methodology": not met in practice,
    # declared because the static check (tests/structure/test_conventions_error_codes.py) follows open_review
    ReviewCode.INVALID_FIELD)


@strawberry.type
class ApplyForMethodologyFilingError(MutationError):
    code: ApplyForMethodologyFilingErrorCode


@strawberry.type
class ApplyForMethodologyFilingPayload:
    application: MethodologyApplication | None = None
    errors: list[ApplyForMethodologyFilingError] = strawberry.field(default_factory=list)


FileMethodologyErrorCode = error_codes(
    "FileMethodologyErrorCode", ReductionCode.INVALID_TRANSITION, ReductionCode.EFFECTIVE_IN_PAST,
    CoreCode.IDEMPOTENCY_KEY_REUSED, *REVIEW_DECISION_CODES)


@strawberry.type
class FileMethodologyError(MutationError):
    code: FileMethodologyErrorCode


@strawberry.type
class FileMethodologyPayload:
    application: MethodologyApplication | None = None
    methodology: Methodology | None = None
    errors: list[FileMethodologyError] = strawberry.field(default_factory=list)


RefuseMethodologyApplicationErrorCode = error_codes(
    "RefuseMethodologyApplicationErrorCode", ReductionCode.INVALID_TRANSITION, CoreCode.IDEMPOTENCY_KEY_REUSED,
    *REVIEW_DECISION_CODES)


@strawberry.type
class RefuseMethodologyApplicationError(MutationError):
    code: RefuseMethodologyApplicationErrorCode


@strawberry.type
class RefuseMethodologyApplicationPayload:
    application: MethodologyApplication | None = None
    errors: list[RefuseMethodologyApplicationError] = strawberry.field(default_factory=list)


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
