"""Every supervision contract by its persisted hash: a suspension, its public listing, the credit
record as the regulator and the organisation see it, a rescission; an inspection and its follow-up."""

from __future__ import annotations

from datetime import timedelta

from core.clock import business_date
from tests.api.test_frontend_contracts import PersistedClient
from tests.conftest import approved, regulator
from tests.supervision.fixtures import SUPERVISION_CONTRACTS

DOCS = [{"name": "现场检查笔录.pdf", "sha256": "12" * 32, "byteSize": 2048}]


async def test_supervision_contracts_run_as_persisted_queries(api, clock):
    c = PersistedClient(api)
    reg = await regulator(api)
    merchant = await approved(api, "MERCHANT", name="绿色生活百货", reg=reg)
    recorded = (await c.run("RecordViolation", {"input": {
        "organisationId": merchant.account_id, "role": "MERCHANT", "article": 24, "finding": "虚标积分价格",
        "documents": DOCS, "sanction": "SUSPENSION", "suspendedUntil": (clock.now() + timedelta(days=7)).isoformat(),
        "idempotencyKey": "v-1"}}, token=reg.token))["recordViolation"]
    assert recorded["violation"]["inForce"] is True
    public = (await c.run("SanctionsInForce", {"first": 10}))["sanctionsInForce"]["edges"]
    assert [e["node"]["organisationName"] for e in public] == ["绿色生活百货"]
    mine = (await c.run("MyCreditRecord", {"organisationId": merchant.account_id, "first": 10},
                        token=merchant.token))["creditRecord"]["edges"]
    assert [e["node"]["id"] for e in mine] == [recorded["violation"]["id"]]
    await c.run("RescindViolation", {"input": {"violationId": recorded["violation"]["id"], "reason": "价格系系统错误",
                                               "idempotencyKey": "r-1"}}, token=reg.token)
    record = (await c.run("CreditRecord", {"organisationId": merchant.account_id, "first": 10},
                          token=reg.token))["creditRecord"]["edges"]
    assert record[0]["node"]["rescission"]["reason"] == "价格系系统错误"
    assert (await c.run("SanctionsInForce", {"first": 10}))["sanctionsInForce"]["edges"] == []

    today = business_date(clock.now())
    inspection = (await c.run("RecordInspection", {"input": {
        "inspectedOn": today.isoformat(), "scope": "平台运行情况", "findings": "运行正常", "documents": DOCS,
        "idempotencyKey": "i-1"}}, token=reg.token))["recordInspection"]["inspection"]
    added = (await c.run("AddInspectionFollowUp", {"input": {
        "inspectionId": inspection["id"], "action": "补充备份演练", "dueOn": (today + timedelta(days=14)).isoformat(),
        "idempotencyKey": "f-1"}}, token=reg.token))["addInspectionFollowUp"]["followUp"]
    await c.run("CompleteFollowUp", {"input": {"followUpId": added["id"], "note": "已演练", "idempotencyKey": "c-1"}},
                token=reg.token)
    listed = (await c.run("Inspections", {"first": 10}, token=reg.token))["inspections"]["edges"]
    assert [e["node"]["followUps"][0]["status"] for e in listed] == ["DONE"]
    one = (await c.run("Inspection", {"id": inspection["id"]}, token=reg.token))["inspection"]
    assert len(one["history"]) == 3
    assert c.ran == SUPERVISION_CONTRACTS
