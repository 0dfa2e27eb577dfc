"""Scenarios over the API (issue 11, art. 25-28): the front-end contracts as persisted queries, who may
apply, read and decide, typed errors, idempotency keys, report items naming a scenario, the wallet's
breakdown, and the public page of a mark with its QR code (HTTP GET, nothing private on it)."""

import base64
import hashlib

from tests.api.test_frontend_contracts import PersistedClient
from tests.conftest import approved, organisation, person, regulator
from tests.reviews.fixtures import expert_actors, opinions_in
from tests.scenarios.fixtures import PLAN, SCENARIO_CONTRACTS, application_input, document_input

APPLY = """mutation($input: ApplyForScenarioInput!) {
  applyForScenario(input: $input) { application { id status } errors { code field message } } }"""
GRANT = """mutation($input: GrantScenarioMarkInput!) {
  grantScenarioMark(input: $input) { application { id status mark { number } } errors { code field message } } }"""
SUSPEND = """mutation($input: ChangeScenarioMarkInput!) {
  suspendScenarioMark(input: $input) { scenario { status } errors { code field message } } }"""
REPORT = """mutation($input: ReportBehaviourInput!) {
  reportBehaviour(input: $input) { results { reportId status rejectCode points } errors { code field message } } }"""
ONE = "query($id: ID!) { scenarioApplication(id: $id) { id } }"
PRIVATE = ("科苑南路", "深圳湾万象城运营管理有限公司", "@example.org", "plan.pdf", "applicant")


def codes(payload: dict) -> list[tuple[str, str | None]]:
    return [(e["code"], e["field"]) for e in payload["errors"]]


