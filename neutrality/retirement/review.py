"""The review of neutrality applications (art. 19, 经审核后予以注销), auto-approval, and revoking certificates.

An application (retirements.py) holds its tonnes IN_REVIEW, naming its retirement. A platform reviewer
(role NEUTRALITY_REVIEWER, granted by the regulator) then either approves it: the very same serials
move IN_REVIEW -> RETIRED and the signed certificate is issued (certificates.issue_certificate) in one
transaction; or rejects it with a reason: the same serials move back IN_REVIEW -> HELD, to the same
holder. A retirement is decided once: pending_review -> approved | rejected, recording who, when, why.

Auto-approval: the regulator may set a policy, one append-only row per version; the highest version
is in force, and a version with no maximum switches auto-approval off. An application of at most
`max_tonnes` tonnes by an organisation in good standing is approved in the transaction that applies,
its serials moving HELD -> RETIRED in one move, and the retirement names the policy version used. Good standing: an organisation account (kind
organisation, project owners included; never a person) that is not suspended and none of whose
certificates was ever revoked.

Revocation: the regulator revokes a certificate with a reason (e.g. fraud). The certificate's signed
bytes are never touched; verification reads the revocation beside them and says REVOKED and why.
Retired tonnes stay retired. A second revocation is refused (CERTIFICATE_ALREADY_REVOKED); a retry
with the same idempotency key replays the first answer (resolvers/certificates.py).

Lock order (every path takes them in this order, so none waits crosswise): the holder's free-tonnes
advisory locks (applying only) -> the holder's HELD pool (applying only) -> the retirement row
(FOR UPDATE) -> the holder's IN_REVIEW pool -> the blocks (blocks.move). A decision locks the
retirement row first, so two reviewers deciding one application in parallel end in exactly one
decision: the second waits, reads the decided status, and is refused NOT_PENDING_REVIEW."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.models import Account, AccountKind
from accounts.service import record_audit_event
from core.clock import Clock
from core.db import get_row
from core.errors import DomainError, NotFound
from core.keyset import Page, keyset_page
from core.locks import lock_name
from core.text import clean_text
from neutrality.cers import blocks, verification
from neutrality.cers.models import Block, BlockState, MoveKind, Project
from neutrality.errors import NeutralityCode
from neutrality.retirement.certificates import SerialRange, Signer, find_certificate, issue_certificate
from neutrality.retirement.models import (
    Certificate,
    CertificateRevocation,
    NeutralityPolicy,
    Retirement,
    RetirementStatus,
)

REASON_MAX = 2000
MAX_POLICY_TONNES = 10_000_000



def _reason(value: str | None, *, required: bool, what: str) -> str | None:
    return clean_text(value, field="reason", what=what, limit=REASON_MAX, code=NeutralityCode.REASON_REQUIRED,
                      required=required, multiline=True)


# --- the auto-approval policy --------------------------------------------------------------------------


async def current_policy(*, session: AsyncSession) -> NeutralityPolicy | None:
    """The policy version in force (the highest), or None if none was ever set."""
    return (await session.scalars(select(NeutralityPolicy).order_by(NeutralityPolicy.version.desc()).limit(1))).first()


async def set_policy(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, max_tonnes: int | None,
                     note: str | None = None) -> NeutralityPolicy:
    """Append a new version; it replaces the one in force. `max_tonnes` None switches auto-approval off."""
    if max_tonnes is not None and (isinstance(max_tonnes, bool) or not isinstance(max_tonnes, int)
                                   or not 1 <= max_tonnes <= MAX_POLICY_TONNES):
        raise DomainError(NeutralityCode.INVALID_POLICY,
                          f"The maximum is a whole number of tonnes from 1 to {MAX_POLICY_TONNES:,}, or none (off).",
                          field="maxTonnes")
    note_text = _reason(note, required=False, what="note on the policy change")
    await lock_name(session, "cer-neutrality-policy")  # versions are numbered one after another
    latest = await current_policy(session=session)
    policy = NeutralityPolicy(id=uuid.uuid4(), version=(latest.version + 1) if latest else 1, max_tonnes=max_tonnes,
                              note=note_text, set_by=regulator_id, set_at=clock.now())
    session.add(policy)
    await session.flush()
    record_audit_event(session, clock, actor=regulator_id, action="neutrality_policy.set", subject_type="neutrality_policy",
                       subject_id=policy.id, version=policy.version, max_tonnes=max_tonnes,
                       before={"version": latest.version, "max_tonnes": latest.max_tonnes} if latest else None,
                       after={"version": policy.version, "max_tonnes": max_tonnes})
    return policy


async def in_good_standing(*, session: AsyncSession, account_id: uuid.UUID) -> bool:
    """An organisation account, not suspended, none of whose certificates was ever revoked."""
    account = await session.get(Account, account_id)
    if account is None or account.kind != AccountKind.ORGANISATION.value or account.suspended_at is not None:
        return False
    revoked = exists().where(CertificateRevocation.certificate_id == Certificate.id,
                             Certificate.holder_id == account_id)
    return not await session.scalar(select(revoked))


async def covering_policy(*, session: AsyncSession, retirement: Retirement) -> NeutralityPolicy | None:
    """The policy in force if it covers this application (few enough tonnes, an applicant in good standing)."""
    policy = await current_policy(session=session)
    if policy is None or policy.max_tonnes is None or retirement.tonnes > policy.max_tonnes:
        return None
    return policy if await in_good_standing(session=session, account_id=retirement.holder_id) else None


# --- deciding ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Approved:
    retirement: Retirement
    certificate: Certificate
    ranges: list[SerialRange]


async def _pending(session: AsyncSession, retirement_id: uuid.UUID, reviewer_id: uuid.UUID) -> Retirement:
    retirement = await get_row(session, Retirement, retirement_id, lock=True,
                               message="No neutrality application has this id.", field="retirementId")
    if retirement.status != RetirementStatus.PENDING_REVIEW.value:
        raise DomainError(NeutralityCode.NOT_PENDING_REVIEW, f"This application is already {retirement.status}.",
                          field="retirementId")
    if retirement.holder_id == reviewer_id:
        raise DomainError(NeutralityCode.OWN_APPLICATION, "A reviewer does not decide their own application.",
                          field="retirementId")
    return retirement


async def _with_codes(session: AsyncSession, moved: list[blocks.MovedRange]) -> list[SerialRange]:
    codes = dict((await session.execute(
        select(Project.id, Project.code).where(Project.id.in_({m.project_id for m in moved})))).all())
    return [SerialRange(m.project_id, codes[m.project_id], m.vintage, m.first_serial, m.last_serial) for m in moved]


async def certify(*, session: AsyncSession, clock: Clock, signer: Signer, public_base_url: str,
                  retirement: Retirement, ranges: list[SerialRange], reviewer_id: uuid.UUID | None,
                  policy: NeutralityPolicy | None = None) -> Approved:
    """Record the approval of an application whose serials (`ranges`) are retired now, and issue its
    certificate. The caller holds the retirement row (new or locked, pending): a reviewer's approval,
    or a policy's (`reviewer_id` None) in the transaction that applies."""
    now = clock.now()
    before = {"status": retirement.status, "tonnes": retirement.tonnes}
    retirement.status = RetirementStatus.APPROVED.value
    retirement.retired_at = retirement.decided_at = now
    retirement.decided_by = reviewer_id
    retirement.policy_id = policy.id if policy else None
    await session.flush()
    certificate = await issue_certificate(session=session, clock=clock, signer=signer, public_base_url=public_base_url,
                                          retirement=retirement, ranges=ranges)
    record_audit_event(session, clock, actor=reviewer_id, action="neutrality.approved", subject_type="retirement",
                       subject_id=retirement.id, certificate=certificate.number,
                       **({"policy_version": policy.version} if policy else {}), before=before,
                       after={"status": retirement.status, "tonnes": retirement.tonnes,
                              "certificate": certificate.number})
    return Approved(retirement=retirement, certificate=certificate, ranges=ranges)


