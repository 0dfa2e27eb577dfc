"""GraphQL types of scenarios (碳普惠场景, art. 25-28): applications, marks (标识), the art. 28 pledge,
the public list, and a person's earnings per scenario."""

from __future__ import annotations

import base64
from datetime import datetime

import strawberry

from core.errors import CoreCode
from reviews.errors import ReviewCode
from scenarios import models
from scenarios.errors import ScenarioCode
from scenarios.marks import page_url
from scenarios.service import PublicScenario as DomainPublicScenario
from scenarios.service import ScenarioEarnings as DomainEarnings
from scenarios.service import ScenarioName, effective_status
from schema.errors import MutationError, error_codes
from schema.scalars import Long

ScenarioKind = strawberry.enum(models.ScenarioKind, name="ScenarioKind",
                               description="The kind of place or institution (art. 25).")
ShenzhenDistrict = strawberry.enum(models.District, name="ShenzhenDistrict",
                                   description="Shenzhen's districts (CITYWIDE: several, e.g. a metro line).")
ScenarioApplicationStatus = strawberry.enum(
    models.ScenarioStatus, name="ScenarioApplicationStatus",
    description="UNDER_REVIEW from submission (drawn scenario experts evaluate it), then GRANTED (a mark) or REFUSED.")
ScenarioMarkStatus = strawberry.enum(
    models.MarkStatus, name="ScenarioMarkStatus",
    description="ACTIVE, SUSPENDED (by the regulator, with a reason; it may be reinstated), WITHDRAWN (final) or "
                "EXPIRED (past validUntil, from the clock).")
# what reviews.service.decide_review refuses with (WRONG_STATUS is met first as ALREADY_DECIDED; declared
# because tests/structure/test_conventions_error_codes.py follows decide_review statically)
REVIEW_DECISION_CODES = (ReviewCode.OPINIONS_OUTSTANDING, ReviewCode.REASON_REQUIRED, ReviewCode.WRONG_STATUS)


@strawberry.type(description="The data-protection pledge of art. 28 an application accepts: its version and the "
                             "sha256 of its UTF-8 text.")
class ScenarioDataPledge:
    version: str
    sha256: str
    text: str


@strawberry.type(description="A scenario, named on a credit: its name and mark number.")
class ScenarioRef:
    id: strawberry.ID
    name: str
    mark_number: str

    @classmethod
    def from_name(cls, s: ScenarioName) -> "ScenarioRef":
        return cls(id=strawberry.ID(str(s.scenario_id)), name=s.name, mark_number=s.mark_number)


