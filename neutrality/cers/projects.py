"""A reduction project's life in the registry (art. 15-17): filing, issuance of its CERs, the regulator's cancellation.

draft -> notice (published for public notice, pledge taken) -> declared (after 7 working days of
notice, neutrality/cers/notice.py) -> verified (the report of the verifier the regulator
commissioned is in, and drawn experts evaluate it: neutrality/cers/verification.py) -> filed (备案
by the regulator, after every expert's opinion, deciding that review). The regulator may reject a
project at any step before filing. Only a filed project's verified tonnes are issued, each
issuance a fresh serial block from the project's per-vintage counter, so serials never repeat. A
project names a published methodology (art. 14, checked by
reductions.service.is_published_methodology when it is registered or edited)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.service import record_audit_event
from core.clock import Clock, business_date
from core.errors import CoreCode, DomainError, NotFound
from neutrality.cers import blocks
from neutrality.cers.models import (
    Block,
    BlockState,
    CerCancellation,
    Issuance,
    MoveKind,
    Project,
    ProjectStatus,
    VerifierReport,
)
from neutrality.cers.notice import notice_for
from neutrality.errors import RegistryCode
from neutrality.cers import verification
from neutrality.market import offers
from reviews import service as reviews
from reductions import service as reductions

# art. 16: the same reductions are not registered in another mechanism
PLEDGE_TEXT = ("本项目申报的减排量未在国家核证自愿减排量(CCER)、绿色电力交易、绿色电力证书或其他减排机制中"
               "登记、签发或交易，今后也不重复申报。 The reductions of this project are not registered, issued or "
               "traded in CCER, green electricity trading, green certificates or any other mechanism, and will not be.")
MAX_TONNES_PER_YEAR = 100_000_000
MAX_ISSUANCE = 10_000_000
# the notice-to-filing steps in which the regulator may still reject
REJECTABLE = {ProjectStatus.NOTICE.value, ProjectStatus.DECLARED.value, ProjectStatus.VERIFIED.value}


class WrongStatus(DomainError):
    code = RegistryCode.WRONG_STATUS.value


def _text(value: str | None, field: str, label: str, *, limit: int, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise DomainError(CoreCode.INVALID, f"Give the {label}.", field)
    if len(value) > limit:
        raise DomainError(CoreCode.INVALID, f"The {label} has at most {limit:,} characters.", field)
    return value


@dataclass(frozen=True)
class ProjectFields:
    title: str | None = None
    methodology_code: str | None = None
    location: str | None = None
    description: str | None = None
    expected_tonnes_per_year: int | None = None
    benefit_sharing: str | None = None


async def _apply(session: AsyncSession, clock: Clock, project: Project, fields: ProjectFields, *,
                 creating: bool) -> None:
    if creating or fields.title is not None:
        project.title = _text(fields.title, "title", "project title", limit=200)
    if creating or fields.methodology_code is not None:
        code = _text(fields.methodology_code, "methodologyCode", "methodology code", limit=40).upper()
        if not await reductions.is_published_methodology(session=session, clock=clock, code=code):
            raise DomainError(RegistryCode.METHODOLOGY_NOT_PUBLISHED, f"No published methodology has the code "
                                                                      f"{code} (art. 14).", "methodologyCode")
        project.methodology_code = code
    if creating or fields.location is not None:
        project.location = _text(fields.location, "location", "location", limit=200)
    if creating or fields.description is not None:
        project.description = _text(fields.description, "description", "description", limit=20_000, required=False)
    if creating or fields.benefit_sharing is not None:
        project.benefit_sharing = _text(fields.benefit_sharing, "benefitSharing", "benefit-sharing arrangement",
                                        limit=5_000, required=False)
    if creating or fields.expected_tonnes_per_year is not None:
        tonnes = fields.expected_tonnes_per_year
        if tonnes is None or not 1 <= tonnes <= MAX_TONNES_PER_YEAR:
            raise DomainError(CoreCode.INVALID, f"Expected reductions are 1 to {MAX_TONNES_PER_YEAR:,} tCO2e a year.",
                              "expectedTonnesPerYear")
        project.expected_tonnes_per_year = tonnes


async def register_project(*, session: AsyncSession, clock: Clock, owner_id: uuid.UUID,
                           fields: ProjectFields) -> Project:
    now = clock.now()
    project = Project(id=uuid.uuid4(), owner_id=owner_id, status=ProjectStatus.DRAFT.value, created_at=now,
                      updated_at=now)
    await _apply(session, clock, project, fields, creating=True)
    number = await session.scalar(text("SELECT nextval('cer_project_number_seq')"))
    project.code = f"P{number:06d}"
    session.add(project)
    await session.flush()
    return project


async def _own_project(session: AsyncSession, owner_id: uuid.UUID, project_id: uuid.UUID) -> Project:
    project = await _lock(session, project_id)
    if project is None or project.owner_id != owner_id:
        raise NotFound(message="You have no project with this id.", field="projectId")
    return project


async def _lock(session: AsyncSession, project_id: uuid.UUID) -> Project | None:
    return (await session.execute(select(Project).where(Project.id == project_id).with_for_update()
                                  .execution_options(populate_existing=True))).scalar_one_or_none()


def _expect(project: Project, *statuses: ProjectStatus, doing: str) -> None:
    if project.status not in {s.value for s in statuses}:
        raise WrongStatus(message=f"A project that is {project.status} cannot be {doing}.", field="projectId")


async def update_project(*, session: AsyncSession, clock: Clock, owner_id: uuid.UUID, project_id: uuid.UUID,
                         fields: ProjectFields) -> Project:
    """Only a draft changes: what the public saw during notice is what gets filed."""
    project = await _own_project(session, owner_id, project_id)
    _expect(project, ProjectStatus.DRAFT, doing="edited")
    await _apply(session, clock, project, fields, creating=False)
    project.updated_at = clock.now()
    await session.flush()
    return project


async def publish_for_notice(*, session: AsyncSession, clock: Clock, owner_id: uuid.UUID, project_id: uuid.UUID,
                             pledge_accepted: bool) -> Project:
    """Publish a draft for public notice (公示); the owner takes the no-double-registration pledge."""
    project = await _own_project(session, owner_id, project_id)
    _expect(project, ProjectStatus.DRAFT, doing="published")
    if not pledge_accepted:
        raise DomainError(RegistryCode.PLEDGE_REQUIRED, "Take the pledge that these reductions are not registered in CCER, "
                                             "green electricity trading or green certificates.", "pledgeAccepted")
    now = clock.now()
    project.pledge_text, project.pledged_at = PLEDGE_TEXT, now
    project.notice_started_at = now
    project.notice_ends_on = (await notice_for(session=session, published_on=business_date(now))).declare_from
    project.status = ProjectStatus.NOTICE.value
    project.updated_at = now
    await session.flush()
    return project


async def declare_project(*, session: AsyncSession, clock: Clock, owner_id: uuid.UUID, project_id: uuid.UUID) -> Project:
    """Submit the declaration (申报), no earlier than 7 working days after the notice began, counted on
    the official calendar: a count that reaches a year with no official schedule yet is refused."""
    project = await _own_project(session, owner_id, project_id)
    _expect(project, ProjectStatus.NOTICE, doing="declared")
    end = await notice_for(session=session, published_on=business_date(project.notice_started_at))
    if end.provisional:
        years = ", ".join(str(y) for y in end.provisional_years)
        raise DomainError(RegistryCode.CALENDAR_NOT_PUBLISHED, f"The notice's 7 working days reach {years}, whose "
                          f"official holidays are not entered yet; the declaration waits for that schedule.",
                          "projectId")
    today = business_date(clock.now())
    if today < end.declare_from:
        raise DomainError(RegistryCode.NOTICE_NOT_OVER, f"The public notice runs 7 working days; declare from "
                                             f"{end.declare_from.isoformat()}.", "projectId")
    now = clock.now()
    project.notice_ends_on = end.declare_from
    project.declared_at, project.status, project.updated_at = now, ProjectStatus.DECLARED.value, now
    await session.flush()
    return project


async def _regulated_project(session: AsyncSession, project_id: uuid.UUID) -> Project:
    project = await _lock(session, project_id)
    if project is None:
        raise NotFound(message="No project has this id.", field="projectId")
    return project


async def _decide_verification(session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, project: Project,
                                approve: bool, reason: str) -> None:
    """Decide the experts' review of the project's verification report, in this transaction."""
    commission = await verification.live_commission(session=session, project_id=project.id)
    if commission is None or commission.review_id is None:
        if approve:
            raise WrongStatus(message="This project has no verifier's report under review.", field="projectId")
        return
    await reviews.decide_review(session=session, clock=clock, regulator_id=regulator_id,
                                review_id=commission.review_id, approve=approve, reason=reason)


async def file_project(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, project_id: uuid.UUID,
                       note: str | None = None) -> Project:
    """File (备案) a verified project once every drawn expert's opinion on the verifier's report is
    in, giving reasons: from now on its verified tonnes may be issued."""
    project = await _regulated_project(session, project_id)
    _expect(project, ProjectStatus.VERIFIED, doing="filed")
    reason = _text(note, "note", "reasons for filing", limit=2_000, required=False)
    if not reason:
        raise DomainError(RegistryCode.REASON_REQUIRED, "Give the reasons for filing, in view of the experts' "
                                                        "opinions.", "note")
    await _decide_verification(session, clock, regulator_id, project, True, reason)
    now = clock.now()
    project.status, project.filed_at, project.filed_by = ProjectStatus.FILED.value, now, regulator_id
    project.decision_note = reason
    project.updated_at = now
    await session.flush()
    record_audit_event(session, clock, actor=regulator_id, action="cer_project.filed", subject_type="cer_project",
                       subject_id=project.id, before={"status": ProjectStatus.VERIFIED.value},
                       after={"status": project.status, "code": project.code})
    return project


async def reject_project(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, project_id: uuid.UUID,
                         reason: str) -> Project:
    """Reject a project before filing, saying why. Once a verifier's report is under the experts'
    review, the rejection decides that review, so it waits for every opinion too."""
    project = await _regulated_project(session, project_id)
    if project.status not in REJECTABLE:
        raise WrongStatus(message=f"A project that is {project.status} cannot be rejected.", field="projectId")
    if not (reason or "").strip():
        raise DomainError(RegistryCode.REASON_REQUIRED, "Say why the project is rejected.", "reason")
    reason = _text(reason, "reason", "reason", limit=2_000)
    before = {"status": project.status}
    if project.status == ProjectStatus.VERIFIED.value:
        await _decide_verification(session, clock, regulator_id, project, False, reason)
    project.status, project.decision_note = ProjectStatus.REJECTED.value, reason
    project.filed_by, project.updated_at = regulator_id, clock.now()
    await session.flush()
    record_audit_event(session, clock, actor=regulator_id, action="cer_project.rejected", subject_type="cer_project",
                       subject_id=project.id, before=before, after={"status": project.status, "code": project.code})
    return project


async def _next_serials(session: AsyncSession, project_id: uuid.UUID, vintage: int, tonnes: int) -> int:
    """Take `tonnes` serials from the project's counter for the vintage; the row lock serialises issuers."""
    end = await session.scalar(text(
        "INSERT INTO cer_serial_counters (project_id, vintage, next_serial) VALUES (:p, :v, 1 + :n)"
        " ON CONFLICT (project_id, vintage) DO UPDATE SET next_serial = cer_serial_counters.next_serial + :n"
        " RETURNING next_serial"), {"p": project_id, "v": vintage, "n": tonnes})
    return int(end) - tonnes


