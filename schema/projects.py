"""GraphQL types of reduction projects, CER issuance, the public registry, tracing, CER accounts,
the regulator's cancellations and conservation audit (surrendered tonnes included, art. 18)."""

from __future__ import annotations

import enum
from datetime import date, datetime

import strawberry

from core.errors import CoreCode
from neutrality.cers import blocks, models, registry
from neutrality.cers.notice import CalendarYear, NoticeEnd
from neutrality.errors import RegistryCode
from reviews.errors import ReviewCode
from schema.errors import MutationError, error_codes
from schema.market import CerOfferProject
from schema.offsets import EtsSurrender
from schema.scalars import Long

CerProjectStatus = strawberry.enum(
    models.ProjectStatus, name="CerProjectStatus",
    description="draft -> notice (public notice, pledge taken) -> declared (7 working days later) -> verified "
                "(the commissioned verifier's report is in; drawn experts evaluate it) -> filed (by the regulator "
                "after every opinion; CERs may be issued); or rejected.")
CommissionStatus = strawberry.enum(
    models.CommissionStatus, name="VerifierCommissionStatus",
    description="commissioned: the report is awaited. reported: the report is in, under the experts' review. "
                "withdrawn: the regulator withdrew it.")
CerBlockState = strawberry.enum(
    models.BlockState, name="CerBlockState",
    description="held: in the holder's account. reserved: promised to a purchase awaiting payment. in_review: held "
                "for a neutrality application awaiting review (art. 19). retired: claimed "
                "for a carbon-neutral beneficiary, final. cancelled: removed by the regulator without a claim, final. "
                "surrendered: surrendered for Shenzhen ETS compliance (履约抵销, art. 18), final.")


@strawberry.type(description="Tonnes of one vintage by where they are now: issued = held + reserved + inReview + "
                             "retired + cancelled + surrendered.")
class CerVintageTotals:
    vintage: int
    issued: Long
    held: Long
    reserved: Long
    in_review: Long = strawberry.field(description="Held for neutrality applications awaiting review (art. 19).")
    retired: Long
    cancelled: Long
    surrendered: Long = strawberry.field(description="Surrendered for ETS compliance (art. 18).")

    @classmethod
    def from_row(cls, row: blocks.StateTotals) -> "CerVintageTotals":
        return cls(vintage=row.vintage, issued=row.issued, held=row.held, reserved=row.reserved,
                   in_review=row.in_review, retired=row.retired, cancelled=row.cancelled,
                   surrendered=row.surrendered)


@strawberry.type(description="Verified tonnes of one vintage, from the commissioned verifier's report (reports "
                             "from before independent verification carry no commission).")
class CerVerifierReport:
    id: strawberry.ID
    verifier_name: str
    report_reference: str = strawberry.field(description="sha256:<hex> of the signed submission, or the reference "
                                                         "an owner typed in before independent verification.")
    commission_id: strawberry.ID | None
    vintage: int
    verified_tonnes: Long
    issued_tonnes: Long = strawberry.field(description="Of the verified tonnes, how many are issued so far.")
    submitted_at: datetime

    @classmethod
    def from_row(cls, row: models.VerifierReport) -> "CerVerifierReport":
        return cls(id=strawberry.ID(str(row.id)), verifier_name=row.verifier_name,
                   report_reference=row.report_reference,
                   commission_id=strawberry.ID(str(row.commission_id)) if row.commission_id else None,
                   vintage=row.vintage, verified_tonnes=row.verified_tonnes,
                   issued_tonnes=row.issued_tonnes, submitted_at=row.submitted_at)


@strawberry.type(description="A document of a report, pinned by its sha256.")
class PinnedDocument:
    name: str
    sha256: str
    byte_size: Long


