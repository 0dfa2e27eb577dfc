"""Violations and credit records (信用记录, Measures art. 30-32): the regulator records a violation
against an app operator, merchant, verifier or scenario operator, with the article, the finding, its
documents (by sha256) and a sanction: a warning, a suspension for a period, or the revocation of the
role. Entries are never edited; a violation recorded in error is rescinded by a new entry with a reason.

A suspension takes effect at once and ends by itself (supervision/standing.py): a suspended app
operator's behaviour reports are refused and its app mall closes; a suspended merchant's listings
leave the catalogue and cannot be redeemed; a suspended verifier gets no commission
(neutrality/cers/verification.py sanction_in_force). A revocation revokes the role through
accounts.service.revoke_role and archives the listings it carried, for good. The held redemptions
of a suspended or revoked merchant (or of a closed app mall) are released to the very lots they came
from after the commit, each in its own transaction (`release_held_redemptions`, the path of the
redemption time-out, mall/service.py), the redemption naming why; a crash between the two leaves
them to time out as usual.

Crash-safe step order, one transaction: lock the standing row (organisation, role), then the role
row (revocation), write the entry, recompute the standing, update the listings, and record the
audit event last."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts import service as accounts
from accounts.models import Account, AccountKind, AccountRole, Role, RoleStatus
from core.clock import BUSINESS_TZ, Clock
from core.documents import Document, check_documents
from core.errors import DomainError, NotFound
from core.keyset import Page, keyset_page
from core.text import clean_text
from mall import service as mall
from supervision import standing
from supervision.errors import SupervisionCode
from supervision.models import Sanction, SupervisedRole, Violation, ViolationRescission

MAX_SUSPENSION = timedelta(days=730)  # two years at most
ARTICLES = range(1, 34)  # the Measures have 33 articles
# the roles a violation names that are account roles (a scenario operator is an organisation
# operating a scenario; it holds no role of its own that could be revoked)
ACCOUNT_ROLES = {SupervisedRole.APP_OPERATOR.value: Role.APP_OPERATOR.value,
                 SupervisedRole.MERCHANT.value: Role.MERCHANT.value,
                 SupervisedRole.VERIFIER.value: Role.VERIFIER.value}


def _role(value: str) -> str:
    try:
        return SupervisedRole(value).value
    except ValueError:
        raise DomainError(SupervisionCode.ROLE_NOT_HELD, "Name a supervised role: app operator, merchant, verifier "
                                                         "or scenario operator.", "role") from None


def _sanction(value: str) -> str:
    try:
        return Sanction(value).value
    except ValueError:
        raise DomainError(SupervisionCode.INVALID_PERIOD, "The sanction is a warning, a suspension or a revocation.",
                          "sanction") from None


async def _role_row(session: AsyncSession, organisation_id: uuid.UUID, role: str, lock: bool) -> AccountRole | None:
    """The organisation's active row of this account role; None for a scenario operator."""
    account = await session.get(Account, organisation_id)
    if account is None:
        raise NotFound(message="No organisation has this id.", field="organisationId")
    if account.kind != AccountKind.ORGANISATION.value:
        raise DomainError(SupervisionCode.ROLE_NOT_HELD, "Violations are recorded against organisations.",
                          "organisationId")
    if role not in ACCOUNT_ROLES:
        return None
    stmt = select(AccountRole).where(AccountRole.account_id == organisation_id,
                                     AccountRole.role == ACCOUNT_ROLES[role],
                                     AccountRole.status == RoleStatus.ACTIVE.value)
    row = await session.scalar(stmt.with_for_update() if lock else stmt)
    if row is None:
        raise DomainError(SupervisionCode.ROLE_NOT_HELD, f"This organisation holds no active {role} role.", "role")
    return row


@dataclass(frozen=True)
class Recorded:
    violation: Violation
    # a revocation ends the organisation's sign-ins: the caller marks these families revoked in
    # Redis after the commit (accounts/revocation.py), as revokeRole does
    revoked_families: list[uuid.UUID]


