"""Scenarios and their marks (issue 11, art. 25-28), in the domain: every transition and refusal of
scenarios/service.py on the real database with the real expert review, the per-year mark numbering
under parallel grants, and expiry read from the clock."""

import asyncio
import hashlib
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from accounts.models import AuditEvent
from core.errors import DomainError, DomainErrors
from reductions import service as reductions
from core.documents import MAX_ATTACHMENT_BYTES, Attachment
from reviews import service as reviews
from reviews.errors import ReviewCode
from reviews.models import Expert, Opinion, Review, ReviewStatus, SubjectKind
from scenarios import service
from scenarios.errors import ScenarioCode
from scenarios.models import MarkStatus, Scenario, ScenarioMark, ScenarioStatus
from tests.neutrality.fixtures import accounts
from tests.reviews.fixtures import in_transaction
from tests.scenarios.fixtures import PLAN, apply, complete_fields, granted, opinions_given


async def refused_with(code, attempt) -> DomainError:
    with pytest.raises(DomainError) as refused:
        await attempt
    assert refused.value.code == code, (refused.value.code, refused.value.message)
    return refused.value


def test_an_empty_application_names_every_missing_item():
    with pytest.raises(DomainErrors) as refused:
        service.check_application(service.ApplicationFields())
    assert [(p.code, p.field) for p in refused.value.problems] == [
        (ScenarioCode.MISSING_ITEM, f) for f in ("name", "address", "kind", "district", "methodologyCodes", "pledge",
                                                 "documents")]


def test_bad_documents_and_a_pledge_not_as_published_are_each_named():
    good = Attachment.of("plan.pdf", "application/pdf", PLAN)
    with pytest.raises(DomainErrors) as refused:
        service.check_application(complete_fields(
            pledge_sha256="0" * 64,
            documents=[service.ScenarioAttachment(good, declared_sha256="f" * 64),
                       service.ScenarioAttachment(Attachment.of("big.pdf", "application/pdf",
                                                                b"x" * (MAX_ATTACHMENT_BYTES + 1))),
                       service.ScenarioAttachment(Attachment.of("empty.pdf", "application/pdf", b"")),
                       service.ScenarioAttachment(good), service.ScenarioAttachment(good)]))
    assert [(p.code, p.field) for p in refused.value.problems] == [
        (ScenarioCode.PLEDGE_NOT_ACCEPTED, "pledge"), (ScenarioCode.DOCUMENT_HASH_MISMATCH, "documents.0"),
        (ScenarioCode.DOCUMENT_TOO_LARGE, "documents.1"), (ScenarioCode.INVALID_APPLICATION, "documents.2"),
        (ScenarioCode.INVALID_APPLICATION, "documents.4")]  # the same name twice
    with pytest.raises(DomainErrors) as refused:
        service.check_application(complete_fields(
            documents=[service.ScenarioAttachment(good)] * (service.MAX_DOCUMENTS + 1), name="x" * 201))
    assert [(p.code, p.field) for p in refused.value.problems] == [
        (ScenarioCode.INVALID_APPLICATION, "name"), (ScenarioCode.INVALID_APPLICATION, "documents")]
    assert service.check_application(complete_fields()) == ["SZ-METRO", "SZ-EBUS"]


async def test_behaviours_must_be_methodologies_in_force(services):
    [org] = await accounts(services, 1, role="app_operator")
    refused = await refused_with(ScenarioCode.UNKNOWN_METHODOLOGY, apply(services, org, complete_fields(
        methodology_codes=["SZ-METRO", "SZ-TELEPORT"])))
    assert "SZ-TELEPORT" in refused.message
    async with services.session_factory() as session:
        async with session.begin():
            ebus = next(m for m in await reductions.list_methodologies(session=session, include_drafts=False)
                        if m.code == "SZ-EBUS")
            await reductions.retire_methodology(session=session, clock=services.clock, methodology_id=ebus.id)
    await refused_with(ScenarioCode.METHODOLOGY_NOT_PUBLISHED, apply(services, org, complete_fields()))
    async with services.session_factory() as session:
        assert (await session.execute(select(Scenario))).first() is None  # nothing was stored


