"""Independent verification of a project's reductions (art. 17) and false reports (art. 32).

declared project -> the regulator commissions an approved verifier (an organisation holding the
VERIFIER role, not the owner, with no sanction in force) -> only that verifier submits the
validation and verification report: tonnes per vintage and its documents by sha256, signed by
its account (the sha256 of the canonical JSON of the submission is recorded) -> the project is
verified and a review of drawn reduction-verification experts opens (reviews/service.py), with
the owner and the verifier as parties, so neither's experts are drawn -> once every opinion is
in, the regulator files the project or rejects it (neutrality/cers/projects.py), deciding the
review in the same transaction. Issuance stays capped by the verified tonnes of the report. The
owner has no way to write or change a verified figure: the report's rows are the verifier's.

A false report (art. 32): the regulator records a sanction against the verifier. While it is in
force, or a suspension recorded as a violation (supervision/) runs, the verifier gets no new
commission and cannot submit (`sanction_in_force`, the one place that asks); every project resting on its
reports is flagged publicly, and, if the regulator says so, frozen: no issuance, offer, sale or
retirement of its tonnes until the regulator unfreezes it. Tonnes already retired stay retired
and show the flag.

Lock order: the project row, then the commission row."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.models import Account, AccountRole, Role, RoleStatus
from accounts.service import record_audit_event
from core.clock import Clock, business_date
from core.db import get_row
from core.documents import Document, canonical_bytes, check_documents
from core.errors import CoreCode, DomainError, NotFound
from core.keyset import Page, keyset_page
from core.text import clean_text
from neutrality.cers.blocks import MAX_TONNES
from neutrality.cers.models import (
    CommissionStatus,
    Project,
    ProjectStatus,
    VerifierCommission,
    VerifierReport,
    VerifierSanction,
)
from neutrality.errors import RegistryCode
from reviews import service as reviews
from reviews.models import ExpertField, SubjectKind
from supervision import standing
from supervision.models import SupervisedRole

DEFAULT_EXPERTS = 3


@dataclass(frozen=True)
class VintageTonnes:
    vintage: int
    tonnes: int


def _reason(value: str | None, field: str, what: str) -> str:
    return clean_text(value, field=field, what=what, limit=2_000, code=RegistryCode.REASON_REQUIRED, multiline=True)


async def _locked_project(session: AsyncSession, project_id: uuid.UUID) -> Project:
    project = await get_row(session, Project, project_id, lock=True, message="No project has this id.",
                            field="projectId")
    return project


async def sanction_in_force(session: AsyncSession, clock: Clock, verifier_id: uuid.UUID) -> str | None:
    """The one place commissioning and reporting ask whether a verifier is barred, and why: a false
    report recorded against it and not lifted (art. 32, here), or a suspension in force recorded as a
    violation (supervision/, art. 31-32; it ends by itself). None: not barred. (A revocation takes
    the VERIFIER role away, which `_approved_verifier` checks first.)"""
    false_report = await session.scalar(select(VerifierSanction.reason).where(
        VerifierSanction.verifier_id == verifier_id, VerifierSanction.lifted_at.is_(None))
        .order_by(VerifierSanction.recorded_at).limit(1))
    if false_report is not None:
        return "A false report is recorded against this verifier; it takes no commission."
    until = await standing.suspended_until(session=session, clock=clock, account_id=verifier_id,
                                           role=SupervisedRole.VERIFIER)
    if until is not None:
        return f"This verifier is suspended by the regulator until {until.isoformat()}; it takes no commission."
    return None


async def _approved_verifier(session: AsyncSession, clock: Clock, verifier_id: uuid.UUID) -> None:
    active = await session.scalar(select(AccountRole.id).join(Account, Account.id == AccountRole.account_id).where(
        AccountRole.account_id == verifier_id, AccountRole.role == Role.VERIFIER.value,
        AccountRole.status == RoleStatus.ACTIVE.value, Account.suspended_at.is_(None)))
    if active is None:
        raise DomainError(RegistryCode.NOT_A_VERIFIER, "This account is not an approved verifier.", "verifierId")
    barred = await sanction_in_force(session, clock, verifier_id)
    if barred is not None:
        raise DomainError(RegistryCode.VERIFIER_SANCTIONED, barred, "verifierId")


async def commission_verifier(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, project_id: uuid.UUID,
                              verifier_id: uuid.UUID, experts_wanted: int = DEFAULT_EXPERTS) -> VerifierCommission:
    """The regulator commissions an independent verifier for a declared project."""
    project = await _locked_project(session, project_id)
    if project.status != ProjectStatus.DECLARED.value:
        raise DomainError(RegistryCode.WRONG_STATUS, f"A project that is {project.status} gets no verifier; "
                                                     "commission one once it is declared.", "projectId")
    if verifier_id == project.owner_id:
        raise DomainError(RegistryCode.VERIFIER_NOT_INDEPENDENT, "A project's owner cannot verify it.", "verifierId")
    await _approved_verifier(session, clock, verifier_id)
    if not 1 <= experts_wanted <= reviews.MAX_SEATS:
        raise DomainError(CoreCode.INVALID, f"A review has 1 to {reviews.MAX_SEATS} experts.", "expertsWanted")
    live = await session.scalar(select(VerifierCommission).where(
        VerifierCommission.project_id == project_id, VerifierCommission.status != CommissionStatus.WITHDRAWN.value))
    if live is not None:
        raise DomainError(RegistryCode.ALREADY_COMMISSIONED, "This project already has a verifier.", "projectId")
    commission = VerifierCommission(id=uuid.uuid4(), project_id=project_id, verifier_id=verifier_id,
                                    status=CommissionStatus.COMMISSIONED.value, commissioned_by=regulator_id,
                                    commissioned_at=clock.now(), experts_wanted=experts_wanted, documents=[])
    session.add(commission)
    project.updated_at = clock.now()
    await session.flush()
    record_audit_event(session, clock, actor=regulator_id, action="verifier.commissioned",
                       subject_type="verifier_commission", subject_id=commission.id, project_id=project_id,
                       verifier_id=verifier_id, before=None,
                       after={"status": commission.status, "experts_wanted": experts_wanted})
    return commission


async def withdraw_commission(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID,
                              commission_id: uuid.UUID, reason: str) -> VerifierCommission:
    """Withdraw a commission whose report has not come in, so another verifier may be commissioned."""
    commission = await get_commission(session=session, commission_id=commission_id)
    await _locked_project(session, commission.project_id)
    commission = await get_commission(session=session, commission_id=commission_id, lock=True)
    if commission.status != CommissionStatus.COMMISSIONED.value:
        raise DomainError(RegistryCode.WRONG_STATUS, f"A commission that is {commission.status} cannot be withdrawn.",
                          "commissionId")
    commission.withdrawn_reason = _reason(reason, "reason", "reason the commission is withdrawn")
    commission.status = CommissionStatus.WITHDRAWN.value
    await session.flush()
    record_audit_event(session, clock, actor=regulator_id, action="verifier.commission_withdrawn",
                       subject_type="verifier_commission", subject_id=commission.id,
                       project_id=commission.project_id, before={"status": CommissionStatus.COMMISSIONED.value},
                       after={"status": commission.status})
    return commission


async def get_commission(*, session: AsyncSession, commission_id: uuid.UUID, lock: bool = False) -> VerifierCommission:
    return await get_row(session, VerifierCommission, commission_id, lock=lock,
                         message="No commission has this id.", field="commissionId")


async def submit_report(*, session: AsyncSession, clock: Clock, verifier_id: uuid.UUID, commission_id: uuid.UUID,
                        vintages: list[VintageTonnes], documents: list[Document]) -> VerifierCommission:
    """The commissioned verifier's validation and verification report; opens the experts' review."""
    found = await get_commission(session=session, commission_id=commission_id)
    if found.verifier_id != verifier_id:
        # another verifier's commission does not exist for this caller
        raise NotFound(message="No commission of yours has this id.", field="commissionId")
    project = await _locked_project(session, found.project_id)
    commission = await get_commission(session=session, commission_id=commission_id, lock=True)
    if commission.status != CommissionStatus.COMMISSIONED.value or project.status != ProjectStatus.DECLARED.value:
        raise DomainError(RegistryCode.WRONG_STATUS, f"This commission is {commission.status}; its report is in "
                                                     "or no longer wanted.", "commissionId")
    await _approved_verifier(session, clock, verifier_id)
    now = clock.now()
    this_year = business_date(now).year
    if not vintages or len(vintages) > 20 or len({v.vintage for v in vintages}) != len(vintages):
        raise DomainError(CoreCode.INVALID, "Give 1 to 20 vintages, each once.", "vintages")
    for v in vintages:
        if not 2000 <= v.vintage <= this_year:
            raise DomainError(CoreCode.INVALID, "A vintage is a past or the current year.", "vintages")
        if isinstance(v.tonnes, bool) or not 1 <= v.tonnes <= MAX_TONNES:
            raise DomainError(CoreCode.INVALID, f"Verified reductions are 1 to {MAX_TONNES:,} whole tonnes.",
                              "vintages")
    docs = check_documents(documents, field="documents", code=RegistryCode.INVALID_DOCUMENT)
    verifier_name = await session.scalar(select(Account.display_name).where(Account.id == verifier_id))
    submission = {"commission": str(commission.id), "project": project.code, "verifier": str(verifier_id),
                  "vintages": [{"vintage": v.vintage, "tonnes": v.tonnes} for v in sorted(vintages, key=lambda v: v.vintage)],
                  "documents": [d.as_json() for d in docs], "submittedAt": now.isoformat()}
    digest = hashlib.sha256(canonical_bytes(submission)).hexdigest()
    for v in sorted(vintages, key=lambda v: v.vintage):
        session.add(VerifierReport(id=uuid.uuid4(), project_id=project.id, verifier_id=verifier_id,
                                   commission_id=commission.id, verifier_name=verifier_name,
                                   report_reference=f"sha256:{digest}", vintage=v.vintage, verified_tonnes=v.tonnes,
                                   issued_tonnes=0, submitted_at=now))
    review = await reviews.open_review(session=session, clock=clock, opened_by=verifier_id,
                                       subject_kind=SubjectKind.PROJECT_VERIFICATION, subject_id=commission.id,
                                       field=ExpertField.REDUCTION_VERIFICATION.value,
                                       experts_wanted=commission.experts_wanted,
                                       parties=[project.owner_id, verifier_id])
    commission.documents = [d.as_json() for d in docs]
    commission.status, commission.report_sha256 = CommissionStatus.REPORTED.value, digest
    commission.reported_by, commission.reported_at, commission.review_id = verifier_id, now, review.id
    project.status, project.updated_at = ProjectStatus.VERIFIED.value, now
    await session.flush()
    record_audit_event(session, clock, actor=verifier_id, action="verification_report.submitted",
                       subject_type="verifier_commission", subject_id=commission.id, project_id=project.id,
                       review_id=review.id,
                       before={"status": CommissionStatus.COMMISSIONED.value, "project_status": ProjectStatus.DECLARED.value},
                       after={"status": commission.status, "project_status": project.status,
                              "report_sha256": digest,
                              "vintages": [{"vintage": v.vintage, "tonnes": v.tonnes}
                                           for v in sorted(vintages, key=lambda v: v.vintage)]})
    return commission


async def live_commission(*, session: AsyncSession, project_id: uuid.UUID) -> VerifierCommission | None:
    return await session.scalar(select(VerifierCommission).where(
        VerifierCommission.project_id == project_id, VerifierCommission.status != CommissionStatus.WITHDRAWN.value))


async def commissions_of(*, session: AsyncSession, project_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[VerifierCommission]]:
    found: dict[uuid.UUID, list[VerifierCommission]] = {p: [] for p in project_ids}
    for row in await session.scalars(select(VerifierCommission).where(VerifierCommission.project_id.in_(project_ids))
                                     .order_by(VerifierCommission.commissioned_at, VerifierCommission.id)):
        found[row.project_id].append(row)
    return found


async def verifier_commissions(*, session: AsyncSession, verifier_id: uuid.UUID, first: int | None,
                               after: str | None) -> Page:
    """A verifier's commissions, newest first: only its own."""
    stmt = select(VerifierCommission).where(VerifierCommission.verifier_id == verifier_id)
    return await keyset_page(session, stmt, keys=[VerifierCommission.commissioned_at, VerifierCommission.id],
                             first=first, after=after, descending=True)