@strawberry.type(description="The regulator's commission of an independent verifier for a project (art. 17).")
class VerifierCommission:
    id: strawberry.ID
    project_id: strawberry.ID
    verifier_id: strawberry.ID
    verifier_name: str
    status: CommissionStatus
    experts_wanted: int
    commissioned_at: datetime
    reported_at: datetime | None
    report_sha256: str | None = strawberry.field(description="sha256 of the canonical JSON of the submitted report.")
    documents: list[PinnedDocument]
    review_id: strawberry.ID | None = strawberry.field(description="The experts' review of the report.")

    @classmethod
    def from_row(cls, row: models.VerifierCommission, verifier_name: str) -> "VerifierCommission":
        return cls(id=strawberry.ID(str(row.id)), project_id=strawberry.ID(str(row.project_id)),
                   verifier_id=strawberry.ID(str(row.verifier_id)), verifier_name=verifier_name,
                   status=models.CommissionStatus(row.status), experts_wanted=row.experts_wanted,
                   commissioned_at=row.commissioned_at, reported_at=row.reported_at, report_sha256=row.report_sha256,
                   documents=[PinnedDocument(name=d["name"], sha256=d["sha256"], byte_size=d["byteSize"])
                              for d in row.documents or []],
                   review_id=strawberry.ID(str(row.review_id)) if row.review_id else None)


@strawberry.type(description="CERs issued to the project owner as one serial block.")
class CerIssuance:
    id: strawberry.ID
    vintage: int
    first_serial: Long
    last_serial: Long
    tonnes: Long
    serials: str = strawberry.field(description="SZCER-<project>-<vintage>-<first>-<last>")
    issued_at: datetime

    @classmethod
    def from_row(cls, row: models.Issuance, code: str) -> "CerIssuance":
        return cls(id=strawberry.ID(str(row.id)), vintage=row.vintage, first_serial=row.first_serial,
                   last_serial=row.last_serial, tonnes=row.last_serial - row.first_serial + 1,
                   serials=blocks.serial_label(code, row.vintage, row.first_serial, row.last_serial),
                   issued_at=row.issued_at)


@strawberry.type(description="The public notice (公示) of a project.")
class CerProjectNotice:
    started_at: datetime
    declare_from: date = strawberry.field(
        description="First date (Asia/Shanghai) on which the declaration may be submitted: 7 full working days of "
                    "notice on China's official calendar, holidays and make-up workdays included.")
    provisional: bool = strawberry.field(
        description="True when the count reaches a year whose official holidays are not known yet (counted "
                    "Monday to Friday less fixed-date holidays); the declaration is refused (CALENDAR_NOT_PUBLISHED) "
                    "until the regulator enters that year's schedule.")


@strawberry.type(description="The owner's pledge that these reductions are in no other mechanism (CCER, green "
                             "electricity trading, green certificates).")
class CerPledge:
    text: str
    pledged_at: datetime


@strawberry.type(description="A reduction project (art. 15-17). Published projects are public; drafts only to their "
                             "owner and the regulator.")