async def test_an_application_is_reviewed_then_granted_once_with_a_mark(services):
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    [org] = await accounts(services, 1, role="merchant")
    scenario = await apply(services, org)
    assert (scenario.status, scenario.methodology_codes) == (ScenarioStatus.UNDER_REVIEW.value, ["SZ-METRO", "SZ-EBUS"])
    async with services.session_factory() as session:
        review = await session.get(Review, scenario.review_id)
        assert (review.subject_kind, review.field, review.parties) == (
            SubjectKind.SCENARIO_APPLICATION.value, "scenario", [org])
        documents = (await service.documents_of(session=session, scenario_ids=[scenario.id]))[scenario.id]
        assert [d.file_name for d in documents] == ["plan.pdf", "site.pdf"]
        assert (documents[0].sha256, documents[0].size_bytes) == (hashlib.sha256(PLAN).hexdigest(), len(PLAN))

    grant = lambda **kw: in_transaction(services, service.grant, regulator_id=regulator_id,  # noqa: E731
                                        scenario_id=scenario.id, **{"reason": "专家一致通过", **kw})
    # no expert seated yet, then two of three opinions in: the regulator cannot decide
    await refused_with(ReviewCode.OPINIONS_OUTSTANDING, grant())
    await opinions_given(services, regulator_id, scenario, opinions=2)
    await refused_with(ReviewCode.OPINIONS_OUTSTANDING, grant())
    async with services.session_factory() as session:
        seats = (await reviews.seats_of(session=session, review_ids=[scenario.review_id]))[scenario.review_id]
    async with services.session_factory() as session:
        last = next(s for s in seats if s.status == "seated")
        expert_account = (await session.get(Expert, last.expert_id)).account_id
    await in_transaction(services, reviews.submit_opinion, account_id=expert_account, review_id=scenario.review_id,
                         opinion=Opinion.PASS, text="同意")
    await refused_with(ReviewCode.REASON_REQUIRED, grant(reason="  "))
    for years in (0, 6):
        await refused_with(ScenarioCode.INVALID_VALIDITY, grant(validity_years=years))

    row, mark = await grant(validity_years=3)
    assert row.status == ScenarioStatus.GRANTED.value and row.decision_reason == "专家一致通过"
    assert (mark.number, mark.status) == ("SZCS-2026-0001", MarkStatus.ACTIVE.value)
    # granted 2026-03-02 09:00 Shanghai: valid to 00:00 Shanghai on 2029-03-02
    assert mark.valid_until == datetime(2029, 3, 1, 16, 0, tzinfo=timezone.utc)
    # a double grant (or a refusal after it) is refused, and changes nothing
    await refused_with(ScenarioCode.ALREADY_DECIDED, grant())
    await refused_with(ScenarioCode.ALREADY_DECIDED, in_transaction(
        services, service.refuse, regulator_id=regulator_id, scenario_id=scenario.id, reason="重复"))
    async with services.session_factory() as session:
        assert len((await session.execute(select(ScenarioMark))).all()) == 1
        review = await session.get(Review, scenario.review_id)
        assert (review.status, review.decision) == (ReviewStatus.DECIDED.value, "approved")
        journal = await service.journal_of(session=session, scenario_id=scenario.id)
        assert [e.event for e in journal] == ["submitted", "granted"]
        audit = (await session.execute(select(AuditEvent).where(AuditEvent.action == "scenario.granted"))).scalars().all()
        assert [(a.actor_account_id, a.subject_id, a.after["mark"]) for a in audit] == [
            (regulator_id, scenario.id, "SZCS-2026-0001")]
    await refused_with("NOT_FOUND", in_transaction(services, service.grant, regulator_id=regulator_id,
                                                   scenario_id=uuid.uuid4(), reason="x"))


async def test_a_refused_application_gets_no_mark(services):
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    [org] = await accounts(services, 1, role="app_operator")
    scenario = await apply(services, org)
    await refused_with(ReviewCode.OPINIONS_OUTSTANDING, in_transaction(
        services, service.refuse, regulator_id=regulator_id, scenario_id=scenario.id, reason="数据保护措施不足"))
    await opinions_given(services, regulator_id, scenario)
    row = await in_transaction(services, service.refuse, regulator_id=regulator_id, scenario_id=scenario.id,
                               reason="数据保护措施不足")
    assert (row.status, row.decision_reason) == (ScenarioStatus.REFUSED.value, "数据保护措施不足")
    await refused_with(ScenarioCode.ALREADY_DECIDED, in_transaction(
        services, service.grant, regulator_id=regulator_id, scenario_id=scenario.id, reason="改判"))
    async with services.session_factory() as session:
        assert (await session.execute(select(ScenarioMark))).first() is None
        assert (await service.public_scenarios(session=session, clock=services.clock)).items == []
        actions = (await session.execute(select(AuditEvent.action).where(AuditEvent.subject_id == scenario.id))
                   ).scalars().all()
        assert actions == ["scenario.refused"]


async def test_suspend_reinstate_and_withdraw_follow_their_rules(services):
    scenario, mark, regulator_id = await granted(services)
    change = lambda how, reason="现场检查发现数据采集异常", number=mark.number: in_transaction(  # noqa: E731
        services, service.change_mark, regulator_id=regulator_id, number=number, change=how, reason=reason)

    await refused_with(ScenarioCode.REASON_REQUIRED, change("suspend", reason=" "))
    await refused_with("NOT_FOUND", change("suspend", number="SZCS-2026-9999"))
    await refused_with(ScenarioCode.MARK_NOT_SUSPENDED, change("reinstate"))
    assert (await change("suspend")).status == MarkStatus.SUSPENDED.value
    await refused_with(ScenarioCode.MARK_NOT_ACTIVE, change("suspend"))
    services.clock.advance(days=10)
    assert (await change("reinstate", reason="整改完成")).status == MarkStatus.ACTIVE.value
    await refused_with(ScenarioCode.MARK_NOT_SUSPENDED, change("reinstate"))
    await change("suspend")
    assert (await change("withdraw", reason="拒不整改")).status == MarkStatus.WITHDRAWN.value
    for how in ("suspend", "reinstate", "withdraw"):  # final
        await refused_with(ScenarioCode.MARK_WITHDRAWN, change(how))
    async with services.session_factory() as session:
        public = await service.public_scenario(session=session, clock=services.clock, number=mark.number.lower())
        assert (public.status, public.status_reason) == ("withdrawn", "拒不整改")
        actions = (await session.execute(select(AuditEvent.action).where(AuditEvent.subject_id == mark.id)
                                         .order_by(AuditEvent.at, AuditEvent.id))).scalars().all()
        assert sorted(actions) == sorted(["scenario_mark.suspended", "scenario_mark.reinstated",
                                          "scenario_mark.suspended", "scenario_mark.withdrawn"])
        journal = await service.journal_of(session=session, scenario_id=scenario.id)
        assert [e.event for e in journal] == ["submitted", "granted", "suspended", "reinstated", "suspended",
                                              "withdrawn"]