async def record_false_report(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID,
                              verifier_id: uuid.UUID, commission_id: uuid.UUID | None, reason: str,
                              freeze_unsold: bool) -> tuple[VerifierSanction, list[str]]:
    """Art. 32: the verifier is barred from new commissions; its projects are flagged, and frozen if
    asked. Returns the sanction and the codes of the projects it froze."""
    reason = _reason(reason, "reason", "account of what was false in the report")
    if await session.scalar(select(Account.id).where(Account.id == verifier_id)) is None:
        raise NotFound(message="No verifier has this id.", field="verifierId")
    if commission_id is not None:
        commission = await get_commission(session=session, commission_id=commission_id)
        if commission.verifier_id != verifier_id:
            raise NotFound(message="This verifier has no commission with this id.", field="commissionId")
    now = clock.now()
    sanction = VerifierSanction(id=uuid.uuid4(), verifier_id=verifier_id, commission_id=commission_id, reason=reason,
                                froze_unsold=freeze_unsold, recorded_by=regulator_id, recorded_at=now)
    session.add(sanction)
    frozen: list[str] = []
    if freeze_unsold:
        project_ids = sorted(set(await session.scalars(select(VerifierReport.project_id).where(
            VerifierReport.verifier_id == verifier_id))), key=str)
        for project_id in project_ids:  # in id order: two sanctions never lock crosswise
            project = await _locked_project(session, project_id)
            if project.frozen_at is None:
                project.frozen_at, project.frozen_reason = now, f"False verification report: {reason}"
                project.updated_at = now
                frozen.append(project.code)
    await session.flush()
    record_audit_event(session, clock, actor=regulator_id, action="verifier.sanctioned",
                       subject_type="verifier_sanction", subject_id=sanction.id, verifier_id=verifier_id,
                       commission_id=commission_id, before=None,
                       after={"barred": True, "froze_unsold": freeze_unsold, "frozen_projects": sorted(frozen)})
    return sanction, sorted(frozen)


