"""Methodology filing (issue 10, art. 11-14), in the domain: every state transition and every refusal
of reductions/filing.py, on the real database, with the real expert review (reviews/)."""

import hashlib
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, text

from core.errors import DomainError, DomainErrors
from reductions import filing
from reductions import service as reductions
from reductions.errors import ReductionCode
from reductions.models import (ApplicationStatus, CalculationKind, Methodology, MethodologyApplication,
                               MethodologyDocument, PublicationStatus)
from reductions.service import ItemStatus, ReportItem
from reviews import service as reviews
from reviews.errors import ReviewCode
from reviews.models import ReviewStatus, SubjectKind
from tests.neutrality.fixtures import accounts
from tests.reductions.filing_fixtures import FORM, NOTES, TEXT, complete_fields, seat_and_opine
from tests.wallets.fixtures import make_world, publish_rule, report


async def _in_tx(services, work):
    async with services.session_factory() as session:
        async with session.begin():
            return await work(session)


async def apply(services, applicant_id, fields=None):
    return await _in_tx(services, lambda session: filing.apply(
        session=session, clock=services.clock, applicant_id=applicant_id, fields=fields or complete_fields()))


async def file(services, regulator_id, application_id, reason="方法学合理，数据来源可靠", effective_from=None):
    return await _in_tx(services, lambda session: filing.file_application(
        session=session, clock=services.clock, regulator_id=regulator_id, application_id=application_id,
        reason=reason, effective_from=effective_from))


async def refuse(services, regulator_id, application_id, reason="基准线依据不足"):
    return await _in_tx(services, lambda session: filing.refuse_application(
        session=session, clock=services.clock, regulator_id=regulator_id, application_id=application_id,
        reason=reason))


async def refused_with(code, attempt) -> None:
    """`attempt` (an awaitable) is refused with `code`."""
    with pytest.raises(DomainError) as refused:
        await attempt
    assert refused.value.code == code


async def status_of(services, application_id):
    async with services.session_factory() as session:
        return (await session.get(MethodologyApplication, application_id)).status


def test_an_empty_application_names_every_missing_item():
    with pytest.raises(DomainErrors) as refused:
        filing.check_application(filing.ApplicationFields())
    problems = refused.value.problems
    assert {p.code for p in problems} == {ReductionCode.MISSING_ITEM}
    assert [p.field for p in problems] == [
        "code", "name", "behaviourDomain", "activityUnit", "calculation", "factorMgPerUnit", "maxQuantity",
        "applicationForm", "methodologyText", "draftingNotes"]


def test_a_partial_or_malformed_application_names_each_problem():
    with pytest.raises(DomainErrors) as refused:
        filing.check_application(complete_fields(
            name="  ", drafting_notes=None, factor=0, max_quantity="1.0001",
            methodology_text=filing.Attachment.of("t.pdf", "application/pdf", b"x" * (filing.MAX_DOCUMENT_BYTES + 1))))
    assert [(p.code, p.field) for p in refused.value.problems] == [
        (ReductionCode.MISSING_ITEM, "name"), (ReductionCode.INVALID_APPLICATION, "factorMgPerUnit"),
        (ReductionCode.INVALID_QUANTITY, "maxQuantity"), (ReductionCode.DOCUMENT_TOO_LARGE, "methodologyText"),
        (ReductionCode.MISSING_ITEM, "draftingNotes")]
    assert filing.check_application(complete_fields()) == 60_000