async def test_a_mark_expires_by_the_clock_and_then_changes_no_more(services):
    scenario, mark, regulator_id = await granted(services, validity_years=1)
    services.clock.set(mark.valid_until - timedelta(seconds=1))
    async with services.session_factory() as session:
        assert (await service.public_scenario(session=session, clock=services.clock, number=mark.number)).status == "active"
    services.clock.set(mark.valid_until)
    async with services.session_factory() as session:
        assert (await service.public_scenario(session=session, clock=services.clock, number=mark.number)).status == "expired"
    for how in ("suspend", "withdraw"):
        await refused_with(ScenarioCode.MARK_EXPIRED, in_transaction(
            services, service.change_mark, regulator_id=regulator_id, number=mark.number, change=how, reason="过期"))


async def test_parallel_grants_get_distinct_consecutive_numbers_per_year(services):
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    orgs = await accounts(services, 6, role="app_operator")
    applied = [await apply(services, org) for org in orgs]
    for scenario in applied:
        await opinions_given(services, regulator_id, scenario)

    async def grant(scenario):
        return await in_transaction(services, service.grant, regulator_id=regulator_id, scenario_id=scenario.id,
                                    reason="专家一致通过")

    results = await asyncio.gather(*(grant(s) for s in applied[:4]))
    assert sorted(mark.number for _, mark in results) == [f"SZCS-2026-{n:04d}" for n in range(1, 5)]
    # one application granted twice at once: one mark, the other grant refused
    twice = await asyncio.gather(grant(applied[5]), grant(applied[5]), return_exceptions=True)
    [(_, fifth)] = [r for r in twice if not isinstance(r, Exception)]
    [refused] = [r for r in twice if isinstance(r, Exception)]
    assert fifth.number == "SZCS-2026-0005" and refused.code == ScenarioCode.ALREADY_DECIDED
    async with services.session_factory() as session:
        page = await service.public_scenarios(session=session, first=2, clock=services.clock)
        rest = await service.public_scenarios(session=session, first=100, after=page.end_cursor,
                                              clock=services.clock)
    listed = [i.node.mark_number for i in page.items + rest.items]
    assert page.has_next_page and not rest.has_next_page and sorted(listed) == [f"SZCS-2026-{n:04d}" for n in range(1, 6)]
    # the Shanghai year of the grant numbers the mark: 00:30 on 1 January 2027 there is still 2026 in UTC
    services.clock.set(datetime(2026, 12, 31, 16, 30, tzinfo=timezone.utc))
    _, mark = await grant(applied[4])
    assert mark.number == "SZCS-2027-0001"


async def test_public_rows_carry_public_facts_only(services):
    scenario, mark, _ = await granted(services)
    async with services.session_factory() as session:
        page = await service.public_scenarios(session=session, clock=services.clock, first=10)
    [row] = [item.node for item in page.items]
    assert set(vars(row)) == {"id", "name", "kind", "district", "methodology_codes", "mark_number", "granted_at",
                              "valid_until", "status", "status_reason"}
    assert (row.mark_number, row.district, row.methodology_codes, row.status) == (
        mark.number, "nanshan", ("SZ-METRO", "SZ-EBUS"), "active")


async def test_a_year_with_every_number_taken_refuses_the_grant_and_changes_nothing(services):
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    [org] = await accounts(services, 1, role="app_operator")
    scenario = await apply(services, org)
    await opinions_given(services, regulator_id, scenario)
    async with services.session_factory() as session, session.begin():
        await session.execute(text("INSERT INTO scenario_mark_counters (year, last_sequence) VALUES (2026, 9999)"))
    refused = await refused_with(ScenarioCode.MARK_NUMBERS_EXHAUSTED, in_transaction(
        services, service.grant, regulator_id=regulator_id, scenario_id=scenario.id, reason="专家一致通过"))
    assert "9,999" in refused.message and "2026" in refused.message
    async with services.session_factory() as session:
        assert (await session.execute(text("SELECT last_sequence FROM scenario_mark_counters"))).scalar_one() == 9999
        assert (await session.execute(select(ScenarioMark))).all() == []
        assert (await session.get(Scenario, scenario.id)).status == ScenarioStatus.UNDER_REVIEW.value
