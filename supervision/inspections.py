"""Inspections (Measures art. 30): the regulator records its inspection of the platform (or of one
organisation), the findings, and follow-ups each due by a date, open until done with a note. Every
step is a new row of the inspection's history (inspection_events); queries are the regulator's.

Lock order: the inspection row, then the follow-up row. Each act writes its history row and its
audit event last."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from accounts.models import Account, AccountKind
from core.clock import Clock, business_date
from core.db import get_row
from core.documents import Document, check_documents
from core.errors import DomainError, NotFound
from core.keyset import Page, keyset_page
from core.text import clean_text
from supervision.errors import SupervisionCode
from supervision.models import FollowUpStatus, Inspection, InspectionEvent, InspectionFollowUp

EARLIEST = date(2022, 8, 18)  # the Measures came into force
MAX_DUE = timedelta(days=3 * 366)


def _event(session: AsyncSession, clock: Clock, inspection_id: uuid.UUID, action: str, actor: uuid.UUID,
           follow_up_id: uuid.UUID | None = None, **details) -> None:
    session.add(InspectionEvent(id=uuid.uuid4(), inspection_id=inspection_id, follow_up_id=follow_up_id,
                                action=action, actor_id=actor, at=clock.now(), details=details))


async def record_inspection(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID,
                            organisation_id: uuid.UUID | None, inspected_on: date, scope: str, findings: str,
                            documents: list[Document]) -> Inspection:
    """An inspection carried out on `inspected_on` (a past or today's date, Shenzhen time)."""
    if organisation_id is not None:
        account = await session.get(Account, organisation_id)
        if account is None or account.kind != AccountKind.ORGANISATION.value:
            raise NotFound(message="No organisation has this id.", field="organisationId")
    if not EARLIEST <= inspected_on <= business_date(clock.now()):
        raise DomainError(SupervisionCode.INVALID_DATE, "An inspection took place between 2022-08-18 and today.",
                          "inspectedOn")
    scope = clean_text(scope, field="scope", what="scope", limit=2_000, code=SupervisionCode.SCOPE_REQUIRED,
                       multiline=True)
    findings = clean_text(findings, field="findings", what="findings", limit=10_000,
                          code=SupervisionCode.FINDING_REQUIRED, multiline=True)
    docs = check_documents(documents, field="documents", code=SupervisionCode.INVALID_DOCUMENT, required=False)
    inspection = Inspection(id=uuid.uuid4(), organisation_id=organisation_id, inspected_on=inspected_on, scope=scope,
                            findings=findings, documents=[d.as_json() for d in docs], recorded_by=regulator_id,
                            recorded_at=clock.now())
    session.add(inspection)
    await session.flush()
    _event(session, clock, inspection.id, "inspection.recorded", regulator_id)
    accounts.record_audit_event(session, clock, actor=regulator_id, action="inspection.recorded",
                                subject_type="inspection", subject_id=inspection.id, before={},
                                after={"inspectedOn": inspected_on.isoformat(),
                                       "organisation": str(organisation_id) if organisation_id else None})
    await session.flush()
    return inspection


async def _locked_inspection(session: AsyncSession, inspection_id: uuid.UUID) -> Inspection:
    return await get_row(session, Inspection, inspection_id, lock=True, message="No inspection has this id.",
                         field="inspectionId")


async def add_follow_up(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, inspection_id: uuid.UUID,
                        action: str, due_on: date) -> InspectionFollowUp:
    """Something the inspection asks to be done by `due_on` (today to three years on)."""
    await _locked_inspection(session, inspection_id)
    action = clean_text(action, field="action", what="follow-up", limit=2_000, code=SupervisionCode.SCOPE_REQUIRED,
                        multiline=True)
    today = business_date(clock.now())
    if not today <= due_on <= today + MAX_DUE:
        raise DomainError(SupervisionCode.INVALID_DATE, "A follow-up is due between today and three years on.",
                          "dueOn")
    follow_up = InspectionFollowUp(id=uuid.uuid4(), inspection_id=inspection_id, action=action, due_on=due_on,
                                   status=FollowUpStatus.OPEN.value, added_by=regulator_id, added_at=clock.now())
    session.add(follow_up)
    await session.flush()
    _event(session, clock, inspection_id, "follow_up.added", regulator_id, follow_up.id, dueOn=due_on.isoformat())
    accounts.record_audit_event(session, clock, actor=regulator_id, action="inspection_follow_up.added",
                                subject_type="inspection_follow_up", subject_id=follow_up.id, before={},
                                after={"status": FollowUpStatus.OPEN.value, "dueOn": due_on.isoformat()})
    await session.flush()
    return follow_up


async def complete_follow_up(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID,
                             follow_up_id: uuid.UUID, note: str) -> InspectionFollowUp:
    """open -> done, with a note of what was done; a done follow-up stays done."""
    found = await get_row(session, InspectionFollowUp, follow_up_id, message="No follow-up has this id.",
                          field="followUpId")
    await _locked_inspection(session, found.inspection_id)  # lock order: the inspection, then its follow-up
    follow_up = await get_row(session, InspectionFollowUp, follow_up_id, lock=True,
                              message="No follow-up has this id.", field="followUpId")
    if follow_up.status != FollowUpStatus.OPEN.value:
        raise DomainError(SupervisionCode.ALREADY_DONE, "This follow-up is done already.", "followUpId")
    note = clean_text(note, field="note", what="note of what was done", limit=2_000,
                      code=SupervisionCode.NOTE_REQUIRED, multiline=True)
    follow_up.status, follow_up.completion_note = FollowUpStatus.DONE.value, note
    follow_up.completed_by, follow_up.completed_at = regulator_id, clock.now()
    _event(session, clock, follow_up.inspection_id, "follow_up.done", regulator_id, follow_up.id)
    accounts.record_audit_event(session, clock, actor=regulator_id, action="inspection_follow_up.done",
                                subject_type="inspection_follow_up", subject_id=follow_up.id,
                                before={"status": FollowUpStatus.OPEN.value}, after={"status": FollowUpStatus.DONE.value})
    await session.flush()
    return follow_up


@dataclass(frozen=True)
class InspectionView:
    inspection: Inspection
    follow_ups: list[InspectionFollowUp]
    history: list[InspectionEvent]


async def views(session: AsyncSession, rows: list[Inspection]) -> list[InspectionView]:
    """Inspections with their follow-ups and history: two reads whatever the number."""
    ids = [r.id for r in rows]
    follow_ups: dict[uuid.UUID, list[InspectionFollowUp]] = {i: [] for i in ids}
    history: dict[uuid.UUID, list[InspectionEvent]] = {i: [] for i in ids}
    if ids:
        for f in await session.scalars(select(InspectionFollowUp).where(InspectionFollowUp.inspection_id.in_(ids))
                                       .order_by(InspectionFollowUp.added_at, InspectionFollowUp.id)):
            follow_ups[f.inspection_id].append(f)
        for e in await session.scalars(select(InspectionEvent).where(InspectionEvent.inspection_id.in_(ids))
                                       .order_by(InspectionEvent.seq)):
            history[e.inspection_id].append(e)
    return [InspectionView(r, follow_ups[r.id], history[r.id]) for r in rows]


async def get_inspection(*, session: AsyncSession, inspection_id: uuid.UUID) -> InspectionView:
    row = await session.get(Inspection, inspection_id)
    if row is None:
        raise NotFound(message="No inspection has this id.", field="inspectionId")
    return (await views(session, [row]))[0]


async def list_inspections(*, session: AsyncSession, organisation_id: uuid.UUID | None, first: int | None,
                           after: str | None) -> Page[Inspection]:
    """Inspections, newest first; of one organisation if named."""
    stmt = select(Inspection)
    if organisation_id is not None:
        stmt = stmt.where(Inspection.organisation_id == organisation_id)
    return await keyset_page(session, stmt, keys=[Inspection.inspected_on, Inspection.id], first=first, after=after,
                             descending=True)