async def test_scenario_contracts_walk_as_persisted_queries(api, clock):
    c = PersistedClient(api)
    reg = await regulator(api)
    operator = await approved(api, "APP_OPERATOR", "深圳湾万象城运营管理有限公司", reg=reg)
    pledge = (await c.run("ScenarioDataPledge"))["scenarioDataPledge"]
    assert pledge["sha256"] == hashlib.sha256(pledge["text"].encode()).hexdigest()

    # only an organisation the regulator approved applies
    pending = await organisation(api, "待审批公司", apply_for=["APP_OPERATOR"])
    someone = await person(api)
    for token in (pending.token, someone.token):
        refused = (await api.data(APPLY, {"input": application_input("k-0")}, token=token))["applyForScenario"]
        assert codes(refused) == [("FORBIDDEN", None)]
    refused = (await api.data(APPLY, {"input": application_input("k-0")}))["applyForScenario"]
    assert codes(refused) == [("UNAUTHENTICATED", None)]
    # an incomplete or malformed application names each problem
    refused = (await api.data(APPLY, {"input": {"idempotencyKey": "k-1", "methodologyCodes": ["SZ-METRO", "SZ-FLY"],
                                                "documents": [document_input("a.pdf", PLAN, "0" * 64)]}},
                              token=operator.token))["applyForScenario"]
    assert codes(refused) == [("MISSING_ITEM", "name"), ("MISSING_ITEM", "address"), ("MISSING_ITEM", "kind"),
                              ("MISSING_ITEM", "district"), ("MISSING_ITEM", "pledge"),
                              ("DOCUMENT_HASH_MISMATCH", "documents.0")]
    refused = (await api.data(APPLY, {"input": application_input("k-2", methodologyCodes=["SZ-FLY"])},
                              token=operator.token))["applyForScenario"]
    assert codes(refused) == [("UNKNOWN_METHODOLOGY", "methodologyCodes")]
    refused = (await api.data(APPLY, {"input": application_input(
        "k-3", documents=[{"fileName": "x.pdf", "mediaType": "application/pdf", "contentBase64": "%%%"}])},
        token=operator.token))["applyForScenario"]
    assert codes(refused) == [("INVALID_APPLICATION", "documents.0")]

    applied = (await c.run("ApplyForScenario", {"input": application_input("mixc-1")}, token=operator.token)
               )["applyForScenario"]["application"]
    assert (applied["status"], applied["district"], applied["mark"]) == ("UNDER_REVIEW", "NANSHAN", None)
    assert applied["documents"][0]["sha256"] == hashlib.sha256(PLAN).hexdigest()
    again = (await api.data(APPLY, {"input": application_input("mixc-1")}, token=operator.token))["applyForScenario"]
    assert again["application"]["id"] == applied["id"]  # a retry replays the first answer
    reused = (await api.data(APPLY, {"input": application_input("mixc-1", name="别的名字")}, token=operator.token)
              )["applyForScenario"]
    assert [code for code, _ in codes(reused)] == ["IDEMPOTENCY_KEY_REUSED"]

    mine = (await c.run("MyScenarioApplications", {"first": 10}, token=operator.token))["myScenarioApplications"]
    assert [e["node"]["id"] for e in mine["edges"]] == [applied["id"]]
    one = (await c.run("ScenarioApplication", {"id": applied["id"]}, token=operator.token))["scenarioApplication"]
    assert base64.b64decode(one["documents"][0]["contentBase64"]) == PLAN
    queue = (await c.run("ScenarioApplications", {"status": "UNDER_REVIEW", "first": 10}, token=reg.token)
             )["scenarioApplications"]
    assert [e["node"]["id"] for e in queue["edges"]] == [applied["id"]]
    stranger = await approved(api, "MERCHANT", "别家商户", reg=reg)
    hidden = await api.gql(ONE, {"id": applied["id"]}, token=stranger.token)
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    grant_input = {"applicationId": applied["id"], "reason": "专家一致通过", "validityYears": 3,
                   "idempotencyKey": "grant-1"}
    early = (await api.data(GRANT, {"input": {**grant_input, "idempotencyKey": "grant-0"}}, token=reg.token)
             )["grantScenarioMark"]
    assert codes(early) == [("OPINIONS_OUTSTANDING", "reviewId")]
    panel = await expert_actors(api, reg, 3, fields=("SCENARIO",))
    await opinions_in(api, reg, applied["reviewId"], panel)
    seen = (await c.run("ScenarioApplicationForReview", {"id": applied["id"]}, token=panel[0].actor.token)
            )["scenarioApplication"]
    assert seen["reviewId"] == applied["reviewId"]
    forbidden = (await api.data(GRANT, {"input": grant_input}, token=operator.token))["grantScenarioMark"]
    assert codes(forbidden) == [("FORBIDDEN", None)]
    granted = (await c.run("GrantScenarioMark", {"input": grant_input}, token=reg.token)
               )["grantScenarioMark"]["application"]
    mark = granted["mark"]
    assert (granted["status"], mark["number"], mark["status"]) == ("GRANTED", "SZCS-2026-0001", "ACTIVE")
    assert mark["validUntil"].startswith("2029-03-01T16:00:00") and mark["pageUrl"].endswith("/scenarios/SZCS-2026-0001")
    replay = (await api.data(GRANT, {"input": grant_input}, token=reg.token))["grantScenarioMark"]
    assert replay["application"]["mark"]["number"] == "SZCS-2026-0001" and replay["errors"] == []
    double = (await api.data(GRANT, {"input": {**grant_input, "idempotencyKey": "grant-2"}}, token=reg.token)
              )["grantScenarioMark"]
    assert codes(double) == [("ALREADY_DECIDED", "applicationId")]

    listed = (await c.run("Scenarios", {"first": 10}))["scenarios"]  # anonymous
    assert [e["node"]["markNumber"] for e in listed["edges"]] == ["SZCS-2026-0001"]
    public = (await c.run("Scenario", {"markNumber": "szcs-2026-0001"}))["scenario"]
    assert (public["name"], public["kind"], public["methodologyCodes"]) == ("深圳湾万象城", "MALL", ["SZ-METRO"])
    assert (await api.data("query { scenario(markNumber: \"SZCS-2026-0404\") { id } }"))["scenario"] is None

    # the public page its QR code opens: plain HTML with the mark and no private field
    page = await api.client.get("/scenarios/SZCS-2026-0001", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Content-Security-Policy" in page.headers
    body = page.text
    assert "SZCS-2026-0001" in body and "深圳湾万象城" in body and "<svg" in body and "南山区" in body
    assert "<script" not in body and not [p for p in PRIVATE if p in body]
    data = (await api.client.get("/scenarios/SZCS-2026-0001")).json()
    assert set(data) == {"markNumber", "name", "kind", "district", "methodologyCodes", "grantedAt", "validUntil",
                         "status", "statusReason", "pageUrl"}
    assert (data["status"], data["district"]) == ("ACTIVE", "nanshan")
    assert (await api.client.get("/scenarios/SZCS-2026-0404")).status_code == 404

    # an operator's report naming the scenario: credited, and the unrelated item alone rejected
    rule = (await api.data('mutation($at: DateTime!) { createExchangeRule(input: {points: 1, reductionMg: 10000, '
                           'dailyCapPoints: 1000, acceptanceWindowDays: 7, effectiveFrom: $at}) { rule { id } } }',
                           {"at": clock.now().isoformat()}, token=reg.token))["createExchangeRule"]["rule"]
    await api.data('mutation($id: ID!) { publishExchangeRule(input: {id: $id}) { errors { code } } }',
                   {"id": rule["id"]}, token=reg.token)
    key = (await api.data('mutation { createApiKey(input: {name: "r", scopes: [REPORT_BEHAVIOUR, INVITE_ENTRUSTMENTS]}) '
                          '{ secret } }', token=operator.token))["createApiKey"]["secret"]
    shopper = await person(api, "李小红")
    code = (await api.data('mutation { createEntrustmentInvitation(input: {externalUserId: "u-7"}) '
                           '{ invitation { code } } }', api_key=key))["createEntrustmentInvitation"]["invitation"]["code"]
    await api.data('mutation($c: String!) { acceptEntrustment(input: {code: $c, agreementVersion: "v1"}) '
                   '{ errors { code } } }', {"c": code}, token=shopper.token)
    now = clock.advance(minutes=5).isoformat()
    reported = (await api.data(REPORT, {"input": {"items": [
        {"reportId": "m-1", "externalUserId": "u-7", "methodologyCode": "SZ-METRO", "quantity": "10",
         "occurredAt": now, "scenarioMark": "SZCS-2026-0001"},
        {"reportId": "m-2", "externalUserId": "u-7", "methodologyCode": "SZ-EBUS", "quantity": "10",
         "occurredAt": now, "scenarioMark": "SZCS-2026-0001"},
        {"reportId": "m-3", "externalUserId": "u-7", "methodologyCode": "SZ-METRO", "quantity": "10",
         "occurredAt": now}]}}, api_key=key))["reportBehaviour"]
    assert [(r["reportId"], r["status"], r["rejectCode"], r["points"]) for r in reported["results"]] == [
        ("m-1", "CREDITED", None, 46), ("m-2", "REJECTED", "SCENARIO_UNRELATED", 0), ("m-3", "CREDITED", None, 47)]
    day = clock.now().date().isoformat()
    aggregates = (await api.data('query($d: Date!) { reportAggregates(since: $d, until: $d, byScenario: true) '
                                 '{ methodologyCode scenarioId reports credited points } }', {"d": day},
                                 api_key=key))["reportAggregates"]
    assert sorted(((a["methodologyCode"], a["scenarioId"], a["reports"], a["credited"], a["points"])
                   for a in aggregates), key=str) == sorted([
        ("SZ-EBUS", None, 1, 0, 0), ("SZ-METRO", public["id"], 1, 1, 46), ("SZ-METRO", None, 1, 1, 47)], key=str)
    plain = (await api.data('query($d: Date!) { reportAggregates(since: $d, until: $d) { methodologyCode reports } }',
                            {"d": day}, api_key=key))["reportAggregates"]
    assert sorted((a["methodologyCode"], a["reports"]) for a in plain) == [("SZ-EBUS", 1), ("SZ-METRO", 2)]
    stored = (await api.data('{ myReports(first: 10) { edges { node { reportId scenarioId } } } }', api_key=key)
              )["myReports"]["edges"]
    assert {e["node"]["reportId"]: e["node"]["scenarioId"] for e in stored} == {
        "m-1": public["id"], "m-2": None, "m-3": None}
    wallet = (await c.run("WalletScenarioBreakdown", {"first": 10}, token=shopper.token))["myWallet"]
    assert wallet["scenarioBreakdown"] == [
        {"scenario": {"id": public["id"], "name": "深圳湾万象城", "markNumber": "SZCS-2026-0001"}, "reports": 1,
         "points": 46, "reductionGrams": 468},
        {"scenario": None, "reports": 1, "points": 47, "reductionGrams": 468}]
    assert sorted((e["node"]["points"], (e["node"]["scenario"] or {}).get("markNumber"))
                  for e in wallet["history"]["edges"]) == [(46, "SZCS-2026-0001"), (47, None)]

    # suspended, reinstated, withdrawn; then nothing more
    change = {"markNumber": "SZCS-2026-0001", "reason": "现场检查发现数据采集异常", "idempotencyKey": "s-1"}
    assert (await c.run("SuspendScenarioMark", {"input": change}, token=reg.token)
            )["suspendScenarioMark"]["scenario"]["status"] == "SUSPENDED"
    page = await api.client.get("/scenarios/SZCS-2026-0001", headers={"Accept": "text/html"})
    assert "已暂停 Suspended" in page.text and "现场检查发现数据采集异常" in page.text
    assert (await c.run("ReinstateScenarioMark", {"input": {**change, "reason": "整改完成", "idempotencyKey": "r-1"}},
                        token=reg.token))["reinstateScenarioMark"]["scenario"]["status"] == "ACTIVE"
    assert (await c.run("WithdrawScenarioMark", {"input": {**change, "reason": "拒不整改", "idempotencyKey": "w-1"}},
                        token=reg.token))["withdrawScenarioMark"]["scenario"]["status"] == "WITHDRAWN"
    late = (await api.data(SUSPEND, {"input": {**change, "idempotencyKey": "s-2"}}, token=reg.token)
            )["suspendScenarioMark"]
    assert codes(late) == [("MARK_WITHDRAWN", "markNumber")]

    # a second application, refused after its opinions
    other = (await api.data(APPLY, {"input": application_input("park-1", name="莲花山公园", kind="PARK",
                                                               district="FUTIAN")}, token=operator.token)
             )["applyForScenario"]["application"]
    other_review = (await c.run("ScenarioApplication", {"id": other["id"]}, token=operator.token)
                    )["scenarioApplication"]["reviewId"]
    await opinions_in(api, reg, other_review, panel, opinion="FAIL")
    refused = (await c.run("RefuseScenarioApplication", {"input": {
        "applicationId": other["id"], "reason": "数据保护措施不足", "idempotencyKey": "refuse-1"}}, token=reg.token)
               )["refuseScenarioApplication"]["application"]
    assert (refused["status"], refused["mark"]) == ("REFUSED", None)
    assert c.ran == SCENARIO_CONTRACTS