async def approve(*, session: AsyncSession, clock: Clock, signer: Signer, public_base_url: str,
                  reviewer_id: uuid.UUID, retirement_id: uuid.UUID) -> Approved:
    """A reviewer approves a pending application: retired and certified in the caller's transaction.
    Not while a project of its tonnes is frozen pending review of a false verification report
    (art. 32); the reviewer may reject it instead."""
    retirement = await _pending(session, retirement_id, reviewer_id)
    held_in = await session.scalars(select(Block.project_id).distinct().where(
        Block.retirement_id == retirement.id, Block.state == BlockState.IN_REVIEW.value, Block.ended_at.is_(None)))
    for project_id in sorted(held_in, key=str):
        await verification.refuse_trade_if_frozen(session, project_id, "retirementId")
    moved = await blocks.move(session=session, clock=clock, kind=MoveKind.RETIRE, holder_id=retirement.holder_id,
                              from_state=BlockState.IN_REVIEW, to_state=BlockState.RETIRED,
                              quantity=retirement.tonnes, retirement_id=retirement.id,
                              reference_kind="retirement", reference_id=retirement.id,
                              set_retirement_id=retirement.id)
    return await certify(session=session, clock=clock, signer=signer, public_base_url=public_base_url,
                         retirement=retirement, ranges=await _with_codes(session, moved), reviewer_id=reviewer_id)