@strawberry.type(description="What a person earned in one scenario (scenario null: behaviour reported without one).")
class ScenarioEarnings:
    scenario: ScenarioRef | None
    reports: int = strawberry.field(description="Credited reports.")
    points: Long
    reduction_grams: Long = strawberry.field(description="CO2e the points were credited for.")

    @classmethod
    def from_earnings(cls, e: DomainEarnings) -> "ScenarioEarnings":
        return cls(scenario=ScenarioRef.from_name(e.scenario) if e.scenario else None, reports=e.reports,
                   points=e.points, reduction_grams=e.reduction_mg // 1000)


@strawberry.type(description="A scenario's mark (标识): its number, validity and status.")
class ScenarioMark:
    number: str = strawberry.field(description="SZCS-<year of grant>-<4 digits>.")
    granted_at: datetime
    valid_until: datetime = strawberry.field(description="00:00 Asia/Shanghai on the grant day's anniversary.")
    status: ScenarioMarkStatus
    status_reason: str | None = strawberry.field(description="The regulator's reason for the last status change.")
    page_url: str = strawberry.field(description="The public page its QR code opens.")

    @classmethod
    def from_row(cls, row: models.ScenarioMark, now: datetime, base_url: str) -> "ScenarioMark":
        return cls(number=row.number, granted_at=row.granted_at, valid_until=row.valid_until,
                   status=effective_status(row, now), status_reason=row.status_reason,
                   page_url=page_url(base_url, row.number))


@strawberry.type(description="A marked scenario as the public sees it (art. 29): nothing about its applicant.")
class PublicScenario:
    id: strawberry.ID
    name: str
    kind: ScenarioKind
    district: ShenzhenDistrict
    methodology_codes: list[str] = strawberry.field(description="The behaviours recorded there.")
    mark_number: str
    granted_at: datetime
    valid_until: datetime
    status: ScenarioMarkStatus
    status_reason: str | None = strawberry.field(description="Why it is suspended or withdrawn.")
    page_url: str

    @classmethod
    def from_public(cls, p: DomainPublicScenario, base_url: str) -> "PublicScenario":
        return cls(id=strawberry.ID(str(p.id)), name=p.name, kind=models.ScenarioKind(p.kind),
                   district=models.District(p.district), methodology_codes=list(p.methodology_codes),
                   mark_number=p.mark_number, granted_at=p.granted_at, valid_until=p.valid_until,
                   status=models.MarkStatus(p.status), status_reason=p.status_reason,
                   page_url=page_url(base_url, p.mark_number))


@strawberry.type(description="A document of a scenario application, with its sha256.")
class ScenarioDocument:
    file_name: str
    media_type: str
    sha256: str
    size_bytes: int
    content_base64: str | None = strawberry.field(description="The bytes, base64, on scenarioApplication(id) "
                                                              "(null in lists).")

    @classmethod
    def from_row(cls, row: models.ScenarioDocument, with_content: bool) -> "ScenarioDocument":
        return cls(file_name=row.file_name, media_type=row.media_type, sha256=row.sha256, size_bytes=row.size_bytes,
                   content_base64=base64.b64encode(row.content).decode() if with_content else None)


@strawberry.type(description="One step of a scenario's journal: who did what, when.")
class ScenarioEvent:
    event: str = strawberry.field(description="submitted, granted, refused, suspended, reinstated or withdrawn.")
    actor_id: strawberry.ID
    at: datetime
    note: str | None


@strawberry.type(description="An application to create a scenario (art. 27), and the scenario once granted.")
class ScenarioApplication:
    id: strawberry.ID
    applicant_id: strawberry.ID
    name: str
    kind: ScenarioKind
    address: str
    district: ShenzhenDistrict
    methodology_codes: list[str]
    pledge_version: str
    pledge_sha256: str
    status: ScenarioApplicationStatus
    review_id: strawberry.ID | None = strawberry.field(description="The experts' review, opened on submission.")
    submitted_at: datetime
    decided_at: datetime | None
    decision_reason: str | None
    mark: ScenarioMark | None = strawberry.field(description="Once granted.")
    documents: list[ScenarioDocument]
    journal: list[ScenarioEvent] = strawberry.field(description="Empty in lists; whole on scenarioApplication(id).")

    @classmethod
    def from_row(cls, row: models.Scenario, mark: models.ScenarioMark | None, documents: list[models.ScenarioDocument],
                 now: datetime, base_url: str, journal: list[models.ScenarioEvent] | None = None,
                 with_content: bool = False) -> "ScenarioApplication":
        return cls(
            id=strawberry.ID(str(row.id)), applicant_id=strawberry.ID(str(row.applicant_id)), name=row.name,
            kind=models.ScenarioKind(row.kind), address=row.address, district=models.District(row.district),
            methodology_codes=list(row.methodology_codes), pledge_version=row.pledge_version,
            pledge_sha256=row.pledge_sha256, status=models.ScenarioStatus(row.status),
            review_id=strawberry.ID(str(row.review_id)) if row.review_id else None, submitted_at=row.submitted_at,
            decided_at=row.decided_at, decision_reason=row.decision_reason,
            mark=ScenarioMark.from_row(mark, now, base_url) if mark else None,
            documents=[ScenarioDocument.from_row(d, with_content) for d in documents],
            journal=[ScenarioEvent(event=e.event, actor_id=strawberry.ID(str(e.actor_id)), at=e.at, note=e.note)
                     for e in journal or []])


# --- inputs ------------------------------------------------------------------------------------


@strawberry.input(description="A document, its bytes base64 (at most 200,000 bytes decoded); sha256, when given, "
                              "must be the bytes' own.")
class ScenarioDocumentInput:
    file_name: str
    media_type: str
    content_base64: str
    sha256: str | None = None


@strawberry.input(description="The art. 28 pledge accepted: the version and sha256 scenarioDataPledge publishes.")
class ScenarioPledgeInput:
    version: str
    sha256: str


@strawberry.input(description="Every item may be left out here; an incomplete application is refused naming each "
                              "missing one (MISSING_ITEM).")
class ApplyForScenarioInput:
    idempotency_key: str
    name: str | None = None
    kind: ScenarioKind | None = None
    address: str | None = None
    district: ShenzhenDistrict | None = None
    methodology_codes: list[str] = strawberry.field(default_factory=list,
                                                    description="The behaviours recorded there: methodology codes "
                                                                "in force.")
    pledge: ScenarioPledgeInput | None = None
    documents: list[ScenarioDocumentInput] = strawberry.field(default_factory=list)


@strawberry.input
class GrantScenarioMarkInput:
    application_id: strawberry.ID
    reason: str
    idempotency_key: str
    validity_years: int = strawberry.field(default=3, description="1 to 5 years from the grant.")


@strawberry.input
class RefuseScenarioApplicationInput:
    application_id: strawberry.ID
    reason: str
    idempotency_key: str


@strawberry.input(description="A mark to suspend, reinstate or withdraw, and the regulator's reason.")
class ChangeScenarioMarkInput:
    mark_number: str
    reason: str
    idempotency_key: str


# --- payloads ----------------------------------------------------------------------------------

ApplyForScenarioErrorCode = error_codes(
    "ApplyForScenarioErrorCode", ScenarioCode.MISSING_ITEM, ScenarioCode.INVALID_APPLICATION,
    ScenarioCode.UNKNOWN_METHODOLOGY, ScenarioCode.METHODOLOGY_NOT_PUBLISHED, ScenarioCode.DOCUMENT_TOO_LARGE,
    ScenarioCode.DOCUMENT_HASH_MISMATCH, ScenarioCode.PLEDGE_NOT_ACCEPTED, CoreCode.IDEMPOTENCY_KEY_REUSED,
    # open_review checks its field, here always "scenario": declared for the static check
    ReviewCode.INVALID_FIELD)


@strawberry.type
class ApplyForScenarioError(MutationError):
    code: ApplyForScenarioErrorCode


@strawberry.type
class ApplyForScenarioPayload:
    application: ScenarioApplication | None = None
    errors: list[ApplyForScenarioError] = strawberry.field(default_factory=list)


GrantScenarioMarkErrorCode = error_codes(
    "GrantScenarioMarkErrorCode", ScenarioCode.ALREADY_DECIDED, ScenarioCode.INVALID_VALIDITY,
    ScenarioCode.MARK_NUMBERS_EXHAUSTED,
    CoreCode.IDEMPOTENCY_KEY_REUSED, *REVIEW_DECISION_CODES)


@strawberry.type
class GrantScenarioMarkError(MutationError):
    code: GrantScenarioMarkErrorCode


@strawberry.type
class GrantScenarioMarkPayload:
    application: ScenarioApplication | None = None
    errors: list[GrantScenarioMarkError] = strawberry.field(default_factory=list)


RefuseScenarioApplicationErrorCode = error_codes(
    "RefuseScenarioApplicationErrorCode", ScenarioCode.ALREADY_DECIDED, CoreCode.IDEMPOTENCY_KEY_REUSED,
    *REVIEW_DECISION_CODES)


@strawberry.type
class RefuseScenarioApplicationError(MutationError):
    code: RefuseScenarioApplicationErrorCode


@strawberry.type
class RefuseScenarioApplicationPayload:
    application: ScenarioApplication | None = None
    errors: list[RefuseScenarioApplicationError] = strawberry.field(default_factory=list)


# what scenarios.service.change_mark refuses with, whichever the change
MARK_CHANGE_CODES = (ScenarioCode.MARK_NOT_ACTIVE, ScenarioCode.MARK_NOT_SUSPENDED, ScenarioCode.MARK_WITHDRAWN,
                     ScenarioCode.MARK_EXPIRED, ScenarioCode.REASON_REQUIRED, CoreCode.IDEMPOTENCY_KEY_REUSED)

SuspendScenarioMarkErrorCode = error_codes("SuspendScenarioMarkErrorCode", *MARK_CHANGE_CODES)


@strawberry.type
class SuspendScenarioMarkError(MutationError):
    code: SuspendScenarioMarkErrorCode


@strawberry.type
class SuspendScenarioMarkPayload:
    scenario: PublicScenario | None = None
    errors: list[SuspendScenarioMarkError] = strawberry.field(default_factory=list)


ReinstateScenarioMarkErrorCode = error_codes("ReinstateScenarioMarkErrorCode", *MARK_CHANGE_CODES)


@strawberry.type
class ReinstateScenarioMarkError(MutationError):
    code: ReinstateScenarioMarkErrorCode


@strawberry.type
class ReinstateScenarioMarkPayload:
    scenario: PublicScenario | None = None
    errors: list[ReinstateScenarioMarkError] = strawberry.field(default_factory=list)


WithdrawScenarioMarkErrorCode = error_codes("WithdrawScenarioMarkErrorCode", *MARK_CHANGE_CODES)


@strawberry.type
class WithdrawScenarioMarkError(MutationError):
    code: WithdrawScenarioMarkErrorCode


@strawberry.type
class WithdrawScenarioMarkPayload:
    scenario: PublicScenario | None = None
    errors: list[WithdrawScenarioMarkError] = strawberry.field(default_factory=list)