class CerProject:
    id: strawberry.ID
    code: str = strawberry.field(description="The public code used in serial numbers, e.g. P000012.")
    title: str
    methodology_code: str
    location: str
    description: str
    expected_tonnes_per_year: Long
    benefit_sharing: str
    status: CerProjectStatus
    pledge: CerPledge | None
    notice: CerProjectNotice | None
    declared_at: datetime | None
    filed_at: datetime | None
    decision_note: str | None = strawberry.field(description="The regulator's filing note or rejection reason.")
    created_at: datetime
    verifier_reports: list[CerVerifierReport]
    commissions: list[VerifierCommission] = strawberry.field(description="Verifiers commissioned, oldest first.")
    flags: list[str] = strawberry.field(description="Art. 32: a false report is recorded against a verifier whose "
                                                    "report this project rests on (the recorded reasons).")
    frozen: bool = strawberry.field(description="Its tonnes are frozen pending review: no issuance, offer, sale or "
                                                "retirement.")
    frozen_reason: str | None
    issuances: list[CerIssuance]
    totals: list[CerVintageTotals] = strawberry.field(description="Per vintage, where the issued tonnes are now.")
    mine: bool = strawberry.field(description="True when the caller owns the project.")

    @classmethod
    def from_row(cls, row: models.Project, *, notice: NoticeEnd | None, reports: list, issuances: list,
                 totals: list, commissions: list = (), flags: list = (), viewer=None) -> "CerProject":
        """`notice`: when the project's notice ends, worked out by the domain (neutrality.cers.notice.notices_of)."""
        return cls(
            id=strawberry.ID(str(row.id)), code=row.code, title=row.title, methodology_code=row.methodology_code,
            location=row.location, description=row.description, expected_tonnes_per_year=row.expected_tonnes_per_year,
            benefit_sharing=row.benefit_sharing, status=models.ProjectStatus(row.status),
            pledge=CerPledge(text=row.pledge_text, pledged_at=row.pledged_at) if row.pledged_at else None,
            notice=CerProjectNotice(started_at=row.notice_started_at, declare_from=notice.declare_from,
                                    provisional=notice.provisional) if notice else None,
            declared_at=row.declared_at, filed_at=row.filed_at, decision_note=row.decision_note,
            created_at=row.created_at, verifier_reports=[CerVerifierReport.from_row(r) for r in reports],
            commissions=list(commissions), flags=list(flags), frozen=row.frozen_at is not None,
            frozen_reason=row.frozen_reason,
            issuances=[CerIssuance.from_row(i, row.code) for i in issuances],
            totals=[CerVintageTotals.from_row(t) for t in totals], mine=viewer is not None and row.owner_id == viewer)


@strawberry.type(description="Live CERs of one project, vintage and state in the caller's CER account.")
class CerHolding:
    project: CerOfferProject
    vintage: int
    state: CerBlockState
    tonnes: Long
    serials: list[str]

    @classmethod
    def from_row(cls, row: registry.Holding) -> "CerHolding":
        return cls(project=CerOfferProject.from_row(row.project), vintage=row.vintage,
                   state=models.BlockState(row.state), tonnes=row.tonnes, serials=row.serials)


@strawberry.type(description="One act on a tonne: issue, reserve, release, deliver, review, retire, cancel or "
                             "surrender.")
class CerTraceStep:
    seq: Long = strawberry.field(description="The journal's order.")
    kind: str
    at: datetime
    serials: str = strawberry.field(description="The serial range the act moved, which includes the traced tonne.")
    from_state: CerBlockState | None
    to_state: CerBlockState
    certificate_number: str | None = strawberry.field(description="For a retirement: the carbon-neutral certificate.")
    surrender: EtsSurrender | None = strawberry.field(
        default=None, description="For a surrender for ETS compliance (art. 18): the compliance entity and year.")


@strawberry.type(description="A tonne's history from issuance on. Holders are not named.")
class CerTrace:
    serial: str
    project: CerOfferProject
    vintage: int
    state: CerBlockState | None = strawberry.field(description="Where the tonne is now.")
    steps: list[CerTraceStep]
    flags: list[str] = strawberry.field(description="Art. 32: a false report is recorded against a verifier whose "
                                                    "report this tonne rests on (the recorded reasons).")

    @classmethod
    def from_row(cls, row: registry.Trace) -> "CerTrace":
        return cls(serial=f"{blocks.SERIAL_PREFIX}-{row.project.code}-{row.vintage}-{row.serial:09d}",
                   project=CerOfferProject.from_row(row.project), vintage=row.vintage,
                   state=models.BlockState(row.state) if row.state else None,
                   steps=[CerTraceStep(seq=s.seq, kind=s.kind, at=s.at, serials=s.label,
                                       from_state=models.BlockState(s.from_state) if s.from_state else None,
                                       to_state=models.BlockState(s.to_state), certificate_number=s.certificate_number,
                                       surrender=EtsSurrender.from_row(s.surrender) if s.surrender else None)
                          for s in row.steps], flags=list(row.flags))