async def record_violation(
    *, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, organisation_id: uuid.UUID, role: str,
    article: int, finding: str, documents: list[Document], sanction: str, suspended_until: datetime | None = None,
) -> Recorded:
    """Record a violation and apply its sanction at once (see the module docstring)."""
    role, sanction = _role(role), _sanction(sanction)
    if isinstance(article, bool) or article not in ARTICLES:
        raise DomainError(SupervisionCode.INVALID_ARTICLE, "Name an article of the Measures, 1 to 33.", "article")
    finding = clean_text(finding, field="finding", what="finding", limit=5_000, code=SupervisionCode.FINDING_REQUIRED,
                         multiline=True)
    docs = check_documents(documents, field="documents", code=SupervisionCode.INVALID_DOCUMENT)
    now = clock.now()
    if sanction == Sanction.SUSPENSION.value:
        if suspended_until is None or suspended_until.tzinfo is None or not now < suspended_until <= now + MAX_SUSPENSION:
            raise DomainError(SupervisionCode.INVALID_PERIOD, "A suspension runs from now until a time within two "
                                                              "years (with its time zone).", "suspendedUntil")
    elif suspended_until is not None:
        raise DomainError(SupervisionCode.INVALID_PERIOD, "Only a suspension has a period.", "suspendedUntil")
    if sanction == Sanction.REVOCATION.value and role not in ACCOUNT_ROLES:
        raise DomainError(SupervisionCode.REVOCATION_NOT_APPLICABLE, "A scenario operator holds no role to revoke; "
                          "withdraw the scenario's mark instead.", "sanction")
    await _role_row(session, organisation_id, role, lock=False)
    await standing.lock(session=session, clock=clock, account_id=organisation_id, role=role)
    role_row = await _role_row(session, organisation_id, role, lock=True)  # held still, under the lock
    violation = Violation(id=uuid.uuid4(), organisation_id=organisation_id, role=role, article=article,
                          finding=finding, documents=[d.as_json() for d in docs], sanction=sanction,
                          suspended_until=suspended_until if sanction == Sanction.SUSPENSION.value else None,
                          recorded_by=regulator_id, recorded_at=now)
    session.add(violation)
    await session.flush()
    if sanction == Sanction.SUSPENSION.value:
        await standing.recompute(session=session, clock=clock, account_id=organisation_id, role=role)
        await standing.refresh_listings(session=session, account_id=organisation_id)
    families: list[uuid.UUID] = []
    if sanction == Sanction.REVOCATION.value:
        _, families = await revoke_role(session=session, clock=clock, regulator_id=regulator_id,
                                        application_id=role_row.id,
                                        reason=f"Violation of art. {article} of the Measures: {finding}"[:2000])
    accounts.record_audit_event(session, clock, actor=regulator_id, action="violation.recorded",
                                subject_type="violation", subject_id=violation.id,
                                before={}, after={"organisation": str(organisation_id), "role": role,
                                                  "article": article, "sanction": sanction,
                                                  "suspendedUntil": _iso(violation.suspended_until)})
    await session.flush()
    return Recorded(violation, families)


async def revoke_role(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, application_id: uuid.UUID,
                      reason: str) -> tuple[AccountRole, list[uuid.UUID]]:
    """Every revocation of a role (the regulator's revokeRole, or a violation's revocation): the role
    through accounts.service.revoke_role, the account's sign-ins ended (signing in again yields a
    token without the role; returns the families, for the caller to mark in Redis after the commit),
    and the listings it carried archived for good (a revoked merchant's own, a revoked app
    operator's app mall). Its held redemptions are released after the commit
    (`release_held_redemptions`)."""
    row = await accounts.revoke_role(session=session, clock=clock, regulator_id=regulator_id,
                                     application_id=application_id, reason=reason)
    families = await accounts.logout(session=session, clock=clock, account_id=row.account_id, family_id=None,
                                     everywhere=True)
    await mall.archive_listings_of(session=session, clock=clock, account_id=row.account_id, role=row.role)
    return row, families


async def rescind_violation(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID,
                            violation_id: uuid.UUID, reason: str) -> ViolationRescission:
    """Correct a violation recorded in error with a new entry. A rescinded suspension stops at once
    (listings back in the catalogue, reports accepted); a revoked role stays revoked: the
    organisation applies again."""
    violation = await session.get(Violation, violation_id)
    if violation is None:
        raise NotFound(message="No violation has this id.", field="violationId")
    reason = clean_text(reason, field="reason", what="reason for rescinding", limit=2_000,
                        code=SupervisionCode.REASON_REQUIRED, multiline=True)
    await standing.lock(session=session, clock=clock, account_id=violation.organisation_id, role=violation.role)
    if await session.scalar(select(ViolationRescission.id).where(ViolationRescission.violation_id == violation_id)):
        raise DomainError(SupervisionCode.ALREADY_RESCINDED, "This violation is rescinded already.", "violationId")
    rescission = ViolationRescission(id=uuid.uuid4(), violation_id=violation_id, reason=reason,
                                     rescinded_by=regulator_id, rescinded_at=clock.now())
    session.add(rescission)
    await session.flush()
    if violation.sanction == Sanction.SUSPENSION.value:
        await standing.recompute(session=session, clock=clock, account_id=violation.organisation_id,
                                 role=violation.role)
        await standing.refresh_listings(session=session, account_id=violation.organisation_id)
    accounts.record_audit_event(session, clock, actor=regulator_id, action="violation.rescinded",
                                subject_type="violation", subject_id=violation_id,
                                before={"rescinded": False}, after={"rescinded": True})
    await session.flush()
    return rescission


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


# --- after the commit: held redemptions ---------------------------------------------------------


def releases(*, organisation_id: uuid.UUID, role: str, sanction: str) -> dict | None:
    """Whose held redemptions a sanction releases: a suspended or revoked merchant's, or those of a
    suspended or revoked app operator's mall; None for anything else."""
    if sanction == Sanction.WARNING.value:
        return None
    return role_releases(organisation_id, role)