def test_documents_are_checked_as_core_documents_are():
    """Names without NUL, 1 to 200 characters, distinct across the application (core.documents.check_documents);
    each document's sha256 and size come from its bytes, once."""
    form = filing.Attachment.of("form.pdf", "application/pdf", FORM)
    assert (form.document.sha256, form.document.byte_size) == (hashlib.sha256(FORM).hexdigest(), len(FORM))
    with pytest.raises(DomainErrors) as refused:
        filing.check_application(complete_fields(
            methodology_text=filing.Attachment.of("form.pdf", "application/pdf", TEXT),
            drafting_notes=filing.Attachment.of("notes\x00.txt", "text/plain", NOTES)))
    assert [(p.code, p.field) for p in refused.value.problems] == [
        (ReductionCode.INVALID_APPLICATION, "methodologyText"), (ReductionCode.INVALID_APPLICATION, "draftingNotes")]
    for name in (" ", "x" * 201):
        with pytest.raises(DomainErrors) as refused:
            filing.check_application(complete_fields(drafting_notes=filing.Attachment.of(name, "text/plain", NOTES)))
        assert [(p.code, p.field) for p in refused.value.problems] == [
            (ReductionCode.INVALID_APPLICATION, "draftingNotes")]


async def test_an_incomplete_application_stores_nothing(services):
    [org] = await accounts(services, 1)
    with pytest.raises(DomainErrors):
        await apply(services, org, complete_fields(application_form=None))
    async with services.session_factory() as session:
        assert (await session.execute(select(func.count()).select_from(MethodologyApplication))).scalar_one() == 0


async def test_a_complete_application_opens_a_methodology_review(services):
    [org] = await accounts(services, 1)
    application = await apply(services, org)
    assert application.status == ApplicationStatus.UNDER_REVIEW.value
    async with services.session_factory() as session:
        review = await reviews.review_of(session=session, subject_kind=SubjectKind.METHODOLOGY_APPLICATION,
                                         subject_id=application.id)
        documents = (await filing.documents_of(session=session, application_ids=[application.id],
                                               with_content=True))[application.id]
        journal = await filing.journal_of(session=session, application_id=application.id)
    assert review.id == application.review_id
    assert (review.status, review.field, review.experts_wanted, review.parties) == (
        ReviewStatus.OPEN.value, "methodology", 3, [org])
    assert [(d.kind, d.sha256, d.size_bytes, d.content) for d in documents] == [
        ("application_form", hashlib.sha256(FORM).hexdigest(), len(FORM), FORM),
        ("methodology_text", hashlib.sha256(TEXT).hexdigest(), len(TEXT), TEXT),
        ("drafting_notes", hashlib.sha256(NOTES).hexdigest(), len(NOTES), NOTES)]
    assert [(e.event, e.actor_id) for e in journal] == [("submitted", org)]


async def test_the_regulator_cannot_decide_while_opinions_are_outstanding(services):
    [org] = await accounts(services, 1)
    [regulator] = await accounts(services, 1, role="regulator", kind="authority")
    application = await apply(services, org)
    for decide in (file, refuse):
        await refused_with(ReviewCode.OPINIONS_OUTSTANDING, decide(services, regulator, application.id))
    await seat_and_opine(services, regulator, application, opinions=2)  # one seat still without an opinion
    await refused_with(ReviewCode.OPINIONS_OUTSTANDING, file(services, regulator, application.id))
    assert await status_of(services, application.id) == ApplicationStatus.UNDER_REVIEW.value


async def test_filing_publishes_a_version_linked_to_the_application_and_review(services, clock):
    [org] = await accounts(services, 1)
    [regulator] = await accounts(services, 1, role="regulator", kind="authority")
    application = await apply(services, org)
    await seat_and_opine(services, regulator, application)
    await refused_with(ReviewCode.REASON_REQUIRED, file(services, regulator, application.id, reason=" "))
    filed, methodology = await file(services, regulator, application.id)
    assert filed.status == ApplicationStatus.FILED.value
    assert (filed.decided_by, filed.decision_reason, filed.methodology_id) == (
        regulator, "方法学合理，数据来源可靠", methodology.id)
    assert (methodology.code, methodology.version, methodology.status, methodology.calculation,
            methodology.factor_mg_per_unit, methodology.max_quantity_milli, methodology.application_id) == (
        "SZ-BIKE", 1, PublicationStatus.PUBLISHED.value, "factor_per_unit", 64_000, 60_000, application.id)
    assert methodology.effective_from == date(2026, 3, 2)  # the business day of filing
    async with services.session_factory() as session:
        review = await reviews.review_of(session=session, subject_kind=SubjectKind.METHODOLOGY_APPLICATION,
                                         subject_id=application.id)
        journal = await filing.journal_of(session=session, application_id=application.id)
    assert review.decision == "approved" and review.decision_reason == "方法学合理，数据来源可靠"
    assert [(e.event, e.actor_id) for e in journal] == [("submitted", org), ("filed", regulator)]
    # decided once: neither filed again nor refused
    for decide in (file, refuse):
        await refused_with(ReductionCode.INVALID_TRANSITION, decide(services, regulator, application.id))


