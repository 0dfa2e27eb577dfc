"""Methodology filing (方法学备案, art. 11-13): applications, their review by drawn experts, and the
regulator's filing, the only way a methodology is published (art. 14).

Any approved organisation may apply (art. 11): one holding a role the regulator approved (app
operator, merchant, verifier; schema.permissions.APPROVED_ORGANISATIONS), not one that just signed
up. The regulator's own methodologies go through the same expert evaluation (art. 12). An application is complete or refused whole, naming every
missing item. A complete one opens a review of drawn methodology experts (reviews/, art. 13);
once every seated expert has given an opinion the regulator files (备案) and publishes it, as a
new version of its code, or refuses it, giving reasons in both cases. Each step is journalled with
who and when (MethodologyApplicationEvent)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from accounts.service import record_audit_event
from core.clock import Clock, business_date
from core.documents import Attachment, Document, check_attachment
from core.errors import DomainError, DomainErrors, NotFound
from core.keyset import Page, keyset_page
from reductions.errors import ReductionCode
from reductions.models import (ApplicationStatus, CalculationKind, DocumentKind, Methodology, MethodologyApplication,
                               MethodologyApplicationEvent, MethodologyDocument)
from reductions.service import parse_quantity, publish_version
from reviews import service as reviews
from reviews.models import SubjectKind

# art. 13 does not fix the panel's size; three experts give a majority without a tie
EXPERTS_WANTED = 3
REVIEW_FIELD = "methodology"
# a document travels base64 in one GraphQL request (at most 1 MB by default, three documents)


@dataclass(frozen=True)
class ApplicationFields:
    """What an application carries; None (or blank) is a missing item."""

    code: str | None = None
    name: str | None = None
    behaviour_domain: str | None = None
    activity_unit: str | None = None
    calculation: CalculationKind | None = None
    factor_mg_per_unit: int | None = None
    max_quantity: str | None = None
    application_form: Attachment | None = None
    methodology_text: Attachment | None = None
    drafting_notes: Attachment | None = None


# (attribute, input field, what the applicant is told is missing, longest text)
_TEXTS = (("code", "code", "the methodology's code", 40), ("name", "name", "its name", 200),
          ("behaviour_domain", "behaviourDomain", "the behaviour domain", 40),
          ("activity_unit", "activityUnit", "the activity unit", 20))
_DOCUMENTS = (("application_form", "applicationForm", "the application form (备案申请表)", DocumentKind.APPLICATION_FORM),
              ("methodology_text", "methodologyText", "the methodology text (方法学文本)", DocumentKind.METHODOLOGY_TEXT),
              ("drafting_notes", "draftingNotes", "the drafting notes (编制说明)", DocumentKind.DRAFTING_NOTES))


def check_application(fields: ApplicationFields) -> int:
    """Refuse an incomplete or malformed application with one error per problem (DomainErrors);
    return the largest credible quantity in thousandths."""
    problems: list[DomainError] = []

    def missing(field: str, what: str) -> None:
        problems.append(DomainError(ReductionCode.MISSING_ITEM, f"The application lacks {what}.", field))

    for attr, field, what, longest in _TEXTS:
        value = (getattr(fields, attr) or "").strip()
        if not value:
            missing(field, what)
        elif len(value) > longest:
            problems.append(DomainError(ReductionCode.INVALID_APPLICATION, f"At most {longest} characters.", field))
    if fields.calculation is None:
        missing("calculation", "the calculation's kind")
    if fields.factor_mg_per_unit is None:
        missing("factorMgPerUnit", "the reduction factor (mg CO2e per unit)")
    elif fields.factor_mg_per_unit <= 0:
        problems.append(DomainError(ReductionCode.INVALID_APPLICATION,
                                    "The reduction factor is a positive number of mg CO2e per unit.", "factorMgPerUnit"))
    max_milli = 0
    if fields.max_quantity is None or not fields.max_quantity.strip():
        missing("maxQuantity", "the largest credible quantity of one report")
    else:
        try:
            max_milli = parse_quantity(fields.max_quantity, "maxQuantity")
        except DomainError as refused:
            problems.append(refused)
        else:
            if max_milli <= 0:
                problems.append(DomainError(ReductionCode.INVALID_APPLICATION,
                                            "The largest credible quantity is positive.", "maxQuantity"))
    named: list[Document] = []  # the documents checked so far: names are distinct across the application
    for attr, field, what, _kind in _DOCUMENTS:
        attachment: Attachment | None = getattr(fields, attr)
        if attachment is None or not attachment.content:
            missing(field, what)
        else:
            try:
                named = check_attachment(attachment, named=named, field=field,
                                         too_large=ReductionCode.DOCUMENT_TOO_LARGE,
                                         invalid=ReductionCode.INVALID_APPLICATION)
            except DomainError as refused:
                problems.append(refused)
    if problems:
        raise DomainErrors(problems)
    return max_milli


def _journal(session: AsyncSession, application_id: uuid.UUID, event: str, actor_id: uuid.UUID, at,
             note: str | None = None) -> None:
    session.add(MethodologyApplicationEvent(application_id=application_id, event=event, actor_id=actor_id, at=at,
                                            note=note))


async def apply(*, session: AsyncSession, clock: Clock, applicant_id: uuid.UUID,
                fields: ApplicationFields) -> MethodologyApplication:
    """Submit an application (art. 11-12) and open its expert review (art. 13), the applicant
    being the party whose declared conflicts exclude experts."""
    max_milli = check_application(fields)
    now = clock.now()
    application = MethodologyApplication(
        applicant_id=applicant_id, code=fields.code.strip().upper(), name=fields.name.strip(),
        behaviour_domain=fields.behaviour_domain.strip(), activity_unit=fields.activity_unit.strip(),
        calculation=CalculationKind(fields.calculation).value, factor_mg_per_unit=fields.factor_mg_per_unit,
        max_quantity_milli=max_milli, status=ApplicationStatus.UNDER_REVIEW.value, submitted_at=now)
    session.add(application)
    await session.flush()
    for attr, _field, _what, kind in _DOCUMENTS:
        attachment: Attachment = getattr(fields, attr)
        session.add(MethodologyDocument(
            application_id=application.id, kind=kind.value, file_name=attachment.document.name.strip(),
            media_type=attachment.media_type.strip() or "application/octet-stream",
            sha256=attachment.document.sha256, size_bytes=attachment.document.byte_size,
            content=attachment.content))
    review = await reviews.open_review(
        session=session, clock=clock, opened_by=applicant_id, subject_kind=SubjectKind.METHODOLOGY_APPLICATION,
        subject_id=application.id, field=REVIEW_FIELD, experts_wanted=EXPERTS_WANTED, parties=[applicant_id])
    application.review_id = review.id
    _journal(session, application.id, "submitted", applicant_id, now)
    await session.flush()
    # an applicant's act; the regulator files its own methodologies this way too (art. 12)
    record_audit_event(session, clock, actor=applicant_id, action="methodology_application.submitted",
                       subject_type="methodology_application", subject_id=application.id, review_id=review.id,
                       before=None, after={"status": application.status, "code": application.code})
    return application


async def _locked(session: AsyncSession, application_id: uuid.UUID) -> MethodologyApplication:
    application = (await session.execute(
        select(MethodologyApplication).where(MethodologyApplication.id == application_id).with_for_update())
    ).scalar_one_or_none()
    if application is None:
        raise NotFound(message="No such methodology application.", field="applicationId")
    if application.status != ApplicationStatus.UNDER_REVIEW.value:
        raise DomainError(ReductionCode.INVALID_TRANSITION, f"This application is already {application.status}.",
                          "applicationId")
    return application


def _decided(session: AsyncSession, application: MethodologyApplication, status: ApplicationStatus, review,
             regulator_id: uuid.UUID, now) -> None:
    application.status = status.value
    application.decided_at, application.decided_by = now, regulator_id
    application.decision_reason = review.decision_reason
    _journal(session, application.id, status.value, regulator_id, now, review.decision_reason)


async def file_application(
    *, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, application_id: uuid.UUID, reason: str,
    effective_from: date | None = None,
) -> tuple[MethodologyApplication, Methodology]:
    """File (备案) and publish: decide the review (refused while any seated expert's opinion is
    outstanding) and publish the next version of the application's code, effective from
    `effective_from` (today's business day when absent, never earlier)."""
    application = await _locked(session, application_id)
    now = clock.now()
    today = business_date(now)
    effective_from = effective_from or today
    if effective_from < today:
        raise DomainError(ReductionCode.EFFECTIVE_IN_PAST, "A methodology cannot take effect before it is filed.",
                          "effectiveFrom")
    # refused while an opinion is outstanding or without reasons (reviews.service.decide_review)
    review = await reviews.decide_review(session=session, clock=clock, regulator_id=regulator_id,
                                         review_id=application.review_id, approve=True, reason=reason)
    # versions of one code are numbered in filing order (publish_version locks the code)
    methodology = await publish_version(
        session=session, clock=clock, code=application.code, name=application.name,
        behaviour_domain=application.behaviour_domain, activity_unit=application.activity_unit,
        calculation=CalculationKind(application.calculation), factor_mg_per_unit=application.factor_mg_per_unit,
        max_quantity_milli=application.max_quantity_milli, effective_from=effective_from,
        source_reference=f"Filed methodology application {application.id} (review {review.id})",
        application_id=application.id, published_by=regulator_id)
    application.status = ApplicationStatus.FILED.value
    _decided(session, application, ApplicationStatus.FILED, review, regulator_id, now)
    application.methodology_id = methodology.id
    await session.flush()
    record_audit_event(session, clock, actor=regulator_id, action="methodology_application.filed",
                       subject_type="methodology_application", subject_id=application.id,
                       before={"status": ApplicationStatus.UNDER_REVIEW.value},
                       after={"status": application.status, "code": application.code,
                              "version": methodology.version, "methodology_id": methodology.id})
    return application, methodology


async def refuse_application(
    *, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, application_id: uuid.UUID, reason: str,
) -> MethodologyApplication:
    """Refuse with reasons, after the experts' opinions are in (the review decides likewise)."""
    application = await _locked(session, application_id)
    review = await reviews.decide_review(session=session, clock=clock, regulator_id=regulator_id,
                                         review_id=application.review_id, approve=False, reason=reason)
    _decided(session, application, ApplicationStatus.REFUSED, review, regulator_id, clock.now())
    await session.flush()
    record_audit_event(session, clock, actor=regulator_id, action="methodology_application.refused",
                       subject_type="methodology_application", subject_id=application.id,
                       before={"status": ApplicationStatus.UNDER_REVIEW.value},
                       after={"status": application.status, "code": application.code})
    return application


async def get_application(*, session: AsyncSession, application_id: uuid.UUID) -> MethodologyApplication:
    application = await session.get(MethodologyApplication, application_id)
    if application is None:
        raise NotFound(message="No such methodology application.", field="id")
    return application


async def list_applications(*, session: AsyncSession, first: int | None, after: str | None,
                            applicant_id: uuid.UUID | None = None,
                            status: ApplicationStatus | None = None) -> Page:
    """Newest first: one applicant's (its own view) or everyone's (the regulator's), by status."""
    stmt = select(MethodologyApplication)
    if applicant_id is not None:
        stmt = stmt.where(MethodologyApplication.applicant_id == applicant_id)
    if status is not None:
        stmt = stmt.where(MethodologyApplication.status == status.value)
    return await keyset_page(session, stmt, keys=[MethodologyApplication.submitted_at, MethodologyApplication.id],
                             first=first, after=after, descending=True)


async def documents_of(*, session: AsyncSession, application_ids: list[uuid.UUID],
                       with_content: bool = False) -> dict[uuid.UUID, list[MethodologyDocument]]:
    """Each application's documents, in the order of the form (form, text, notes); their bytes
    are read only `with_content` (a list shows names, sizes and sha256)."""
    order = [kind.value for _a, _f, _w, kind in _DOCUMENTS]
    stmt = select(MethodologyDocument).where(MethodologyDocument.application_id.in_(application_ids))
    if not with_content:
        stmt = stmt.options(defer(MethodologyDocument.content))
    rows = (await session.execute(stmt)).scalars().all()
    out: dict[uuid.UUID, list[MethodologyDocument]] = {i: [] for i in application_ids}
    for row in sorted(rows, key=lambda d: order.index(d.kind)):
        out[row.application_id].append(row)
    return out


async def journal_of(*, session: AsyncSession, application_id: uuid.UUID) -> list[MethodologyApplicationEvent]:
    return list((await session.execute(
        select(MethodologyApplicationEvent).where(MethodologyApplicationEvent.application_id == application_id)
        .order_by(MethodologyApplicationEvent.seq))).scalars())


async def applications_by_id(*, session: AsyncSession,
                             ids: list[uuid.UUID]) -> dict[uuid.UUID, MethodologyApplication]:
    if not ids:
        return {}
    rows = (await session.execute(select(MethodologyApplication).where(MethodologyApplication.id.in_(ids)))).scalars()
    return {row.id: row for row in rows}
