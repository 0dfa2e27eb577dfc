"""Scenarios (碳普惠场景, art. 25-28): an approved organisation's application, the drawn experts'
evaluation, the regulator's grant of a mark (标识) or refusal, and the mark's suspension,
reinstatement and withdrawal.

The flow copies the methodology filing (reductions/filing.py): an approved organisation (a role
the regulator approved, schema.permissions.APPROVED_ORGANISATIONS, checked where the mutation is
declared) applies with the scenario's name, kind, address and district, the behaviours recorded
there (codes of methodologies in force), the data-protection pledge of art. 28 as published
(version and sha256 of its text) and its documents (bytes stored with their sha256). A complete
application opens a review of drawn scenario experts (reviews/, art. 27); once every seated expert
has given an opinion, the regulator grants a mark or refuses, with reasons, deciding the review in
the same transaction.

A mark is numbered `SZCS-<year>-<4 digits>`, consecutively per Asia/Shanghai year of the grant, from
scenario_mark_counters; it is valid from the grant for the years the regulator sets (1 to 5, 3 by
default) to 00:00 Asia/Shanghai of the grant day's anniversary. Then it is expired, read from the
clock (no job). The regulator suspends (with a reason) and reinstates it, or withdraws it for good.

Lock order: the scenario row (FOR UPDATE), then its review (reviews.service.decide_review), then the
year's counter row (the upsert), then the mark row; a mark's status changes lock the mark row only.
Crash-safe order: everything in one transaction; record_audit_event is its last database step."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, time, timezone

from sqlalchemy import and_, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from accounts.service import record_audit_event
from core.clock import BUSINESS_TZ, Clock, business_date
from core.db import get_row
from core.documents import Attachment, check_attachment
from core.errors import DomainError, DomainErrors, NotFound
from core.keyset import Page, keyset_page
from core.text import clean_text
from reductions.models import BehaviourReport, Methodology, ReportOutcome
from reductions.service import in_force_on
from reviews import service as reviews
from reviews.models import ExpertField, SubjectKind
from scenarios.errors import ScenarioCode
from scenarios.marks import grant_year, mark_number, normalise_number
from scenarios.models import (District, MarkStatus, Scenario, ScenarioDocument, ScenarioEvent, ScenarioKind,
                              ScenarioMark, ScenarioMarkEvent, ScenarioStatus)
from wallets.validity import anniversary

# art. 27 does not fix the panel's size; three experts give a majority without a tie
EXPERTS_WANTED = 3
MAX_DOCUMENTS = 5
MAX_BEHAVIOURS = 20
MAX_MARKS_A_YEAR = 9999  # SZCS-<year>-<4 digits>
MIN_VALIDITY_YEARS, MAX_VALIDITY_YEARS, DEFAULT_VALIDITY_YEARS = 1, 5, 3
REASON_LIMIT = 20_000

# The data-protection pledge of art. 28, as the platform publishes it; an application accepts this
# very text by naming its version and sha256 (a new text is a new version).
PLEDGE_VERSION = "2026-12"
PLEDGE_TEXT = (
    "数据保护承诺（《深圳市碳普惠管理办法》第二十八条）\n"
    "本运营主体承诺：配合碳普惠统一管理平台做好数据处理工作，仅为记录和核算减碳行为收集、使用必要的数据；"
    "不向第三方提供、不公开个人信息和减碳行为数据；采取加密、访问控制等措施保障减碳行为数据信息安全；"
    "发生或可能发生数据泄露时立即采取补救措施并报告市生态环境主管部门。\n"
    "Data-protection pledge (art. 28 of the Measures): the operating body cooperates with the unified "
    "platform in processing data, collects and uses only the data needed to record and quantify low-carbon "
    "behaviour, discloses no personal information or behaviour data to third parties, secures that data by "
    "encryption and access control, and remedies and reports to the regulator any actual or suspected leak at once.")
PLEDGE_SHA256 = hashlib.sha256(PLEDGE_TEXT.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ScenarioAttachment:
    """A document of an application (bytes, name, media type) and the sha256 the applicant
    declared for it, if any: a declared hash must be the bytes' own."""

    attachment: Attachment
    declared_sha256: str | None = None