@strawberry.type(description="CERs the regulator removed without a claim, and why.")
class CerCancellation:
    id: strawberry.ID
    project: CerOfferProject
    vintage: int
    serials: str
    tonnes: Long
    reason: str
    cancelled_at: datetime

    @classmethod
    def from_row(cls, row: models.CerCancellation, project: models.Project) -> "CerCancellation":
        return cls(id=strawberry.ID(str(row.id)), project=CerOfferProject.from_row(project), vintage=row.vintage,
                   serials=blocks.serial_label(project.code, row.vintage, row.first_serial, row.last_serial),
                   tonnes=row.last_serial - row.first_serial + 1, reason=row.reason, cancelled_at=row.cancelled_at)


@strawberry.type
class CerAuditLine:
    project_code: str
    vintage: int
    issued: Long = strawberry.field(description="From the move journal.")
    issued_by_issuances: Long = strawberry.field(description="From the issuance records.")
    held: Long
    reserved: Long
    in_review: Long = strawberry.field(description="Held for neutrality applications awaiting review (art. 19).")
    retired: Long
    cancelled: Long
    surrendered: Long = strawberry.field(description="Surrendered for ETS compliance (art. 18), final.")
    balanced: bool


@strawberry.type(description="Conservation recomputed from the journal and live blocks.")
class CerAudit:
    balanced: bool
    overlapping_blocks: int = strawberry.field(description="Pairs of live blocks sharing a serial: always 0.")
    lines: list[CerAuditLine]

    @classmethod
    def from_row(cls, row: registry.Audit) -> "CerAudit":
        return cls(balanced=row.balanced, overlapping_blocks=row.overlapping_blocks, lines=[
            CerAuditLine(project_code=line.project.code, vintage=line.totals.vintage, issued=line.totals.issued,
                         issued_by_issuances=line.issued_by_issuances, held=line.totals.held,
                         reserved=line.totals.reserved, in_review=line.totals.in_review,
                         retired=line.totals.retired,
                         cancelled=line.totals.cancelled, surrendered=line.totals.surrendered,
                         balanced=line.balanced)
            for line in row.lines])


@strawberry.enum(description="Where a year's working-day calendar comes from.")
class CalendarSource(enum.Enum):
    PACKAGE = "package"  # the chinesecalendar package, from the State Council's notices
    ENTERED = "entered"  # the schedule the regulator entered from the State Council's notice
    PROVISIONAL = "provisional"  # not known yet: Monday to Friday less the fixed-date holidays


HOLIDAYS_DOC = "Every day off of the year's breaks, weekends inside included."
MAKE_UP_DOC = "Weekend days worked instead (调休)."


@strawberry.type(description="One year's official schedule as the regulator entered it (the latest version counts).")
class WorkingDaySchedule:
    version: int
    holidays: list[date] = strawberry.field(description=HOLIDAYS_DOC)
    make_up_workdays: list[date] = strawberry.field(description=MAKE_UP_DOC)
    source_reference: str = strawberry.field(description="The State Council notice it comes from.")
    entered_at: datetime

    @classmethod
    def from_row(cls, row: models.WorkingDaySchedule) -> "WorkingDaySchedule":
        return cls(version=row.version, holidays=list(row.holidays), make_up_workdays=list(row.makeup_workdays),
                   source_reference=row.source_reference, entered_at=row.entered_at)


@strawberry.type(description="A year of the working-day calendar the public notice counts on (art. 16).")
class WorkingDayCalendarYear:
    year: int
    source: CalendarSource
    provisional: bool = strawberry.field(description="No official schedule yet: declarations counted on it wait.")
    schedule: WorkingDaySchedule | None = strawberry.field(description="For an entered year, the version that counts.")

    @classmethod
    def from_row(cls, row: CalendarYear) -> "WorkingDayCalendarYear":
        return cls(year=row.year, source=CalendarSource(row.source or "provisional"), provisional=row.source is None,
                   schedule=WorkingDaySchedule.from_row(row.schedule) if row.schedule else None)