def role_releases(account_id: uuid.UUID, role: str) -> dict | None:
    """Whose held redemptions revoking an account role releases."""
    if role == Role.MERCHANT.value:
        return {"merchant_id": account_id}
    if role == Role.APP_OPERATOR.value:
        return {"app_operator_id": account_id}
    return None


async def release_held_redemptions(*, session_factory: async_sessionmaker[AsyncSession], clock: Clock,
                                   whose: dict, until: datetime | None) -> int:
    """Release the held redemptions `whose` names (from `releases` or `role_releases`) to the very
    lots they came from, each redemption saying why: the notice the person reads."""
    what = "the merchant" if "merchant_id" in whose else "this app's mall"
    when = (f"suspended by the regulator until {until.astimezone(BUSINESS_TZ):%Y-%m-%d %H:%M} (Shenzhen time)"
            if until is not None else "no longer approved by the regulator")
    notice = f"Released by the platform: {what} is {when} (Measures art. 31-32); your points are back."
    return await mall.release_held_redemptions_of(session_factory=session_factory, clock=clock, notice=notice,
                                                  **whose)


# --- the credit record ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CreditEntry:
    violation: Violation
    organisation_name: str
    rescission: ViolationRescission | None

    def in_force(self, now: datetime) -> bool:
        if self.rescission is not None:
            return False
        if self.violation.sanction == Sanction.SUSPENSION.value:
            return now < self.violation.suspended_until
        return self.violation.sanction == Sanction.REVOCATION.value


async def credit_record(*, session: AsyncSession, organisation_id: uuid.UUID | None, first: int | None,
                        after: str | None) -> Page[CreditEntry]:
    """An organisation's credit record (or every organisation's, for None), newest first, each
    violation with its rescission if any."""
    # the key columns first, by name, for the cursor (core/keyset.py reads them off the row)
    stmt = (select(Violation.recorded_at, Violation.id, Violation, Account.display_name, ViolationRescission)
            .join(Account, Account.id == Violation.organisation_id)
            .outerjoin(ViolationRescission, ViolationRescission.violation_id == Violation.id))
    if organisation_id is not None:
        stmt = stmt.where(Violation.organisation_id == organisation_id)
    return await keyset_page(session, stmt, keys=[Violation.recorded_at, Violation.id], first=first, after=after,
                             descending=True, node=lambda row: CreditEntry(row[2], row[3], row[4]))


async def get_entry(*, session: AsyncSession, violation_id: uuid.UUID) -> CreditEntry:
    row = (await session.execute(
        select(Violation, Account.display_name, ViolationRescission)
        .join(Account, Account.id == Violation.organisation_id)
        .outerjoin(ViolationRescission, ViolationRescission.violation_id == Violation.id)
        .where(Violation.id == violation_id))).one_or_none()
    if row is None:
        raise NotFound(message="No violation has this id.", field="violationId")
    return CreditEntry(row[0], row[1], row[2])


@dataclass(frozen=True)
class PublicSanction:
    """A sanction in force as the public sees it (art. 29, 31): nothing personal, no finding text."""

    violation_id: uuid.UUID
    organisation_name: str
    role: str
    article: int
    sanction: str
    since: datetime
    until: datetime | None  # None: a revocation, for good


def in_force(now: datetime) -> ColumnElement[bool]:
    """A violation whose sanction is in force at `now`: a running suspension or a revocation, unrescinded."""
    return and_(~select(ViolationRescission.id).where(ViolationRescission.violation_id == Violation.id).exists(),
                or_(Violation.sanction == Sanction.REVOCATION.value,
                    and_(Violation.sanction == Sanction.SUSPENSION.value, Violation.suspended_until > now)))


def _public_sanctions() -> Select:
    return (select(Violation.id, Account.display_name, Violation.role, Violation.article, Violation.sanction,
                   Violation.recorded_at, Violation.suspended_until)
            .join(Account, Account.id == Violation.organisation_id))


def _public_sanction(r) -> PublicSanction:
    return PublicSanction(r.id, r.display_name, r.role, r.article, r.sanction, r.recorded_at, r.suspended_until)


async def sanctions_in_force(*, session: AsyncSession, clock: Clock, first: int | None,
                             after: str | None) -> Page[PublicSanction]:
    """Suspensions running now and revocations, unrescinded, newest first."""
    return await keyset_page(session, _public_sanctions().where(in_force(clock.now())),
                             keys=[Violation.recorded_at, Violation.id], first=first, after=after, descending=True,
                             node=_public_sanction)


async def public_sanctions_by_id(*, session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, PublicSanction]:
    """These violations' public facts (the disclosure list pages them together with other sanctions)."""
    if not ids:
        return {}
    return {r.id: _public_sanction(r) for r in await session.execute(_public_sanctions().where(Violation.id.in_(ids)))}