@dataclass(frozen=True)
class ApplicationFields:
    """What an application carries; None (or blank) is a missing item."""

    name: str | None = None
    kind: ScenarioKind | None = None
    address: str | None = None
    district: District | None = None
    methodology_codes: list[str] = field(default_factory=list)
    pledge_version: str | None = None
    pledge_sha256: str | None = None
    documents: list[ScenarioAttachment] = field(default_factory=list)


_TEXTS = (("name", "name", "the scenario's name", 200), ("address", "address", "its address", 300))


def check_application(fields: ApplicationFields) -> list[str]:
    """Refuse an incomplete or malformed application with one error per problem (DomainErrors);
    return the behaviours' methodology codes, normalised and distinct, in the order given."""
    problems: list[DomainError] = []

    def missing(where: str, what: str) -> None:
        problems.append(DomainError(ScenarioCode.MISSING_ITEM, f"The application lacks {what}.", where))

    for attr, where, what, longest in _TEXTS:
        try:
            clean_text(getattr(fields, attr), field=where, what=what, limit=longest, code=ScenarioCode.MISSING_ITEM)
        except DomainError as refused:
            if (getattr(fields, attr) or "").strip():
                refused = DomainError(ScenarioCode.INVALID_APPLICATION, refused.message, where)
            problems.append(refused)
    if fields.kind is None:
        missing("kind", "the scenario's kind")
    if fields.district is None:
        missing("district", "the district")
    codes = list(dict.fromkeys(c.strip().upper() for c in fields.methodology_codes if c and c.strip()))
    if not codes:
        missing("methodologyCodes", "the behaviours recorded there (methodology codes)")
    elif len(codes) > MAX_BEHAVIOURS or any(len(c) > 40 for c in codes):
        problems.append(DomainError(ScenarioCode.INVALID_APPLICATION,
                                    f"At most {MAX_BEHAVIOURS} methodology codes of at most 40 characters.",
                                    "methodologyCodes"))
    if not (fields.pledge_version or "").strip() or not (fields.pledge_sha256 or "").strip():
        missing("pledge", "the data-protection pledge of art. 28 (its version and sha256)")
    elif fields.pledge_version.strip() != PLEDGE_VERSION or fields.pledge_sha256.strip().lower() != PLEDGE_SHA256:
        problems.append(DomainError(ScenarioCode.PLEDGE_NOT_ACCEPTED,
                                    f"Accept the pledge as published: version {PLEDGE_VERSION}, sha256 {PLEDGE_SHA256}.",
                                    "pledge"))
    if not fields.documents:
        missing("documents", "its documents")
    elif len(fields.documents) > MAX_DOCUMENTS:
        problems.append(DomainError(ScenarioCode.INVALID_APPLICATION, f"At most {MAX_DOCUMENTS} documents.",
                                    "documents"))
    else:
        named = []
        for index, item in enumerate(fields.documents):
            where, attachment = f"documents.{index}", item.attachment
            if not attachment.content:
                problems.append(DomainError(ScenarioCode.INVALID_APPLICATION, "A document is not empty.", where))
            elif item.declared_sha256 and item.declared_sha256.strip().lower() != attachment.document.sha256:
                problems.append(DomainError(ScenarioCode.DOCUMENT_HASH_MISMATCH,
                                            f"The sha256 of the bytes is {attachment.document.sha256}, not the one "
                                            "declared.", where))
            else:
                try:
                    named = check_attachment(attachment, named=named, field=where,
                                             too_large=ScenarioCode.DOCUMENT_TOO_LARGE,
                                             invalid=ScenarioCode.INVALID_APPLICATION)
                except DomainError as refused:
                    problems.append(refused)
    if problems:
        raise DomainErrors(problems)
    return codes


async def _check_behaviours(session: AsyncSession, clock: Clock, codes: list[str]) -> None:
    """Each code names a methodology (UNKNOWN_METHODOLOGY) with a version in force today
    (METHODOLOGY_NOT_PUBLISHED), in one query."""
    today = business_date(clock.now())
    rows = await session.execute(
        select(Methodology.code, func.bool_or(in_force_on(today))).where(Methodology.code.in_(codes))
        .group_by(Methodology.code))
    found = dict(rows.all())
    problems = []
    for code in codes:
        if code not in found:
            problems.append(DomainError(ScenarioCode.UNKNOWN_METHODOLOGY, f"No methodology has the code {code}.",
                                        "methodologyCodes"))
        elif not found[code]:
            problems.append(DomainError(ScenarioCode.METHODOLOGY_NOT_PUBLISHED,
                                        f"The methodology {code} is not in force (art. 14).", "methodologyCodes"))
    if problems:
        raise DomainErrors(problems)