# --- inputs ---------------------------------------------------------------------------------------------


@strawberry.input
class RegisterCerProjectInput:
    title: str
    methodology_code: str
    location: str
    expected_tonnes_per_year: Long
    description: str = ""
    benefit_sharing: str = strawberry.field(default="", description="How the benefits are shared (e.g. with residents).")


@strawberry.input(description="Only a draft can be edited; leave a field out to keep it.")
class UpdateCerProjectInput:
    project_id: strawberry.ID
    title: str | None = None
    methodology_code: str | None = None
    location: str | None = None
    expected_tonnes_per_year: Long | None = None
    description: str | None = None
    benefit_sharing: str | None = None


@strawberry.input
class PublishCerProjectInput:
    project_id: strawberry.ID
    pledge_accepted: bool = strawberry.field(
        description="The owner pledges the reductions are not registered in CCER, green electricity trading or green "
                    "certificates (the text is in the project's pledge once published).")


@strawberry.input
class DeclareCerProjectInput:
    project_id: strawberry.ID


@strawberry.input
class FileCerProjectInput:
    project_id: strawberry.ID
    note: str | None = None


@strawberry.input
class RejectCerProjectInput:
    project_id: strawberry.ID
    reason: str


@strawberry.input
class IssueCersInput:
    verifier_report_id: strawberry.ID
    tonnes: Long
    idempotency_key: str


@strawberry.input
class CancelCersInput:
    project_id: strawberry.ID
    vintage: int
    first_serial: Long
    last_serial: Long
    reason: str
    idempotency_key: str


@strawberry.input(description="A year's official schedule as the State Council published it. A second entry for "
                              "the same year is a correction: a new version that replaces the first.")
class EnterWorkingDayScheduleInput:
    year: int
    holidays: list[date] = strawberry.field(description=HOLIDAYS_DOC)
    make_up_workdays: list[date] = strawberry.field(description=MAKE_UP_DOC)
    source_reference: str = strawberry.field(description="The State Council notice (e.g. 国办发明电〔2026〕N号).")
    idempotency_key: str


# --- payloads ---------------------------------------------------------------------------------------------

RegisterCerProjectErrorCode = error_codes("RegisterCerProjectErrorCode", RegistryCode.METHODOLOGY_NOT_PUBLISHED)


@strawberry.type
class RegisterCerProjectError(MutationError):
    code: RegisterCerProjectErrorCode


@strawberry.type
class RegisterCerProjectPayload:
    project: CerProject | None = None
    errors: list[RegisterCerProjectError] = strawberry.field(default_factory=list)


UpdateCerProjectErrorCode = error_codes("UpdateCerProjectErrorCode", RegistryCode.WRONG_STATUS,
                                       RegistryCode.METHODOLOGY_NOT_PUBLISHED)


@strawberry.type
class UpdateCerProjectError(MutationError):
    code: UpdateCerProjectErrorCode


@strawberry.type
class UpdateCerProjectPayload:
    project: CerProject | None = None
    errors: list[UpdateCerProjectError] = strawberry.field(default_factory=list)


PublishCerProjectErrorCode = error_codes(
    "PublishCerProjectErrorCode", RegistryCode.WRONG_STATUS, RegistryCode.PLEDGE_REQUIRED)


@strawberry.type
class PublishCerProjectError(MutationError):
    code: PublishCerProjectErrorCode


@strawberry.type
class PublishCerProjectPayload:
    project: CerProject | None = None
    errors: list[PublishCerProjectError] = strawberry.field(default_factory=list)


DeclareCerProjectErrorCode = error_codes(
    "DeclareCerProjectErrorCode", RegistryCode.WRONG_STATUS, RegistryCode.NOTICE_NOT_OVER,
    RegistryCode.CALENDAR_NOT_PUBLISHED)


