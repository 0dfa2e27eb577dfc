"""GraphQL types of supervision (art. 30-32): violations and credit records, the public list of
sanctions in force, inspections with their follow-ups and history."""

from __future__ import annotations

from datetime import date, datetime

import orjson
import strawberry

from accounts.errors import AccountCode
from core.errors import CoreCode
from schema.errors import MutationError, error_codes
from schema.projects import PinnedDocument, PinnedDocumentInput
from supervision import models
from supervision.errors import SupervisionCode
from supervision.inspections import InspectionView
from supervision.violations import CreditEntry, PublicSanction
from wallets.errors import WalletCode

SupervisedRole = strawberry.enum(models.SupervisedRole, name="SupervisedRole",
                                 description="The role a violation is recorded against.")
Sanction = strawberry.enum(models.Sanction, name="Sanction",
                           description="warning: recorded only. suspension: for a period, ends by itself. "
                                       "revocation: of the role, for good.")
FollowUpStatus = strawberry.enum(models.FollowUpStatus, name="InspectionFollowUpStatus")


def _documents(items: list) -> list[PinnedDocument]:
    return [PinnedDocument(name=d["name"], sha256=d["sha256"], byte_size=d["byteSize"]) for d in items]


@strawberry.type(description="The correction of a violation recorded in error (a new entry; the violation stays).")
class ViolationRescission:
    reason: str
    rescinded_at: datetime


@strawberry.type(description="One entry of an organisation's credit record (信用记录), with its rescission if any.")
class Violation:
    id: strawberry.ID
    organisation_id: strawberry.ID
    organisation_name: str
    role: SupervisedRole
    article: int = strawberry.field(description="The article of the Measures (1-33).")
    finding: str
    documents: list[PinnedDocument]
    sanction: Sanction
    suspended_from: datetime | None
    suspended_until: datetime | None
    in_force: bool = strawberry.field(description="A running suspension or a revocation, not rescinded.")
    recorded_at: datetime
    rescission: ViolationRescission | None

    @classmethod
    def from_entry(cls, entry: CreditEntry, now: datetime) -> "Violation":
        v, r = entry.violation, entry.rescission
        return cls(id=strawberry.ID(str(v.id)), organisation_id=strawberry.ID(str(v.organisation_id)),
                   organisation_name=entry.organisation_name, role=models.SupervisedRole(v.role), article=v.article,
                   finding=v.finding, documents=_documents(v.documents), sanction=models.Sanction(v.sanction),
                   suspended_from=v.recorded_at if v.suspended_until else None, suspended_until=v.suspended_until,
                   in_force=entry.in_force(now), recorded_at=v.recorded_at,
                   rescission=ViolationRescission(reason=r.reason, rescinded_at=r.rescinded_at) if r else None)


@strawberry.type(description="A sanction in force, as the public sees it (art. 29, 31): the organisation's name, role, "
                             "article and period; no finding, documents or anything personal.")
class SanctionInForce:
    id: strawberry.ID
    organisation_name: str
    role: SupervisedRole
    article: int
    sanction: Sanction
    since: datetime
    until: datetime | None = strawberry.field(description="The end of a suspension; null for a revocation.")

    @classmethod
    def from_row(cls, row: PublicSanction) -> "SanctionInForce":
        return cls(id=strawberry.ID(str(row.violation_id)), organisation_name=row.organisation_name,
                   role=models.SupervisedRole(row.role), article=row.article, sanction=models.Sanction(row.sanction),
                   since=row.since, until=row.until)


@strawberry.type(description="A follow-up of an inspection: open until done, with a note.")
class InspectionFollowUp:
    id: strawberry.ID
    action: str
    due_on: date
    status: FollowUpStatus
    completion_note: str | None
    completed_at: datetime | None
    added_at: datetime

    @classmethod
    def from_row(cls, row: models.InspectionFollowUp) -> "InspectionFollowUp":
        return cls(id=strawberry.ID(str(row.id)), action=row.action, due_on=row.due_on,
                   status=models.FollowUpStatus(row.status), completion_note=row.completion_note,
                   completed_at=row.completed_at, added_at=row.added_at)


@strawberry.type(description="One step of an inspection's history, append-only.")
class InspectionEvent:
    action: str
    follow_up_id: strawberry.ID | None
    actor_id: strawberry.ID
    at: datetime
    details: str = strawberry.field(description="The step's details as JSON.")


@strawberry.type(description="The regulator's inspection of the platform or of one organisation (art. 30).")
class Inspection:
    id: strawberry.ID
    organisation_id: strawberry.ID | None = strawberry.field(description="Null: the platform itself.")
    inspected_on: date
    scope: str
    findings: str
    documents: list[PinnedDocument]
    recorded_at: datetime
    follow_ups: list[InspectionFollowUp]
    history: list[InspectionEvent]

    @classmethod
    def from_view(cls, view: InspectionView) -> "Inspection":
        row = view.inspection
        return cls(id=strawberry.ID(str(row.id)),
                   organisation_id=strawberry.ID(str(row.organisation_id)) if row.organisation_id else None,
                   inspected_on=row.inspected_on, scope=row.scope, findings=row.findings,
                   documents=_documents(row.documents), recorded_at=row.recorded_at,
                   follow_ups=[InspectionFollowUp.from_row(f) for f in view.follow_ups],
                   history=[InspectionEvent(action=e.action,
                                            follow_up_id=strawberry.ID(str(e.follow_up_id)) if e.follow_up_id else None,
                                            actor_id=strawberry.ID(str(e.actor_id)), at=e.at,
                                            details=orjson.dumps(e.details).decode()) for e in view.history])