async def issue_cers(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, verifier_report_id: uuid.UUID,
                     tonnes: int) -> Issuance:
    """Issue whole tonnes of a verifier's report to the project owner's CER account (art. 17)."""
    report = (await session.execute(select(VerifierReport).where(VerifierReport.id == verifier_report_id)
                                    .with_for_update().execution_options(populate_existing=True))).scalar_one_or_none()
    if report is None:
        raise NotFound(message="No verifier's report has this id.", field="verifierReportId")
    project = await session.get(Project, report.project_id)
    if project.status != ProjectStatus.FILED.value:
        raise WrongStatus(message="CERs are issued only for a filed project.", field="verifierReportId")
    verification.refuse_if_frozen(project, "verifierReportId")
    left = report.verified_tonnes - report.issued_tonnes
    if not 1 <= tonnes <= MAX_ISSUANCE:
        raise DomainError(CoreCode.INVALID, "Issue a positive whole number of tonnes.", "tonnes")
    if tonnes > left:
        raise DomainError(RegistryCode.EXCEEDS_VERIFIED, f"Only {left:,} verified tonnes of this report are not issued yet.",
                          "tonnes")
    first = await _next_serials(session, project.id, report.vintage, tonnes)
    now = clock.now()
    issuance = Issuance(id=uuid.uuid4(), project_id=project.id, verifier_report_id=report.id, vintage=report.vintage,
                        first_serial=first, last_serial=first + tonnes - 1, holder_id=project.owner_id,
                        issued_by=regulator_id, issued_at=now)
    session.add(issuance)
    before = {"issued_tonnes": report.issued_tonnes, "verified_tonnes": report.verified_tonnes}
    report.issued_tonnes += tonnes
    await session.flush()
    await blocks.issue_block(session=session, clock=clock, project_id=project.id, vintage=report.vintage,
                             first_serial=issuance.first_serial, last_serial=issuance.last_serial,
                             holder_id=project.owner_id, issuance_id=issuance.id)
    record_audit_event(session, clock, actor=regulator_id, action="cer.issued", subject_type="cer_issuance",
                       subject_id=issuance.id, project_id=project.id, verifier_report_id=report.id, before=before,
                       after={"issued_tonnes": report.issued_tonnes, "verified_tonnes": report.verified_tonnes,
                              "tonnes": tonnes, "vintage": report.vintage, "first_serial": issuance.first_serial,
                              "last_serial": issuance.last_serial})
    return issuance