def _journal(session: AsyncSession, scenario_id: uuid.UUID, event: str, actor_id: uuid.UUID, at: datetime,
             note: str | None = None) -> None:
    session.add(ScenarioEvent(scenario_id=scenario_id, event=event, actor_id=actor_id, at=at, note=note))


async def apply(*, session: AsyncSession, clock: Clock, applicant_id: uuid.UUID,
                fields: ApplicationFields) -> Scenario:
    """Submit an application (art. 27) and open its review by drawn scenario experts, the applicant
    being the party whose declared conflicts exclude experts."""
    codes = check_application(fields)
    await _check_behaviours(session, clock, codes)
    now = clock.now()
    scenario = Scenario(
        applicant_id=applicant_id, name=clean_text(fields.name, field="name", what="name", limit=200,
                                                   code=ScenarioCode.INVALID_APPLICATION),
        kind=ScenarioKind(fields.kind).value,
        address=clean_text(fields.address, field="address", what="address", limit=300,
                           code=ScenarioCode.INVALID_APPLICATION),
        district=District(fields.district).value, methodology_codes=codes, pledge_version=PLEDGE_VERSION,
        pledge_sha256=PLEDGE_SHA256, status=ScenarioStatus.UNDER_REVIEW.value, submitted_at=now)
    session.add(scenario)
    await session.flush()
    for position, item in enumerate(fields.documents):
        a = item.attachment
        session.add(ScenarioDocument(scenario_id=scenario.id, position=position, file_name=a.document.name.strip(),
                                     media_type=a.media_type.strip() or "application/octet-stream",
                                     sha256=a.document.sha256, size_bytes=a.document.byte_size, content=a.content))
    review = await reviews.open_review(
        session=session, clock=clock, opened_by=applicant_id, subject_kind=SubjectKind.SCENARIO_APPLICATION,
        subject_id=scenario.id, field=ExpertField.SCENARIO.value, experts_wanted=EXPERTS_WANTED,
        parties=[applicant_id])
    scenario.review_id = review.id
    _journal(session, scenario.id, "submitted", applicant_id, now)
    await session.flush()
    return scenario


async def _locked(session: AsyncSession, scenario_id: uuid.UUID) -> Scenario:
    scenario = await get_row(session, Scenario, scenario_id, lock=True, message="No such scenario application.",
                             field="applicationId")
    if scenario.status != ScenarioStatus.UNDER_REVIEW.value:
        raise DomainError(ScenarioCode.ALREADY_DECIDED, f"This application is already {scenario.status}.",
                          "applicationId")
    return scenario


def _decided(session: AsyncSession, scenario: Scenario, status: ScenarioStatus, review, regulator_id: uuid.UUID,
             now: datetime) -> None:
    scenario.status = status.value
    scenario.decided_at, scenario.decided_by = now, regulator_id
    scenario.decision_reason = review.decision_reason
    _journal(session, scenario.id, status.value, regulator_id, now, review.decision_reason)


def mark_valid_until(granted_at: datetime, years: int) -> datetime:
    """00:00 Asia/Shanghai of the grant day's anniversary `years` later (29 February -> 28 February)."""
    local = datetime.combine(anniversary(business_date(granted_at), years), time(0, 0), tzinfo=BUSINESS_TZ)
    return local.astimezone(timezone.utc)


async def _next_sequence(session: AsyncSession, year: int) -> int:
    """The year's next mark sequence: one upsert whose row lock is held until commit, so a parallel
    grant waits and takes the number after; a rolled-back grant gives its number back."""
    return (await session.execute(text(
        "INSERT INTO scenario_mark_counters (year, last_sequence) VALUES (:year, 1)"
        " ON CONFLICT (year) DO UPDATE SET last_sequence = scenario_mark_counters.last_sequence + 1"
        " RETURNING last_sequence"), {"year": year})).scalar_one()