async def reject(*, session: AsyncSession, clock: Clock, reviewer_id: uuid.UUID, retirement_id: uuid.UUID,
                 reason: str) -> Retirement:
    """A reviewer rejects a pending application with a reason: its serials go back to the holder's HELD."""
    retirement = await _pending(session, retirement_id, reviewer_id)
    why = _reason(reason, required=True, what="reason the application is rejected")
    await blocks.move(session=session, clock=clock, kind=MoveKind.RELEASE, holder_id=retirement.holder_id,
                      from_state=BlockState.IN_REVIEW, to_state=BlockState.HELD, quantity=retirement.tonnes,
                      retirement_id=retirement.id, reference_kind="retirement", reference_id=retirement.id)
    before = {"status": retirement.status, "tonnes": retirement.tonnes}
    retirement.status = RetirementStatus.REJECTED.value
    retirement.decided_by, retirement.decided_at, retirement.decision_reason = reviewer_id, clock.now(), why
    await session.flush()
    record_audit_event(session, clock, actor=reviewer_id, action="neutrality.rejected", subject_type="retirement",
                       subject_id=retirement.id, before=before,
                       after={"status": retirement.status, "tonnes": retirement.tonnes})
    return retirement


async def review_queue(*, session: AsyncSession, first: int | None, after: str | None) -> Page:
    """Pending applications, oldest first."""
    stmt = select(Retirement).where(Retirement.status == RetirementStatus.PENDING_REVIEW.value)
    return await keyset_page(session, stmt, keys=[Retirement.applied_at, Retirement.id], first=first, after=after)


# --- revoking certificates -----------------------------------------------------------------------------


async def revoke_certificate(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, number_or_code: str,
                             reason: str) -> tuple[Certificate, CertificateRevocation]:
    """The regulator revokes a certificate; its signed bytes stay as issued."""
    certificate = await find_certificate(session=session, number_or_code=number_or_code)
    if certificate is None:
        raise NotFound(message="No certificate has this number or verification code.", field="number")
    why = _reason(reason, required=True, what="reason the certificate is revoked")
    # one revocation per certificate: the row lock serialises two regulators revoking at once
    await session.execute(select(Certificate.id).where(Certificate.id == certificate.id).with_for_update())
    if await session.get(CertificateRevocation, certificate.id, populate_existing=True) is not None:
        raise DomainError(NeutralityCode.CERTIFICATE_ALREADY_REVOKED, "This certificate is already revoked.",
                          field="number")
    revocation = CertificateRevocation(certificate_id=certificate.id, reason=why, revoked_by=regulator_id,
                                       revoked_at=clock.now())
    session.add(revocation)
    await session.flush()
    record_audit_event(session, clock, actor=regulator_id, action="certificate.revoked", subject_type="certificate",
                       subject_id=certificate.id, number=certificate.number, before={"revoked": False},
                       after={"revoked": True, "number": certificate.number})
    return certificate, revocation


async def policy_versions(*, session: AsyncSession, policy_ids) -> dict[uuid.UUID, int]:
    ids = [i for i in set(policy_ids) if i is not None]
    if not ids:
        return {}
    rows = await session.execute(select(NeutralityPolicy.id, NeutralityPolicy.version).where(NeutralityPolicy.id.in_(ids)))
    return dict(rows.all())