async def cancel_cers(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, project_id: uuid.UUID,
                      vintage: int, first_serial: int, last_serial: int, reason: str) -> CerCancellation:
    """The regulator removes tonnes without a claim (e.g. a fraudulent issuance), saying why.

    Every serial of the range must be live and held (in someone's account, not promised to a
    pending purchase, not retired): a retirement is final, and a reservation settles first."""
    reason = _text(reason, "reason", "reason", limit=2_000, required=False)
    if not reason:
        raise DomainError(RegistryCode.REASON_REQUIRED, "Say why these CERs are cancelled.", "reason")
    if not 1 <= first_serial <= last_serial or last_serial - first_serial >= MAX_ISSUANCE:
        raise DomainError(CoreCode.INVALID, "Give a range of serial numbers, first <= last.", "firstSerial")
    if await session.get(Project, project_id) is None:
        raise NotFound(message="No project has this id.", field="projectId")
    overlap = (Block.project_id == project_id, Block.vintage == vintage, Block.ended_at.is_(None),
               Block.last_serial >= first_serial, Block.first_serial <= last_serial)

    def tonnes_in(b: Block) -> int:
        return min(b.last_serial, last_serial) - max(b.first_serial, first_serial) + 1

    # lock in the order a purchase does (offer row, then the seller's pool; see blocks.lock_pool),
    # each kind in a fixed order, then look again
    holders = sorted(set(await session.scalars(select(Block.holder_id).where(*overlap))), key=str)
    await offers.lock_active_offers(session, holders, project_id, vintage)
    for holder_id in holders:
        await blocks.lock_pool(session, holder_id, BlockState.HELD)
    live = (await session.scalars(select(Block).where(*overlap).execution_options(populate_existing=True))).all()
    busy = sorted({b.state for b in live if b.state != BlockState.HELD.value})
    if busy or sum(tonnes_in(b) for b in live) != last_serial - first_serial + 1:
        what = f"some are {', '.join(busy)}" if busy else "some were never issued"
        raise DomainError(RegistryCode.SERIALS_NOT_CANCELLABLE, f"Only held tonnes can be cancelled; {what}.",
                          "firstSerial")
    per_holder: dict[uuid.UUID, int] = {}
    for b in live:
        per_holder[b.holder_id] = per_holder.get(b.holder_id, 0) + tonnes_in(b)
    if not per_holder.keys() <= set(holders):
        raise DomainError(RegistryCode.SERIALS_NOT_CANCELLABLE, "These tonnes changed hands just now; try again.",
                          "firstSerial")
    now = clock.now()
    cancellation = CerCancellation(id=uuid.uuid4(), project_id=project_id, vintage=vintage, first_serial=first_serial,
                                   last_serial=last_serial, reason=reason, cancelled_by=regulator_id, cancelled_at=now)
    session.add(cancellation)
    await session.flush()
    for holder_id, quantity in sorted(per_holder.items(), key=lambda kv: str(kv[0])):
        try:
            await blocks.move(session=session, clock=clock, kind=MoveKind.CANCEL, holder_id=holder_id,
                              from_state=BlockState.HELD, to_state=BlockState.CANCELLED, quantity=quantity,
                              reference_kind="cancellation", reference_id=cancellation.id,
                              project_id=project_id, vintage=vintage, serials=(first_serial, last_serial),
                              set_cancellation_id=cancellation.id)
        except blocks.InsufficientTonnes:
            raise DomainError(RegistryCode.SERIALS_NOT_CANCELLABLE, "Some of these tonnes changed state just now; try again.",
                              "firstSerial") from None
        await offers.trim_to_holdings(session, clock, holder_id, project_id, vintage)
    cancellation.details = {"holders": len(per_holder), "tonnes": last_serial - first_serial + 1}
    await session.flush()
    record_audit_event(session, clock, actor=regulator_id, action="cer.cancelled", subject_type="cer_cancellation",
                       subject_id=cancellation.id, project_id=project_id,
                       before={"state": BlockState.HELD.value, "holders": len(per_holder)},
                       after={"state": BlockState.CANCELLED.value, "vintage": vintage, "first_serial": first_serial,
                              "last_serial": last_serial, "tonnes": last_serial - first_serial + 1})
    return cancellation


async def get_project(*, session: AsyncSession, project_id: uuid.UUID | None = None, code: str | None = None) -> Project:
    stmt = select(Project).where(Project.id == project_id) if project_id else select(Project).where(Project.code == code)
    project = await session.scalar(stmt)
    if project is None:
        raise NotFound(message="No project has this id.", field="id" if project_id else "code")
    return project