async def grant(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, scenario_id: uuid.UUID,
                reason: str, validity_years: int = DEFAULT_VALIDITY_YEARS) -> tuple[Scenario, ScenarioMark]:
    """Grant the scenario its mark (art. 27), after every seated expert's opinion, with reasons."""
    if isinstance(validity_years, bool) or not MIN_VALIDITY_YEARS <= validity_years <= MAX_VALIDITY_YEARS:
        raise DomainError(ScenarioCode.INVALID_VALIDITY,
                          f"A mark is valid for {MIN_VALIDITY_YEARS} to {MAX_VALIDITY_YEARS} years.", "validityYears")
    scenario = await _locked(session, scenario_id)
    # refused while an opinion is outstanding or without reasons (reviews.service.decide_review)
    review = await reviews.decide_review(session=session, clock=clock, regulator_id=regulator_id,
                                         review_id=scenario.review_id, approve=True, reason=reason)
    now = clock.now()
    year = grant_year(now)
    sequence = await _next_sequence(session, year)
    if sequence > MAX_MARKS_A_YEAR:  # the number has four digits; the transaction rolls the counter back
        raise DomainError(ScenarioCode.MARK_NUMBERS_EXHAUSTED,
                          f"All {MAX_MARKS_A_YEAR:,} mark numbers of {year} are taken.", "scenarioId")
    mark = ScenarioMark(scenario_id=scenario.id, number=mark_number(year, sequence), year=year, sequence=sequence,
                        granted_at=now, valid_until=mark_valid_until(now, validity_years),
                        status=MarkStatus.ACTIVE.value, status_changed_at=now)
    session.add(mark)
    await session.flush()
    session.add(ScenarioMarkEvent(mark_id=mark.id, status=MarkStatus.ACTIVE.value, at=now, actor_id=regulator_id,
                                  reason=review.decision_reason))
    _decided(session, scenario, ScenarioStatus.GRANTED, review, regulator_id, now)
    await session.flush()
    record_audit_event(session, clock, actor=regulator_id, action="scenario.granted", subject_type="scenario",
                       subject_id=scenario.id, before={"status": ScenarioStatus.UNDER_REVIEW.value},
                       after={"status": ScenarioStatus.GRANTED.value, "mark": mark.number,
                              "validUntil": mark.valid_until.isoformat()})
    await session.flush()
    return scenario, mark


async def refuse(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, scenario_id: uuid.UUID,
                 reason: str) -> Scenario:
    """Refuse with reasons, after the experts' opinions are in (the review decides likewise)."""
    scenario = await _locked(session, scenario_id)
    review = await reviews.decide_review(session=session, clock=clock, regulator_id=regulator_id,
                                         review_id=scenario.review_id, approve=False, reason=reason)
    _decided(session, scenario, ScenarioStatus.REFUSED, review, regulator_id, clock.now())
    await session.flush()
    record_audit_event(session, clock, actor=regulator_id, action="scenario.refused", subject_type="scenario",
                       subject_id=scenario.id, before={"status": ScenarioStatus.UNDER_REVIEW.value},
                       after={"status": ScenarioStatus.REFUSED.value})
    await session.flush()
    return scenario


def effective_status(mark: ScenarioMark, now: datetime) -> MarkStatus:
    """The stored status, or EXPIRED past valid_until (a withdrawn mark stays withdrawn)."""
    if mark.status != MarkStatus.WITHDRAWN.value and now >= mark.valid_until:
        return MarkStatus.EXPIRED
    return MarkStatus(mark.status)


# (from which effective statuses, the status it goes to, the event and audit action)
_CHANGES = {
    "suspend": ((MarkStatus.ACTIVE,), MarkStatus.SUSPENDED, "scenario_mark.suspended"),
    "reinstate": ((MarkStatus.SUSPENDED,), MarkStatus.ACTIVE, "scenario_mark.reinstated"),
    "withdraw": ((MarkStatus.ACTIVE, MarkStatus.SUSPENDED), MarkStatus.WITHDRAWN, "scenario_mark.withdrawn"),
}