async def test_refusal_gives_reasons_and_publishes_nothing(services):
    [org] = await accounts(services, 1)
    [regulator] = await accounts(services, 1, role="regulator", kind="authority")
    application = await apply(services, org)
    await seat_and_opine(services, regulator, application, verdict="fail")
    await refused_with(ReviewCode.REASON_REQUIRED, refuse(services, regulator, application.id, reason="  "))
    refused_row = await refuse(services, regulator, application.id)
    assert (refused_row.status, refused_row.decision_reason, refused_row.methodology_id) == (
        ApplicationStatus.REFUSED.value, "基准线依据不足", None)
    async with services.session_factory() as session:
        assert (await session.execute(select(Methodology).where(Methodology.code == "SZ-BIKE"))).first() is None
        review = await reviews.review_of(session=session, subject_kind=SubjectKind.METHODOLOGY_APPLICATION,
                                         subject_id=application.id)
        journal = await filing.journal_of(session=session, application_id=application.id)
    assert review.decision == "refused"
    assert [e.event for e in journal] == ["submitted", "refused"]
    await refused_with(ReductionCode.INVALID_TRANSITION, file(services, regulator, application.id))


async def test_unknown_applications_and_past_effective_dates_are_refused(services):
    [org] = await accounts(services, 1)
    [regulator] = await accounts(services, 1, role="regulator", kind="authority")
    await refused_with("NOT_FOUND", file(services, regulator, uuid.uuid4()))
    application = await apply(services, org)
    await seat_and_opine(services, regulator, application)
    await refused_with(ReductionCode.EFFECTIVE_IN_PAST,
                       file(services, regulator, application.id, effective_from=date(2026, 3, 1)))
    assert await status_of(services, application.id) == ApplicationStatus.UNDER_REVIEW.value


async def test_the_regulators_own_methodology_goes_through_the_same_review(services):
    """Art. 12: a new version of SZ-METRO, proposed by the regulator itself, is reviewed like any other;
    filed, it replaces version 1 from its effective day, and reports of earlier days keep version 1."""
    [regulator] = await accounts(services, 1, role="regulator", kind="authority")
    application = await apply(services, regulator, complete_fields(code="sz-metro", factor=46_700))
    async with services.session_factory() as session:
        review = await reviews.review_of(session=session, subject_kind=SubjectKind.METHODOLOGY_APPLICATION,
                                         subject_id=application.id)
    assert review is not None and review.id == application.review_id
    await refused_with(ReviewCode.OPINIONS_OUTSTANDING, file(services, regulator, application.id))
    await seat_and_opine(services, regulator, application)
    tomorrow = date(2026, 3, 3)
    _, methodology = await file(services, regulator, application.id, effective_from=tomorrow)
    assert (methodology.code, methodology.version, methodology.effective_from) == ("SZ-METRO", 2, tomorrow)

    world = await make_world(services)
    await publish_rule(services)
    today_ride = ReportItem("today", "u-0", "SZ-METRO", "10", services.clock.now() - timedelta(minutes=5))
    services.clock.advance(days=1)
    tomorrow_ride = ReportItem("tomorrow", "u-0", "SZ-METRO", "10", services.clock.now())
    today, tomorrow_result = await report(services, world.operator_id, [today_ride, tomorrow_ride])
    assert (today.reduction_mg, tomorrow_result.reduction_mg) == (468_000, 467_000)