# --- inputs ------------------------------------------------------------------------------------


@strawberry.input
class RecordViolationInput:
    organisation_id: strawberry.ID
    role: SupervisedRole
    article: int = strawberry.field(description="The article of the Measures violated (1-33).")
    finding: str
    documents: list[PinnedDocumentInput] = strawberry.field(description="At least one, by sha256.")
    sanction: Sanction
    suspended_until: datetime | None = strawberry.field(
        default=None, description="For a suspension only: its end, within two years; it starts at once.")
    idempotency_key: str


@strawberry.input
class RescindViolationInput:
    violation_id: strawberry.ID
    reason: str
    idempotency_key: str


@strawberry.input
class RecordInspectionInput:
    organisation_id: strawberry.ID | None = strawberry.field(default=None,
                                                             description="Leave out for the platform itself.")
    inspected_on: date
    scope: str
    findings: str
    documents: list[PinnedDocumentInput] = strawberry.field(default_factory=list)
    idempotency_key: str


@strawberry.input
class AddInspectionFollowUpInput:
    inspection_id: strawberry.ID
    action: str
    due_on: date
    idempotency_key: str


@strawberry.input
class CompleteFollowUpInput:
    follow_up_id: strawberry.ID
    note: str
    idempotency_key: str


# --- payloads ----------------------------------------------------------------------------------

_IDEMPOTENT = (CoreCode.IDEMPOTENCY_KEY_REUSED,)

# NOT_ACTIVE, REASON_REQUIRED (accounts.service.revoke_role) and HOLD_SETTLED (the release of held
# redemptions) are unreachable in practice: the role is checked active under its lock, the reason is
# the finding, and only held redemptions are released; they stay declared because the calls can say so
RecordViolationErrorCode = error_codes(
    "RecordViolationErrorCode", *_IDEMPOTENT, SupervisionCode.ROLE_NOT_HELD, SupervisionCode.INVALID_ARTICLE,
    SupervisionCode.FINDING_REQUIRED, SupervisionCode.INVALID_DOCUMENT, SupervisionCode.INVALID_PERIOD,
    SupervisionCode.REVOCATION_NOT_APPLICABLE, AccountCode.NOT_ACTIVE, AccountCode.REASON_REQUIRED,
    WalletCode.HOLD_SETTLED)


@strawberry.type
class RecordViolationError(MutationError):
    code: RecordViolationErrorCode


@strawberry.type
class RecordViolationPayload:
    violation: Violation | None = None
    released_redemptions: int = strawberry.field(
        default=0, description="Held redemptions released to their lots because of this sanction.")
    errors: list[RecordViolationError] = strawberry.field(default_factory=list)


RescindViolationErrorCode = error_codes("RescindViolationErrorCode", *_IDEMPOTENT, SupervisionCode.ALREADY_RESCINDED,
                                        SupervisionCode.REASON_REQUIRED)


@strawberry.type
class RescindViolationError(MutationError):
    code: RescindViolationErrorCode


@strawberry.type
class RescindViolationPayload:
    violation: Violation | None = None
    errors: list[RescindViolationError] = strawberry.field(default_factory=list)


RecordInspectionErrorCode = error_codes("RecordInspectionErrorCode", *_IDEMPOTENT, SupervisionCode.INVALID_DATE,
                                        SupervisionCode.SCOPE_REQUIRED, SupervisionCode.FINDING_REQUIRED,
                                        SupervisionCode.INVALID_DOCUMENT)


@strawberry.type
class RecordInspectionError(MutationError):
    code: RecordInspectionErrorCode


@strawberry.type
class RecordInspectionPayload:
    inspection: Inspection | None = None
    errors: list[RecordInspectionError] = strawberry.field(default_factory=list)


AddInspectionFollowUpErrorCode = error_codes("AddInspectionFollowUpErrorCode", *_IDEMPOTENT,
                                             SupervisionCode.INVALID_DATE, SupervisionCode.SCOPE_REQUIRED)


@strawberry.type
class AddInspectionFollowUpError(MutationError):
    code: AddInspectionFollowUpErrorCode


@strawberry.type
class AddInspectionFollowUpPayload:
    inspection: Inspection | None = None
    follow_up: InspectionFollowUp | None = None
    errors: list[AddInspectionFollowUpError] = strawberry.field(default_factory=list)


CompleteFollowUpErrorCode = error_codes("CompleteFollowUpErrorCode", *_IDEMPOTENT, SupervisionCode.ALREADY_DONE,
                                        SupervisionCode.NOTE_REQUIRED)


@strawberry.type
class CompleteFollowUpError(MutationError):
    code: CompleteFollowUpErrorCode


@strawberry.type
class CompleteFollowUpPayload:
    inspection: Inspection | None = None
    follow_up: InspectionFollowUp | None = None
    errors: list[CompleteFollowUpError] = strawberry.field(default_factory=list)