async def change_mark(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, number: str, change: str,
                      reason: str) -> ScenarioMark:
    """Suspend (active -> suspended), reinstate (suspended -> active) or withdraw (active or
    suspended -> withdrawn, final) a mark, with the regulator's reason. An expired mark changes no more."""
    allowed, target, action = _CHANGES[change]
    reason = clean_text(reason, field="reason", what="reason", limit=REASON_LIMIT, code=ScenarioCode.REASON_REQUIRED,
                        multiline=True)
    mark = (await session.execute(
        select(ScenarioMark).where(ScenarioMark.number == normalise_number(number)).with_for_update()
        .execution_options(populate_existing=True))).scalar_one_or_none()
    if mark is None:
        raise NotFound(message="No mark has this number.", field="markNumber")
    now = clock.now()
    before = effective_status(mark, now)
    if before not in allowed:
        if before == MarkStatus.WITHDRAWN:
            raise DomainError(ScenarioCode.MARK_WITHDRAWN, "This mark was withdrawn, for good.", "markNumber")
        if before == MarkStatus.EXPIRED:
            raise DomainError(ScenarioCode.MARK_EXPIRED, f"This mark expired at {mark.valid_until.isoformat()}.",
                              "markNumber")
        if change == "reinstate":
            raise DomainError(ScenarioCode.MARK_NOT_SUSPENDED, f"This mark is {before.value}.", "markNumber")
        raise DomainError(ScenarioCode.MARK_NOT_ACTIVE, f"This mark is {before.value}.", "markNumber")
    mark.status, mark.status_reason, mark.status_changed_at = target.value, reason, now
    session.add(ScenarioMarkEvent(mark_id=mark.id, status=target.value, at=now, actor_id=regulator_id, reason=reason))
    _journal(session, mark.scenario_id, action.removeprefix("scenario_mark."), regulator_id, now, reason)
    await session.flush()
    record_audit_event(session, clock, actor=regulator_id, action=action, subject_type="scenario_mark",
                       subject_id=mark.id, before={"status": before.value, "mark": mark.number},
                       after={"status": target.value, "mark": mark.number})
    await session.flush()
    return mark


# --- reads -------------------------------------------------------------------------------------


async def get_scenario(*, session: AsyncSession, scenario_id: uuid.UUID) -> Scenario:
    return await get_row(session, Scenario, scenario_id, message="No such scenario application.", field="id")


async def list_applications(*, session: AsyncSession, first: int | None, after: str | None,
                            applicant_id: uuid.UUID | None = None, status: ScenarioStatus | None = None) -> Page:
    """Newest first: one applicant's (its own view) or everyone's (the regulator's queue), by status."""
    stmt = select(Scenario)
    if applicant_id is not None:
        stmt = stmt.where(Scenario.applicant_id == applicant_id)
    if status is not None:
        stmt = stmt.where(Scenario.status == status.value)
    return await keyset_page(session, stmt, keys=[Scenario.submitted_at, Scenario.id], first=first, after=after,
                             descending=True)


async def documents_of(*, session: AsyncSession, scenario_ids: list[uuid.UUID],
                       with_content: bool = False) -> dict[uuid.UUID, list[ScenarioDocument]]:
    stmt = select(ScenarioDocument).where(ScenarioDocument.scenario_id.in_(scenario_ids))
    if not with_content:
        stmt = stmt.options(defer(ScenarioDocument.content))
    out: dict[uuid.UUID, list[ScenarioDocument]] = {i: [] for i in scenario_ids}
    for row in (await session.execute(stmt.order_by(ScenarioDocument.position))).scalars():
        out[row.scenario_id].append(row)
    return out


async def journal_of(*, session: AsyncSession, scenario_id: uuid.UUID) -> list[ScenarioEvent]:
    return list((await session.execute(
        select(ScenarioEvent).where(ScenarioEvent.scenario_id == scenario_id).order_by(ScenarioEvent.seq))).scalars())


async def marks_of(*, session: AsyncSession, scenario_ids: list[uuid.UUID]) -> dict[uuid.UUID, ScenarioMark]:
    if not scenario_ids:
        return {}
    rows = await session.execute(select(ScenarioMark).where(ScenarioMark.scenario_id.in_(scenario_ids)))
    return {m.scenario_id: m for m in rows.scalars()}


@dataclass(frozen=True)
class PublicScenario:
    """The public facts of a marked scenario (art. 29): nothing about the applicant or its documents."""

    id: uuid.UUID
    name: str
    kind: str
    district: str
    methodology_codes: tuple[str, ...]
    mark_number: str
    granted_at: datetime
    valid_until: datetime
    status: str  # active, suspended, withdrawn or expired (from the clock)
    status_reason: str | None  # the regulator's reason for a suspension or withdrawal


