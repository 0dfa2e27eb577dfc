"""Reduction projects from registration to filing, CER issuance with serials that never repeat,
the regulator's cancellation, the public registry and serial trace, and the conservation audit,
through the public GraphQL API (every project contract by its persisted hash) and, for races,
through the domain functions on parallel connections."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select

from neutrality.cers import blocks, projects
from neutrality.cers.models import Block, BlockState, MoveKind, VerifierReport
from neutrality.cers.notice import notice_end
from neutrality.market.models import Offer
from reductions.models import PublicationStatus
from reductions.seeding import seed_methodology
from tests.neutrality.certificate_fixtures import APPLY, application, approve_through_api, holding, reviewer_actor
from tests.conftest import DECIDE as DECIDE_ROLE
from tests.conftest import organisation, person, regulator, sign_in
from tests.neutrality.fixtures import (CALENDAR_CONTRACTS, PROJECT_CONTRACTS, PV_METHODOLOGY, accounts,
                                      commissioned_project, filed_project, published_methodology)
from tests.reviews.fixtures import expert_actors, opinions_in
from tests.api.test_frontend_contracts import PersistedClient

PROJECT = {"title": "光明区屋顶分布式光伏", "methodologyCode": PV_METHODOLOGY, "location": "深圳市光明区",
           "description": "120 栋厂房屋顶光伏，年发电 1,800 万 kWh", "expectedTonnesPerYear": 9_800,
           "benefitSharing": "屋顶业主分享 20% 收益"}
# 09:00 Tuesday 29 September 2026 in Shanghai: the Mid-autumn and National Day holidays follow
BEFORE_GOLDEN_WEEK = datetime(2026, 9, 29, 1, 0, tzinfo=timezone.utc)
REGISTER = """
mutation($input: RegisterCerProjectInput!) {
  registerCerProject(input: $input) { project { id code status } errors { code field message } }
}"""
PUBLISH = """
mutation($input: PublishCerProjectInput!) {
  publishCerProject(input: $input) { project { id status notice { declareFrom provisional } }
                                     errors { code field message } }
}"""
DECLARE = """
mutation($input: DeclareCerProjectInput!) {
  declareCerProject(input: $input) { project { id status } errors { code field message } }
}"""
UPDATE = """
mutation($input: UpdateCerProjectInput!) {
  updateCerProject(input: $input) { project { id title } errors { code field message } }
}"""
ISSUE = """
mutation($input: IssueCersInput!) {
  issueCers(input: $input) { issuance { serials tonnes } errors { code field message } }
}"""
CANCEL = """
mutation($input: CancelCersInput!) {
  cancelCers(input: $input) { cancellation { serials tonnes reason } errors { code field message } }
}"""
DETAIL = "query($code: String) { cerProject(code: $code) { code status mine } }"
FILE = """
mutation($input: FileCerProjectInput!) {
  fileCerProject(input: $input) { project { id status } errors { code field message } }
}"""


def codes(payload: dict) -> list[str]:
    return [e["code"] for e in payload["errors"]]


async def owner(api):
    await published_methodology(api.services)  # the one PROJECT names (art. 14)
    return await organisation(api, "光明绿能科技有限公司", apply_for=["PROJECT_OWNER"])


async def draft(api, actor, **fields) -> dict:
    made = (await api.data(REGISTER, {"input": {**PROJECT, **fields}}, token=actor.token))["registerCerProject"]
    assert made["errors"] == [], made
    return made["project"]


async def test_a_project_goes_from_draft_to_issued_cers_by_persisted_operations(api, clock):
    clock.set(BEFORE_GOLDEN_WEEK)
    c = PersistedClient(api)
    own = await owner(api)
    reg = await regulator(api)
    made = (await c.run("RegisterCerProject", {"input": PROJECT}, token=own.token))["registerCerProject"]["project"]
    assert made["status"] == "DRAFT" and made["code"].startswith("P") and made["pledge"] is None
    edited = await c.run("UpdateCerProject", {"input": {"projectId": made["id"], "expectedTonnesPerYear": 10_000}},
                         token=own.token)
    assert edited["updateCerProject"]["project"]["expectedTonnesPerYear"] == 10_000
    # a draft is private
    assert (await c.run("CerProjectDetail", {"code": made["code"]}))["cerProject"] is None
    assert (await c.run("CerRegistry", {"first": 10}))["cerRegistry"]["edges"] == []

    published = (await c.run("PublishCerProject", {"input": {"projectId": made["id"], "pledgeAccepted": True}},
                             token=own.token))["publishCerProject"]["project"]
    assert published["status"] == "NOTICE" and "CCER" in published["pledge"]["text"]
    # Tue 29 Sep: 30 Sep, 8 Oct, 9 Oct, Sat 10 Oct (make-up workday), 12, 13, 14 Oct -> declare from 15 Oct
    assert published["notice"] == {"startedAt": published["notice"]["startedAt"], "declareFrom": "2026-10-15",
                                   "provisional": False}
    public = (await c.run("CerProjectDetail", {"code": made["code"]}))["cerProject"]
    assert public["status"] == "NOTICE" and public["mine"] is False and public["totals"] == []

    clock.set(datetime(2026, 10, 14, 15, 59, tzinfo=timezone.utc))  # 23:59 on 14 Oct in Shanghai
    own, reg = await sign_in(api, own.login), await sign_in(api, reg.login)  # two weeks on: fresh tokens
    early = await api.data(DECLARE, {"input": {"projectId": made["id"]}}, token=own.token)
    assert codes(early["declareCerProject"]) == ["NOTICE_NOT_OVER"]
    assert "2026-10-15" in early["declareCerProject"]["errors"][0]["message"]
    clock.set(datetime(2026, 10, 14, 16, 0, tzinfo=timezone.utc))  # 00:00 on 15 Oct
    declared = await c.run("DeclareCerProject", {"input": {"projectId": made["id"]}}, token=own.token)
    assert declared["declareCerProject"]["project"]["status"] == "DECLARED"

    # the regulator commissions an independent verifier it approved (art. 17); only that verifier reports
    verifier_id, verifier_email = await c.sign_up("ORGANISATION", "深圳市低碳核查中心")
    verifier_token = (await c.login(verifier_email))["accessToken"]
    applied = await c.run("VerifierApplyForRole", {"input": {"role": "VERIFIER"}}, token=verifier_token)
    assert applied["applyForRole"]["application"]["status"] == "PENDING"
    await api.data(DECIDE_ROLE, {"input": {"applicationId": applied["applyForRole"]["application"]["id"],
                                           "approve": True}}, token=reg.token)
    verifier = await sign_in(api, verifier_email)
    panel = await expert_actors(api, reg, 3)
    commission = (await c.run("CommissionVerifier", {"input": {"projectId": made["id"], "verifierId": verifier_id,
                                                               "expertsWanted": 3}},
                              token=reg.token))["commissionVerifier"]["commission"]
    assert (commission["status"], commission["verifierName"]) == ("COMMISSIONED", "深圳市低碳核查中心")
    listed = (await c.run("MyVerifierCommissions", {"first": 10}, token=verifier.token))["myVerifierCommissions"]
    assert [e["node"]["id"] for e in listed["edges"]] == [commission["id"]]
    report_doc = {"name": "核查报告 SZV-2026-0457.pdf", "sha256": "9f" * 32, "byteSize": 2_345_678}
    reported = (await c.run("SubmitVerificationReport", {"input": {
        "commissionId": commission["id"], "vintages": [{"vintage": 2025, "tonnes": 9_000}], "documents": [report_doc],
        "idempotencyKey": "report-1"}}, token=verifier.token))["submitVerificationReport"]["commission"]
    assert reported["status"] == "REPORTED" and len(reported["reportSha256"]) == 64
    assert reported["documents"] == [report_doc]
    page = (await c.run("CerProjectDetail", {"code": made["code"]}))["cerProject"]
    assert page["status"] == "VERIFIED" and page["flags"] == [] and page["frozen"] is False
    [report] = page["verifierReports"]
    assert (report["verifierName"], report["verifiedTonnes"], report["commissionId"]) == (
        "深圳市低碳核查中心", 9000, commission["id"])
    assert report["reportReference"] == f"sha256:{reported['reportSha256']}"
    report_id = report["id"]
    # filing waits for every drawn expert's opinion on the report
    early = await api.data(FILE, {"input": {"projectId": made["id"], "note": "材料齐全"}}, token=reg.token)
    assert codes(early["fileCerProject"]) == ["OPINIONS_OUTSTANDING"]
    await opinions_in(api, reg, reported["reviewId"], panel)

    review = (await c.run("CerProjectsForReview", {"status": "VERIFIED", "first": 10},
                          token=reg.token))["cerProjectsForReview"]["edges"]
    assert [e["node"]["code"] for e in review] == [made["code"]]
    filed = await c.run("FileCerProject", {"input": {"projectId": made["id"], "note": "材料齐全"}}, token=reg.token)
    assert filed["fileCerProject"]["project"]["status"] == "FILED"

    issued = (await c.run("IssueCers", {"input": {"verifierReportId": report_id, "tonnes": 6_000,
                                                  "idempotencyKey": "issue-1"}}, token=reg.token))["issueCers"]
    code = made["code"]
    assert issued["issuance"]["serials"] == f"SZCER-{code}-2025-000000001-000006000"
    assert issued["project"]["totals"] == [{"vintage": 2025, "issued": 6000, "held": 6000, "reserved": 0, "inReview": 0,
                                            "retired": 0, "cancelled": 0, "surrendered": 0}]
    second = (await c.run("IssueCers", {"input": {"verifierReportId": report_id, "tonnes": 3_000,
                                                  "idempotencyKey": "issue-2"}}, token=reg.token))["issueCers"]
    assert second["issuance"]["serials"] == f"SZCER-{code}-2025-000006001-000009000"

    holdings = (await c.run("ProjectOwnerCerHoldings", token=own.token))["myCerHoldings"]
    assert [(h["state"], h["tonnes"]) for h in holdings] == [("HELD", 9000)]
    mine = (await c.run("MyCerProjects", {"first": 10}, token=own.token))["myCerProjects"]["edges"]
    assert mine[0]["node"]["verifierReports"][0]["issuedTonnes"] == 9000 and mine[0]["node"]["mine"] is True

    cancelled = (await c.run("CancelCers", {"input": {
        "projectId": made["id"], "vintage": 2025, "firstSerial": 8_001, "lastSerial": 9_000,
        "reason": "核查发现重复计量 (double counting found on re-verification)", "idempotencyKey": "cancel-1"}},
        token=reg.token))["cancelCers"]["cancellation"]
    assert cancelled["tonnes"] == 1000 and cancelled["serials"].endswith("000008001-000009000")

    registry = (await c.run("CerRegistry", {"first": 10}))["cerRegistry"]["edges"]
    assert [e["node"]["totals"] for e in registry] == [[{"vintage": 2025, "issued": 9000, "held": 8000,
                                                          "reserved": 0, "inReview": 0, "retired": 0, "cancelled": 1000,
                                                          "surrendered": 0}]]
    trace = (await c.run("TraceCerSerial", {"serial": f"SZCER-{code}-2025-000008500"}))["traceCerSerial"]
    assert trace["state"] == "CANCELLED" and [s["kind"] for s in trace["steps"]] == ["issue", "cancel"]
    assert trace["steps"][0]["serials"] == f"SZCER-{code}-2025-000006001-000009000"
    audit = (await c.run("CerAudit", token=reg.token))["cerAudit"]
    assert audit["balanced"] is True and audit["overlappingBlocks"] == 0
    assert audit["lines"][0]["issuedByIssuances"] == 9000

    # the organisation's own account view, after it buys nothing: empty
    buyer = await organisation(api, "深圳湾会展有限公司")
    assert (await c.run("MyCerHoldings", token=buyer.token))["myCerHoldings"] == []

    rejected_draft = await draft(api, own, title="另一个项目")
    await c.run("PublishCerProject", {"input": {"projectId": rejected_draft["id"], "pledgeAccepted": True}},
                token=own.token)
    rejected = await c.run("RejectCerProject", {"input": {"projectId": rejected_draft["id"],
                                                          "reason": "项目边界不清"}}, token=reg.token)
    assert rejected["rejectCerProject"]["project"]["status"] == "REJECTED"

    # a commission whose report never came is withdrawn; then a false report is recorded (art. 32)
    other = await commissioned_project(api.services)
    withdrawn = await c.run("WithdrawVerifierCommission", {"input": {"commissionId": str(other.commission_id),
                                                                     "reason": "核查机构未按期提交报告"}},
                            token=reg.token)
    assert withdrawn["withdrawVerifierCommission"]["commission"]["status"] == "WITHDRAWN"
    sanction = (await c.run("RecordFalseVerificationReport", {"input": {
        "verifierId": verifier_id, "commissionId": commission["id"], "reason": "核查报告虚报发电量",
        "freezeUnsold": True, "idempotencyKey": "false-1"}}, token=reg.token))["recordFalseVerificationReport"]
    assert sanction["sanction"]["frozenProjects"] == [code]
    page = (await c.run("CerProjectDetail", {"code": code}))["cerProject"]
    assert (page["flags"], page["frozen"]) == (["核查报告虚报发电量"], True)
    flagged = (await c.run("TraceCerSerial", {"serial": f"SZCER-{code}-2025-000008500"}))["traceCerSerial"]
    assert (flagged["state"], flagged["flags"]) == ("CANCELLED", ["核查报告虚报发电量"])
    unfrozen = (await c.run("UnfreezeCerProject", {"input": {"projectId": made["id"], "reason": "复核后数据属实"}},
                            token=reg.token))["unfreezeCerProject"]["project"]
    assert (unfrozen["frozen"], unfrozen["flags"]) == (False, ["核查报告虚报发电量"])
    walked = PROJECT_CONTRACTS - CALENDAR_CONTRACTS
    assert c.ran - {"SignUp", "Login"} == walked, f"not exercised: {sorted(walked - c.ran)}"


async def test_lifecycle_refusals_change_nothing(api, clock):
    own = await owner(api)
    reg = await regulator(api)
    stranger = await owner(api)
    made = await draft(api, own)
    pid = made["id"]

    bad = await api.data(REGISTER, {"input": {**PROJECT, "title": " ", "expectedTonnesPerYear": 0}}, token=own.token)
    assert codes(bad["registerCerProject"]) == ["INVALID"]
    # a project names a published methodology (art. 14): not free text, not a draft, not a retired one
    async with api.services.session_factory() as session, session.begin():
        draft_only = await seed_methodology(
            session=session, clock=clock, code="SZ-WIND", name="风电 (test)", behaviour_domain="renewable_energy",
            activity_unit="kwh", factor_mg_per_unit=581_000, max_quantity_milli=1_000_000,
            effective_from=date(2026, 1, 1), source_reference="test figure", status=PublicationStatus.DRAFT)
        await seed_methodology(
            session=session, clock=clock, code="SZ-OLD", name="旧方法学 (test)", behaviour_domain="renewable_energy",
            activity_unit="kwh", factor_mg_per_unit=581_000, max_quantity_milli=1_000_000,
            effective_from=date(2020, 1, 1), source_reference="test figure", status=PublicationStatus.RETIRED)
    for code in ("SZ-NOPE", draft_only.code, "SZ-OLD"):
        refused = await api.data(REGISTER, {"input": {**PROJECT, "methodologyCode": code}}, token=own.token)
        assert [(e["code"], e["field"]) for e in refused["registerCerProject"]["errors"]] == [
            ("METHODOLOGY_NOT_PUBLISHED", "methodologyCode")], code
        changed = await api.data(UPDATE, {"input": {"projectId": pid, "methodologyCode": code}}, token=own.token)
        assert [(e["code"], e["field"]) for e in changed["updateCerProject"]["errors"]] == [
            ("METHODOLOGY_NOT_PUBLISHED", "methodologyCode")], code
    lower = await api.data(UPDATE, {"input": {"projectId": pid, "methodologyCode": " sz-pv-2024 "}}, token=own.token)
    assert lower["updateCerProject"]["errors"] == []
    shown = await api.data("query($code: String) { cerProject(code: $code) { methodologyCode } }",
                           {"code": made["code"]}, token=own.token)
    assert shown["cerProject"]["methodologyCode"] == PV_METHODOLOGY
    no_pledge = await api.data(PUBLISH, {"input": {"projectId": pid, "pledgeAccepted": False}}, token=own.token)
    assert codes(no_pledge["publishCerProject"]) == ["PLEDGE_REQUIRED"]
    theirs = await api.data(PUBLISH, {"input": {"projectId": pid, "pledgeAccepted": True}}, token=stranger.token)
    assert codes(theirs["publishCerProject"]) == ["NOT_FOUND"]
    too_soon = await api.data(DECLARE, {"input": {"projectId": pid}}, token=own.token)
    assert codes(too_soon["declareCerProject"]) == ["WRONG_STATUS"]
    assert (await api.data(DETAIL, {"code": made["code"]}, token=stranger.token))["cerProject"] is None
    assert (await api.data(DETAIL, {"code": made["code"]}, token=reg.token))["cerProject"]["status"] == "DRAFT"

    await api.data(PUBLISH, {"input": {"projectId": pid, "pledgeAccepted": True}}, token=own.token)
    frozen = await api.data(UPDATE, {"input": {"projectId": pid, "title": "改名"}}, token=own.token)
    assert codes(frozen["updateCerProject"]) == ["WRONG_STATUS"]
    no_reason = await api.gql("""mutation($input: RejectCerProjectInput!) { rejectCerProject(input: $input) {
        errors { code } } }""", {"input": {"projectId": pid, "reason": "  "}}, token=reg.token)
    assert no_reason["data"]["rejectCerProject"]["errors"] == [{"code": "REASON_REQUIRED"}]
    not_verified = await api.gql("""mutation($input: FileCerProjectInput!) { fileCerProject(input: $input) {
        errors { code } } }""", {"input": {"projectId": pid}}, token=reg.token)
    assert not_verified["data"]["fileCerProject"]["errors"] == [{"code": "WRONG_STATUS"}]

    # only the roles each act belongs to
    someone = await person(api)
    refused = await api.data(REGISTER, {"input": PROJECT}, token=someone.token)
    assert codes(refused["registerCerProject"]) == ["FORBIDDEN"]
    owner_files = await api.gql("""mutation($input: FileCerProjectInput!) { fileCerProject(input: $input) {
        errors { code } } }""", {"input": {"projectId": pid}}, token=own.token)
    assert owner_files["data"]["fileCerProject"]["errors"] == [{"code": "FORBIDDEN"}]
    audit = await api.gql("{ cerAudit { balanced } }", token=own.token)
    assert audit["data"] is None and audit["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await api.data("query($s: String!) { traceCerSerial(serial: $s) { serial } }",
                           {"s": "not a serial"}))["traceCerSerial"] is None


async def _filed_report(services, verified: int = 40) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    registry = await filed_project(services, buyers=0)
    [reg] = await accounts(services, 1, role="regulator", kind="authority")
    async with services.session_factory() as session:
        async with session.begin():
            report = VerifierReport(project_id=registry.project_id, verifier_name="核查机构", report_reference="R-1",
                                    vintage=2025, verified_tonnes=verified, issued_tonnes=0,
                                    submitted_at=services.clock.now())
            session.add(report)
    return registry.project_id, report.id, reg


async def test_issuance_never_exceeds_the_report_and_serials_never_repeat_under_races(services):
    project_id, report_id, reg = await _filed_report(services, verified=40)

    async def issue_five():
        try:
            async with services.session_factory() as session:
                async with session.begin():
                    row = await projects.issue_cers(session=session, clock=services.clock, regulator_id=reg,
                                                    verifier_report_id=report_id, tonnes=5)
                    return (row.first_serial, row.last_serial)
        except projects.DomainError as exc:
            return exc.code

    results = await asyncio.gather(*(issue_five() for _ in range(12)))
    ranges = sorted(r for r in results if isinstance(r, tuple))
    assert len(ranges) == 8 and results.count("EXCEEDS_VERIFIED") == 4
    assert ranges == [(1 + 5 * i, 5 + 5 * i) for i in range(8)]
    async with services.session_factory() as session:
        [totals] = await blocks.state_totals(session=session, project_id=project_id)
        assert totals.issued == totals.held == 40 and totals.balanced
        assert await blocks.overlapping_live_blocks(session=session) == 0


async def test_issuing_is_idempotent_and_refuses_over_issue(api, services):
    project_id, report_id, _ = await _filed_report(services, verified=10)
    reg = await regulator(api)
    body = {"verifierReportId": str(report_id), "tonnes": 6, "idempotencyKey": "k-1"}
    first = (await api.data(ISSUE, {"input": body}, token=reg.token))["issueCers"]
    again = (await api.data(ISSUE, {"input": body}, token=reg.token))["issueCers"]
    assert first == again and first["issuance"]["tonnes"] == 6
    reused = (await api.data(ISSUE, {"input": {**body, "tonnes": 1}}, token=reg.token))["issueCers"]
    assert codes(reused) == ["IDEMPOTENCY_KEY_REUSED"]
    over = (await api.data(ISSUE, {"input": {**body, "tonnes": 5, "idempotencyKey": "k-2"}}, token=reg.token))
    assert codes(over["issueCers"]) == ["EXCEEDS_VERIFIED"]
    async with services.session_factory() as session:
        [totals] = await blocks.state_totals(session=session, project_id=project_id)
        assert totals.issued == 6


async def test_cancellation_takes_only_held_tonnes_and_trims_offers(api, services):
    project_id, report_id, reg_id = await _filed_report(services, verified=30)
    reg = await regulator(api)
    [buyer] = await accounts(services, 1)
    async with services.session_factory() as session:
        async with session.begin():
            issuance = await projects.issue_cers(session=session, clock=services.clock, regulator_id=reg_id,
                                                 verifier_report_id=report_id, tonnes=30)
            holder = issuance.holder_id
            # 10 tonnes (1-10) go to a buyer, 5 more (11-15) are reserved for a pending order
            await blocks.move(session=session, clock=services.clock, kind=MoveKind.DELIVER, holder_id=holder,
                              to_holder_id=buyer, from_state=BlockState.HELD, to_state=BlockState.HELD, quantity=10,
                              reference_kind="order", reference_id=uuid.uuid4())
            order_id = uuid.uuid4()
            await blocks.move(session=session, clock=services.clock, kind=MoveKind.RESERVE, holder_id=holder,
                              from_state=BlockState.HELD, to_state=BlockState.RESERVED, quantity=5,
                              reference_kind="order", reference_id=order_id, set_order_id=order_id)
            session.add(Offer(seller_id=holder, project_id=project_id, vintage=2025, price_per_tonne_fen=5000,
                              quantity_offered=15, quantity_available=15, min_purchase=1, status="active",
                              created_at=services.clock.now(), updated_at=services.clock.now()))

    def cancel(first, last, key):
        return api.data(CANCEL, {"input": {"projectId": str(project_id), "vintage": 2025, "firstSerial": first,
                                           "lastSerial": last, "reason": "重复签发", "idempotencyKey": key}},
                        token=reg.token)

    assert codes((await cancel(12, 20, "a"))["cancelCers"]) == ["SERIALS_NOT_CANCELLABLE"]  # 11-15 reserved
    assert codes((await cancel(25, 40, "b"))["cancelCers"]) == ["SERIALS_NOT_CANCELLABLE"]  # 31-40 never issued
    assert codes((await cancel(1, 2, "c2"))["cancelCers"]) == []  # the buyer's tonnes go too
    done = (await cancel(16, 30, "d"))["cancelCers"]
    assert done["errors"] == [] and done["cancellation"]["tonnes"] == 15
    async with services.session_factory() as session:
        [totals] = await blocks.state_totals(session=session, project_id=project_id)
        assert (totals.issued, totals.held, totals.reserved, totals.cancelled) == (30, 8, 5, 17)
        assert totals.balanced
        # the seller now holds nothing free, so its offer promises nothing
        offer = await session.scalar(select(Offer).where(Offer.project_id == project_id))
        assert offer.quantity_available == 0
        live = (await session.scalars(select(Block).where(Block.project_id == project_id,
                                                          Block.ended_at.is_(None)))).all()
        assert {(b.first_serial, b.last_serial, b.state) for b in live} == {
            (1, 2, "cancelled"), (3, 10, "held"), (11, 15, "reserved"), (16, 30, "cancelled")}


@pytest.mark.parametrize("published, declare_from, provisional", [
    (date(2026, 9, 29), date(2026, 10, 15), False),  # holidays and the Saturday make-up workday
    (date(2026, 3, 2), date(2026, 3, 12), False),  # an ordinary fortnight: Mon -> the next Thu but one
    (date(2026, 12, 28), date(2027, 1, 8), True),  # 2027 not published yet: Mon-Fri less 1 January
])
def test_the_notice_counts_official_working_days(published, declare_from, provisional):
    end = notice_end(published)
    assert (end.declare_from, end.provisional) == (declare_from, provisional)


async def test_a_retired_tonne_is_traced_to_its_certificate_and_counted_in_the_registry(api, services):
    """Retirement is a claim the public can follow: the trace of a retired tonne ends in the
    certificate that claims it, and the registry counts it as retired, not cancelled."""
    org = await organisation(api, "深圳湾零碳科技有限公司")
    registry = await holding(services, uuid.UUID(org.account_id), 50)
    applied = (await api.data(APPLY, {"input": application()}, token=org.token))["applyForNeutrality"]
    assert applied["errors"] == [] and applied["retirement"]["tonnes"] == 13
    approved = await approve_through_api(api, (await reviewer_actor(api)).token, applied["retirement"]["id"])
    number = approved["certificate"]["number"]

    trace = (await api.data("""query($s: String!) { traceCerSerial(serial: $s) {
        state steps { kind fromState toState certificateNumber } } }""",
                            {"s": f"SZCER-{registry.project_code}-2025-000000013"}))["traceCerSerial"]
    assert trace["state"] == "RETIRED"
    assert [(s["kind"], s["certificateNumber"]) for s in trace["steps"]] == [("issue", None), ("review", number),
                                                                                  ("retire", number)]
    untouched = (await api.data("query($s: String!) { traceCerSerial(serial: $s) { state } }",
                                {"s": f"SZCER-{registry.project_code}-2025-000000014"}))["traceCerSerial"]
    assert untouched["state"] == "HELD"
    listed = (await api.data("{ cerRegistry(first: 10) { edges { node { code totals { issued held retired "
                             "cancelled } } } } }"))["cerRegistry"]["edges"]
    assert [(e["node"]["code"], e["node"]["totals"]) for e in listed] == [
        (registry.project_code, [{"issued": 50, "held": 37, "retired": 13, "cancelled": 0}])]
