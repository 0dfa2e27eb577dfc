"""The regulator's expert library (专家库, art. 8).

The regulator adds a person (an account that signed up) as an expert with fields of expertise and
an affiliation; that grants the EXPERT role they sign in with. An expert declares conflicts (the
organisations they work for or with), and so may the regulator; a declared conflict keeps the
expert out of every draw in which that organisation is a party. The regulator suspends and
reinstates experts with a reason. The public list shows name, fields and affiliation only (art.
29): never the account, the conflicts or the reasons."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.models import AccountKind, Role
from core.clock import Clock
from core.errors import CoreCode, DomainError, NotFound
from core.keyset import Page, keyset_page
from core.text import clean_text
from reviews.errors import ReviewCode
from reviews.models import Expert, ExpertConflict, ExpertField, ExpertStatus

DOMAIN_FIELD = re.compile(r"domain:[a-z][a-z0-9_]{1,39}")
MAX_FIELDS = 12


def check_field(value: str, field: str = "field") -> str:
    """A field of expertise: one of ExpertField, or "domain:<behaviour domain>"."""
    value = (value or "").strip()
    if value in {f.value for f in ExpertField} or DOMAIN_FIELD.fullmatch(value):
        return value
    raise DomainError(ReviewCode.INVALID_FIELD, "A field is methodology, project_validation, reduction_verification, "
                                                "scenario or domain:<behaviour domain>.", field)


def _text(value: str | None, field: str, label: str, limit: int) -> str:
    return clean_text(value, field=field, what=label, limit=limit, code=CoreCode.INVALID, multiline=True)


async def add_expert(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, account_id: uuid.UUID,
                     name: str, affiliation: str, fields: list[str]) -> Expert:
    account = await accounts.get_account(session=session, account_id=account_id)
    if account.kind != AccountKind.PERSON.value:
        raise DomainError(ReviewCode.NOT_AN_EXPERT, "An expert signs in with a person's account.", "accountId")
    if await session.scalar(select(Expert.id).where(Expert.account_id == account_id)) is not None:
        raise DomainError(ReviewCode.ALREADY_AN_EXPERT, "This account is already in the expert library.", "accountId")
    checked = sorted({check_field(f, "fields") for f in fields or []})
    if not 1 <= len(checked) <= MAX_FIELDS:
        raise DomainError(CoreCode.INVALID, f"Give 1 to {MAX_FIELDS} fields of expertise.", "fields")
    expert = Expert(id=uuid.uuid4(), account_id=account_id, name=_text(name, "name", "name", 100),
                    affiliation=_text(affiliation, "affiliation", "affiliation", 200), fields=checked,
                    status=ExpertStatus.ACTIVE.value, added_by=regulator_id, added_at=clock.now())
    session.add(expert)
    await accounts.grant_role(session=session, clock=clock, regulator_id=regulator_id, account_id=account_id,
                              role=Role.EXPERT.value, note="expert library")
    await session.flush()
    accounts.record_audit_event(session, clock, actor=regulator_id, action="expert.added", subject_type="expert",
                                subject_id=expert.id, account_id=str(account_id), before=None,
                                after={"status": expert.status, "fields": checked})
    return expert


async def get_expert(*, session: AsyncSession, expert_id: uuid.UUID, lock: bool = False) -> Expert:
    stmt = select(Expert).where(Expert.id == expert_id)
    expert = await session.scalar(stmt.with_for_update() if lock else stmt)
    if expert is None:
        raise NotFound(message="No expert has this id.", field="expertId")
    return expert


async def expert_of_account(*, session: AsyncSession, account_id: uuid.UUID) -> Expert:
    expert = await session.scalar(select(Expert).where(Expert.account_id == account_id))
    if expert is None:
        raise DomainError(ReviewCode.NOT_AN_EXPERT, "This account is not in the expert library.", None)
    return expert


async def set_status(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, expert_id: uuid.UUID,
                     active: bool, reason: str) -> Expert:
    """Suspend or reinstate an expert; a suspended expert is never drawn (seats already held stay)."""
    expert = await get_expert(session=session, expert_id=expert_id, lock=True)
    before = {"status": expert.status}
    expert.status = (ExpertStatus.ACTIVE if active else ExpertStatus.SUSPENDED).value
    expert.status_reason = _text(reason, "reason", "reason", 2000)
    await session.flush()
    accounts.record_audit_event(session, clock, actor=regulator_id,
                                action="expert.reinstated" if active else "expert.suspended", subject_type="expert",
                                subject_id=expert.id, before=before, after={"status": expert.status})
    return expert


async def declare_conflict(*, session: AsyncSession, clock: Clock, declared_by: uuid.UUID, expert_id: uuid.UUID,
                           organisation_id: uuid.UUID, note: str | None) -> ExpertConflict:
    """Record that the expert works for or with an organisation. Declaring it again is the same row."""
    await get_expert(session=session, expert_id=expert_id)
    organisation = await accounts.get_account(session=session, account_id=organisation_id)
    if organisation.kind != AccountKind.ORGANISATION.value:
        raise NotFound(message="No organisation has this id.", field="organisationId")
    existing = await session.scalar(select(ExpertConflict).where(ExpertConflict.expert_id == expert_id,
                                                                 ExpertConflict.organisation_id == organisation_id))
    if existing is not None:
        return existing
    conflict = ExpertConflict(id=uuid.uuid4(), expert_id=expert_id, organisation_id=organisation_id,
                              note=_text(note, "note", "note", 2000) if (note or "").strip() else "",
                              declared_by=declared_by, declared_at=clock.now())
    session.add(conflict)
    await session.flush()
    accounts.record_audit_event(session, clock, actor=declared_by, action="expert.conflict_declared",
                                subject_type="expert", subject_id=expert_id, before=None,
                                after={"conflict_organisation_id": str(organisation_id)})
    return conflict


async def conflicts_of(*, session: AsyncSession, expert_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[ExpertConflict]]:
    """Each expert's declared conflicts, oldest first, in one query."""
    found: dict[uuid.UUID, list[ExpertConflict]] = {i: [] for i in expert_ids}
    for conflict in await session.scalars(select(ExpertConflict).where(ExpertConflict.expert_id.in_(expert_ids))
                                          .order_by(ExpertConflict.declared_at, ExpertConflict.id)):
        found[conflict.expert_id].append(conflict)
    return found


async def public_experts(*, session: AsyncSession, field: str | None, first: int | None, after: str | None) -> Page:
    """Active experts by name (art. 29); the caller shows only name, fields and affiliation."""
    stmt = select(Expert).where(Expert.status == ExpertStatus.ACTIVE.value)
    if field:
        stmt = stmt.where(Expert.fields.any(check_field(field)))
    return await keyset_page(session, stmt, keys=[Expert.name, Expert.id], first=first, after=after)


async def library(*, session: AsyncSession, first: int | None, after: str | None) -> Page:
    """Every expert, suspended ones too, by name: for the regulator."""
    return await keyset_page(session, select(Expert), keys=[Expert.name, Expert.id], first=first, after=after)