async def test_a_methodology_is_nameable_only_while_in_force(services):
    """In force means published and effective_from <= today <= effective_to: a version filed to take effect
    tomorrow is not yet named by a CER project or an exchange rule (nor credits today's behaviour), and one
    past its effective_to is no longer."""
    from neutrality.cers import projects
    from neutrality.errors import RegistryCode

    [org] = await accounts(services, 1)
    [owner] = await accounts(services, 1, role="project_owner")
    [regulator] = await accounts(services, 1, role="regulator", kind="authority")
    application = await apply(services, org, complete_fields(code="SZ-FUTURE"))
    await seat_and_opine(services, regulator, application)
    _, methodology = await file(services, regulator, application.id, effective_from=date(2026, 3, 3))

    async def rule(session):
        return await reductions.create_exchange_rule(
            session=session, clock=services.clock, points=1, reduction_mg=10_000, daily_cap_points=100,
            acceptance_window_days=7, effective_from=services.clock.now(), methodology_code="SZ-FUTURE")

    async def project(session):
        return await projects.register_project(session=session, clock=services.clock, owner_id=owner, fields=(
            projects.ProjectFields(title="未来方法学项目", methodology_code="SZ-FUTURE", location="深圳市南山区",
                                   expected_tonnes_per_year=100)))

    async def in_force(session):
        return await reductions.is_published_methodology(session=session, clock=services.clock, code="SZ-FUTURE")

    world = await make_world(services)
    await publish_rule(services)
    today = await report(services, world.operator_id, [
        ReportItem("early", "u-0", "SZ-FUTURE", "10", services.clock.now())])
    assert today[0].reject_code == "METHODOLOGY_NOT_PUBLISHED"
    assert await _in_tx(services, in_force) is False
    await refused_with(ReductionCode.METHODOLOGY_NOT_PUBLISHED, _in_tx(services, rule))
    await refused_with(RegistryCode.METHODOLOGY_NOT_PUBLISHED, _in_tx(services, project))

    services.clock.advance(days=1)  # 3 March: in force
    assert await _in_tx(services, in_force) is True
    assert (await _in_tx(services, rule)).methodology_code == "SZ-FUTURE"
    assert (await _in_tx(services, project)).methodology_code == "SZ-FUTURE"

    async def ends_today(session):
        await session.execute(text("UPDATE methodologies SET effective_to = :d WHERE id = :i"),
                              {"d": date(2026, 3, 3), "i": methodology.id})

    await _in_tx(services, ends_today)
    assert await _in_tx(services, in_force) is True  # effective_to is the last day in force
    services.clock.advance(days=1)  # 4 March: past effective_to
    assert await _in_tx(services, in_force) is False
    await refused_with(ReductionCode.METHODOLOGY_NOT_PUBLISHED, _in_tx(services, rule))
    await refused_with(RegistryCode.METHODOLOGY_NOT_PUBLISHED, _in_tx(services, project))
    late = await report(services, world.operator_id, [
        ReportItem("late", "u-0", "SZ-FUTURE", "10", services.clock.now())])
    assert late[0].reject_code == "METHODOLOGY_NOT_PUBLISHED"