@strawberry.type
class DeclareCerProjectError(MutationError):
    code: DeclareCerProjectErrorCode


@strawberry.type
class DeclareCerProjectPayload:
    project: CerProject | None = None
    errors: list[DeclareCerProjectError] = strawberry.field(default_factory=list)


FileCerProjectErrorCode = error_codes("FileCerProjectErrorCode", RegistryCode.WRONG_STATUS,
                                      RegistryCode.REASON_REQUIRED, ReviewCode.OPINIONS_OUTSTANDING,
                                      ReviewCode.REASON_REQUIRED, ReviewCode.WRONG_STATUS)


@strawberry.type
class FileCerProjectError(MutationError):
    code: FileCerProjectErrorCode


@strawberry.type
class FileCerProjectPayload:
    project: CerProject | None = None
    errors: list[FileCerProjectError] = strawberry.field(default_factory=list)


RejectCerProjectErrorCode = error_codes(
    "RejectCerProjectErrorCode", RegistryCode.WRONG_STATUS, RegistryCode.REASON_REQUIRED,
    ReviewCode.OPINIONS_OUTSTANDING)


@strawberry.type
class RejectCerProjectError(MutationError):
    code: RejectCerProjectErrorCode


@strawberry.type
class RejectCerProjectPayload:
    project: CerProject | None = None
    errors: list[RejectCerProjectError] = strawberry.field(default_factory=list)


IssueCersErrorCode = error_codes(
    "IssueCersErrorCode", RegistryCode.WRONG_STATUS, RegistryCode.EXCEEDS_VERIFIED, CoreCode.IDEMPOTENCY_KEY_REUSED,
    RegistryCode.PROJECT_FROZEN)


@strawberry.type
class IssueCersError(MutationError):
    code: IssueCersErrorCode


@strawberry.type
class IssueCersPayload:
    issuance: CerIssuance | None = None
    project: CerProject | None = None
    errors: list[IssueCersError] = strawberry.field(default_factory=list)


CancelCersErrorCode = error_codes(
    "CancelCersErrorCode", RegistryCode.REASON_REQUIRED, RegistryCode.SERIALS_NOT_CANCELLABLE,
    CoreCode.IDEMPOTENCY_KEY_REUSED, RegistryCode.INSUFFICIENT_TONNES)


@strawberry.type
class CancelCersError(MutationError):
    code: CancelCersErrorCode


@strawberry.type
class CancelCersPayload:
    cancellation: CerCancellation | None = None
    errors: list[CancelCersError] = strawberry.field(default_factory=list)


@strawberry.input
class VintageTonnesInput:
    vintage: int
    tonnes: Long


@strawberry.input
class PinnedDocumentInput:
    name: str
    sha256: str = strawberry.field(description="64 hexadecimal digits.")
    byte_size: Long


@strawberry.input
class CommissionVerifierInput:
    project_id: strawberry.ID
    verifier_id: strawberry.ID = strawberry.field(description="An organisation holding the VERIFIER role.")
    experts_wanted: int = strawberry.field(default=3, description="Experts to draw to evaluate its report.")


@strawberry.input
class WithdrawVerifierCommissionInput:
    commission_id: strawberry.ID
    reason: str


@strawberry.input
class SubmitVerificationReportInput:
    commission_id: strawberry.ID
    vintages: list[VintageTonnesInput]
    documents: list[PinnedDocumentInput]
    idempotency_key: str


@strawberry.input
class RecordFalseVerificationReportInput:
    verifier_id: strawberry.ID
    commission_id: strawberry.ID | None = None
    reason: str
    freeze_unsold: bool = strawberry.field(description="Freeze the unsold tonnes of every project resting on this "
                                                       "verifier's reports, pending review.")
    idempotency_key: str


@strawberry.input
class UnfreezeCerProjectInput:
    project_id: strawberry.ID
    reason: str