def _public(scenario: Scenario, mark: ScenarioMark, now: datetime) -> PublicScenario:
    status = effective_status(mark, now)
    return PublicScenario(id=scenario.id, name=scenario.name, kind=scenario.kind, district=scenario.district,
                          methodology_codes=tuple(scenario.methodology_codes), mark_number=mark.number,
                          granted_at=mark.granted_at, valid_until=mark.valid_until, status=status.value,
                          status_reason=mark.status_reason if status in (MarkStatus.SUSPENDED, MarkStatus.WITHDRAWN)
                          else None)


async def public_scenarios(*, session: AsyncSession, clock: Clock, first: int | None = None,
                           after: str | None = None) -> Page:
    """Every marked scenario, newest grant first, as PublicScenario rows (keyset page, at most 100):
    the disclosure list of art. 29."""
    now = clock.now()
    # the key columns selected by name, for keyset_page to read back beside the two entities
    stmt = (select(ScenarioMark.granted_at, ScenarioMark.id, ScenarioMark, Scenario)
            .join(Scenario, Scenario.id == ScenarioMark.scenario_id))
    return await keyset_page(session, stmt, keys=[ScenarioMark.granted_at, ScenarioMark.id], first=first,
                             after=after, descending=True,
                             node=lambda row: _public(row.Scenario, row.ScenarioMark, now))


async def public_scenario(*, session: AsyncSession, clock: Clock, number: str) -> PublicScenario | None:
    """One marked scenario by its mark number, or None."""
    row = (await session.execute(
        select(ScenarioMark, Scenario).join(Scenario, Scenario.id == ScenarioMark.scenario_id)
        .where(ScenarioMark.number == normalise_number(number)))).first()
    return _public(row[1], row[0], clock.now()) if row else None


@dataclass(frozen=True)
class ScenarioName:
    scenario_id: uuid.UUID
    name: str
    mark_number: str


async def scenarios_of_reports(*, session: AsyncSession,
                               report_ids: list[uuid.UUID]) -> dict[uuid.UUID, ScenarioName]:
    """The scenario each of these behaviour reports (their row ids) happened in, for a page of wallet
    history, in one query; reports without one are absent."""
    if not report_ids:
        return {}
    rows = await session.execute(
        select(BehaviourReport.id, Scenario.id, Scenario.name, ScenarioMark.number)
        .join(Scenario, Scenario.id == BehaviourReport.scenario_id)
        .join(ScenarioMark, ScenarioMark.scenario_id == Scenario.id)
        .where(BehaviourReport.id.in_(report_ids)))
    return {report: ScenarioName(scenario, name, number) for report, scenario, name, number in rows}


@dataclass(frozen=True)
class ScenarioEarnings:
    """What a person earned in one scenario (None: behaviour reported without a scenario)."""

    scenario: ScenarioName | None
    reports: int
    points: int
    reduction_mg: int


async def wallet_breakdown(*, session: AsyncSession, wallet_id: uuid.UUID) -> list[ScenarioEarnings]:
    """A person's credited reports, points and credited reduction per scenario, most points first
    (the reports without a scenario last)."""
    rows = await session.execute(
        select(BehaviourReport.scenario_id, Scenario.name, ScenarioMark.number, func.count(),
               func.coalesce(func.sum(BehaviourReport.points_credited), 0),
               func.coalesce(func.sum(BehaviourReport.reduction_mg - BehaviourReport.uncredited_reduction_mg), 0))
        .outerjoin(Scenario, Scenario.id == BehaviourReport.scenario_id)
        .outerjoin(ScenarioMark, ScenarioMark.scenario_id == Scenario.id)
        .where(and_(BehaviourReport.wallet_id == wallet_id, BehaviourReport.outcome == ReportOutcome.CREDITED.value))
        .group_by(BehaviourReport.scenario_id, Scenario.name, ScenarioMark.number))
    found = [ScenarioEarnings(ScenarioName(sid, name, number) if sid else None, int(n), int(points), int(mg))
             for sid, name, number, n, points, mg in rows]
    return sorted(found, key=lambda e: (e.scenario is None, -e.points, e.scenario.mark_number if e.scenario else ""))