async def test_a_filed_baseline_methodology_credits_reports(services):
    [org] = await accounts(services, 1)
    [regulator] = await accounts(services, 1, role="regulator", kind="authority")
    application = await apply(services, org, complete_fields(
        code="SZ-OFFICE-POWER", calculation=CalculationKind.BASELINE_MINUS_ACTUAL, factor=570_300,
        activity_unit="kWh", max_quantity="5000"))
    await seat_and_opine(services, regulator, application)
    await file(services, regulator, application.id)
    world = await make_world(services)
    await publish_rule(services)
    when = services.clock.now()
    saved, more = await report(services, world.operator_id, [
        ReportItem("a", "u-0", "SZ-OFFICE-POWER", None, when, baseline_quantity="12.05", actual_quantity="10"),
        ReportItem("b", "u-1", "SZ-OFFICE-POWER", None, when, baseline_quantity="10", actual_quantity="12.05")])
    # 2.05 kWh x 570.3 g = 1,169.115 g -> 116 points at 1 point / 10 g
    assert (saved.status, saved.reduction_mg, saved.points) == (ItemStatus.CREDITED, 1_169_115, 116)
    assert (more.status, more.reduction_mg, more.points) == (ItemStatus.CREDITED, 0, 0)


async def test_filing_and_seeding_number_versions_of_a_code_one_after_the_other(services):
    """Both write through reductions.service.publish_version, which locks the code: a seeding racing
    another waits for it and takes the next version, where both would have taken version 1."""
    import asyncio

    from reductions.seeding import seed_methodology

    def seed(session):
        return seed_methodology(session=session, clock=services.clock, code="sz-race", name="race",
                                behaviour_domain="cycling", activity_unit="km", factor_mg_per_unit=1,
                                max_quantity_milli=1000, effective_from=date(2026, 3, 2), source_reference="test")

    async with services.session_factory() as first, first.begin():
        assert (await seed(first)).version == 1
        second = asyncio.create_task(_in_tx(services, seed))
        await asyncio.sleep(0.3)
        assert not second.done()  # waiting for the code's lock
    assert (await second).version == 2
    [org] = await accounts(services, 1)
    [regulator] = await accounts(services, 1, role="regulator", kind="authority")
    application = await apply(services, org, complete_fields(code="SZ-RACE"))
    await seat_and_opine(services, regulator, application)
    _, filed = await file(services, regulator, application.id)
    assert (filed.version, filed.is_example, filed.application_id) == (3, False, application.id)


async def test_a_published_methodology_can_be_retired_once(services):
    async with services.session_factory() as session:
        bus = (await session.execute(select(Methodology).where(Methodology.code == "SZ-EBUS"))).scalar_one()

    async def retire(session):
        return await reductions.retire_methodology(session=session, clock=services.clock, methodology_id=bus.id)

    assert (await _in_tx(services, retire)).status == PublicationStatus.RETIRED.value
    await refused_with(ReductionCode.INVALID_TRANSITION, _in_tx(services, retire))


async def test_documents_are_kept_byte_for_byte(services):
    [org] = await accounts(services, 1)
    blob = bytes(range(256)) * 100
    application = await apply(services, org, complete_fields(
        methodology_text=filing.Attachment.of("方法学.pdf", "application/pdf", blob)))
    async with services.session_factory() as session:
        row = (await session.execute(select(MethodologyDocument).where(
            MethodologyDocument.application_id == application.id,
            MethodologyDocument.kind == "methodology_text"))).scalar_one()
    assert (row.content, row.sha256, row.size_bytes, row.file_name) == (
        blob, hashlib.sha256(blob).hexdigest(), 25_600, "方法学.pdf")


async def test_the_demo_application_is_complete_and_under_review(services):
    from accounts.seeding import seed_organisations
    from core.bulk import driver
    from server import demo

    operator = uuid.uuid4()
    async with services.session_factory() as session, session.begin():
        await seed_organisations(await driver(session), ids=[operator], roles=["app_operator"],
                                 when=services.clock.now())
        await session.execute(text("UPDATE accounts SET email = :e WHERE id = :i"),
                              {"e": demo.OPERATOR.email, "i": operator})
        application = await demo._methodology_application(session, services.clock)
    assert (application.applicant_id, application.code, application.status) == (
        operator, "SZ-BIKE-DEMO", ApplicationStatus.UNDER_REVIEW.value)
    assert application.review_id is not None