async def unfreeze_project(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, project_id: uuid.UUID,
                           reason: str) -> Project:
    """End a freeze after review; the flag stays while the verifier's sanction is in force."""
    reason = _reason(reason, "reason", "finding of the review")
    project = await _locked_project(session, project_id)
    if project.frozen_at is None:
        raise DomainError(RegistryCode.WRONG_STATUS, "This project is not frozen.", "projectId")
    project.frozen_at, project.frozen_reason = None, None
    project.decision_note = ((project.decision_note or "") + f"\nUnfrozen: {reason}").strip()
    project.updated_at = clock.now()
    await session.flush()
    record_audit_event(session, clock, actor=regulator_id, action="cer_project.unfrozen", subject_type="cer_project",
                       subject_id=project.id, before={"frozen": True, "code": project.code},
                       after={"frozen": False, "code": project.code})
    return project


async def refuse_trade_if_frozen(session: AsyncSession, project_id: uuid.UUID, field: str) -> None:
    """For an offer, a purchase or a retirement of a project's tonnes: refuse while it is frozen.
    FOR KEY SHARE waits for a freeze being recorded (which holds the row FOR UPDATE) and reads the
    row as committed, yet does not make offers, purchases and retirements wait for each other."""
    project = await session.scalar(select(Project).where(Project.id == project_id)
                                   .with_for_update(read=True, key_share=True).execution_options(populate_existing=True))
    if project is not None:
        refuse_if_frozen(project, field)


def refuse_if_frozen(project: Project, field: str = "projectId") -> None:
    if project.frozen_at is not None:
        raise DomainError(RegistryCode.PROJECT_FROZEN, "This project's tonnes are frozen pending review of a false "
                                                       "verification report.", field)


async def flags(*, session: AsyncSession, project_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """Public flags (art. 32): per project, the reasons of sanctions in force against a verifier
    whose report the project rests on."""
    found: dict[uuid.UUID, list[str]] = {p: [] for p in project_ids}
    if not project_ids:
        return found
    rows = await session.execute(
        select(VerifierReport.project_id, VerifierSanction.reason, VerifierSanction.recorded_at).distinct()
        .join(VerifierSanction, and_(VerifierSanction.verifier_id == VerifierReport.verifier_id,
                                     VerifierSanction.lifted_at.is_(None)))
        .where(VerifierReport.project_id.in_(project_ids))
        .order_by(VerifierSanction.recorded_at))
    for project_id, reason, _ in rows:
        if reason not in found[project_id]:
            found[project_id].append(reason)
    return found