CommissionVerifierErrorCode = error_codes(
    "CommissionVerifierErrorCode", RegistryCode.WRONG_STATUS, RegistryCode.NOT_A_VERIFIER,
    RegistryCode.VERIFIER_SANCTIONED, RegistryCode.VERIFIER_NOT_INDEPENDENT, RegistryCode.ALREADY_COMMISSIONED)


@strawberry.type
class CommissionVerifierError(MutationError):
    code: CommissionVerifierErrorCode


@strawberry.type
class CommissionVerifierPayload:
    commission: VerifierCommission | None = None
    errors: list[CommissionVerifierError] = strawberry.field(default_factory=list)


WithdrawVerifierCommissionErrorCode = error_codes(
    "WithdrawVerifierCommissionErrorCode", RegistryCode.WRONG_STATUS, RegistryCode.REASON_REQUIRED)


@strawberry.type
class WithdrawVerifierCommissionError(MutationError):
    code: WithdrawVerifierCommissionErrorCode


@strawberry.type
class WithdrawVerifierCommissionPayload:
    commission: VerifierCommission | None = None
    errors: list[WithdrawVerifierCommissionError] = strawberry.field(default_factory=list)


SubmitVerificationReportErrorCode = error_codes(
    "SubmitVerificationReportErrorCode", RegistryCode.WRONG_STATUS, RegistryCode.NOT_A_VERIFIER,
    RegistryCode.VERIFIER_SANCTIONED, RegistryCode.INVALID_DOCUMENT, ReviewCode.INVALID_FIELD,
    CoreCode.IDEMPOTENCY_KEY_REUSED)


@strawberry.type
class SubmitVerificationReportError(MutationError):
    code: SubmitVerificationReportErrorCode


@strawberry.type
class SubmitVerificationReportPayload:
    commission: VerifierCommission | None = None
    errors: list[SubmitVerificationReportError] = strawberry.field(default_factory=list)


RecordFalseVerificationReportErrorCode = error_codes(
    "RecordFalseVerificationReportErrorCode", RegistryCode.REASON_REQUIRED, CoreCode.IDEMPOTENCY_KEY_REUSED)


@strawberry.type
class RecordFalseVerificationReportError(MutationError):
    code: RecordFalseVerificationReportErrorCode


@strawberry.type(description="A false report recorded against a verifier (art. 32).")
class VerifierSanction:
    id: strawberry.ID
    verifier_id: strawberry.ID
    commission_id: strawberry.ID | None
    reason: str
    froze_unsold: bool
    recorded_at: datetime
    frozen_projects: list[str] = strawberry.field(description="Codes of the projects frozen now.")


@strawberry.type
class RecordFalseVerificationReportPayload:
    sanction: VerifierSanction | None = None
    errors: list[RecordFalseVerificationReportError] = strawberry.field(default_factory=list)


UnfreezeCerProjectErrorCode = error_codes("UnfreezeCerProjectErrorCode", RegistryCode.WRONG_STATUS,
                                          RegistryCode.REASON_REQUIRED)


@strawberry.type
class UnfreezeCerProjectError(MutationError):
    code: UnfreezeCerProjectErrorCode


@strawberry.type
class UnfreezeCerProjectPayload:
    project: CerProject | None = None
    errors: list[UnfreezeCerProjectError] = strawberry.field(default_factory=list)
EnterWorkingDayScheduleErrorCode = error_codes("EnterWorkingDayScheduleErrorCode", CoreCode.IDEMPOTENCY_KEY_REUSED)


@strawberry.type
class EnterWorkingDayScheduleError(MutationError):
    code: EnterWorkingDayScheduleErrorCode


@strawberry.type
class EnterWorkingDaySchedulePayload:
    calendar_year: WorkingDayCalendarYear | None = None
    errors: list[EnterWorkingDayScheduleError] = strawberry.field(default_factory=list)
