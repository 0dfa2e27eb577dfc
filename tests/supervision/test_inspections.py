"""Inspections (art. 30) through the public API: the regulator records an inspection of the platform
or of an organisation, adds follow-ups due by a date, completes them with a note; the history is
append-only and only the regulator reads it."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlalchemy import text

from core.clock import business_date
from tests.conftest import approved, person, regulator, sign_in

FIELDS = """id organisationId inspectedOn scope findings documents { name sha256 byteSize } recordedAt
  followUps { id action dueOn status completionNote completedAt } history { action followUpId actorId at details }"""
RECORD = """
mutation Record($input: RecordInspectionInput!) {
  recordInspection(input: $input) { inspection { %s } errors { code field message } }
}""" % FIELDS
ADD = """
mutation Add($input: AddInspectionFollowUpInput!) {
  addInspectionFollowUp(input: $input) { followUp { id status dueOn } inspection { id } errors { code field message } }
}"""
COMPLETE = """
mutation Complete($input: CompleteFollowUpInput!) {
  completeFollowUp(input: $input) { followUp { id status completionNote } inspection { %s } errors { code field message } }
}""" % FIELDS
LIST = """query List($org: ID) { inspections(organisationId: $org, first: 10) { edges { node { id inspectedOn } } } }"""
ONE = "query One($id: ID!) { inspection(id: $id) { %s } }" % FIELDS


def key() -> str:
    return uuid.uuid4().hex


async def test_an_inspection_its_follow_ups_and_history(api, clock, services):
    reg = await regulator(api)
    merchant = await approved(api, "MERCHANT", name="抽查商户", reg=reg)
    today = business_date(clock.now())
    platform = (await api.data(RECORD, {"input": {
        "inspectedOn": (today - timedelta(days=3)).isoformat(), "scope": "积分核算与数据保护（第二十八、三十条）",
        "findings": "抽查 200 条行为记录，核算一致；日志保存期限不足。", "idempotencyKey": "i-1",
        "documents": [{"name": "检查记录.pdf", "sha256": "ef" * 32, "byteSize": 4096}]}}, token=reg.token)
                )["recordInspection"]
    assert platform["errors"] == [], platform
    inspection = platform["inspection"]
    assert inspection["organisationId"] is None and [h["action"] for h in inspection["history"]] == [
        "inspection.recorded"]
    # the same key replays the first answer
    replay = (await api.data(RECORD, {"input": {
        "inspectedOn": (today - timedelta(days=3)).isoformat(), "scope": "积分核算与数据保护（第二十八、三十条）",
        "findings": "抽查 200 条行为记录，核算一致；日志保存期限不足。", "idempotencyKey": "i-1",
        "documents": [{"name": "检查记录.pdf", "sha256": "ef" * 32, "byteSize": 4096}]}}, token=reg.token))
    assert replay["recordInspection"]["inspection"]["id"] == inspection["id"]
    of_merchant = (await api.data(RECORD, {"input": {
        "organisationId": merchant.account_id, "inspectedOn": today.isoformat(), "scope": "兑换核销",
        "findings": "无问题", "idempotencyKey": "i-2"}}, token=reg.token))["recordInspection"]
    assert of_merchant["errors"] == [] and of_merchant["inspection"]["organisationId"] == merchant.account_id

    added = (await api.data(ADD, {"input": {"inspectionId": inspection["id"], "action": "日志保存延长至五年",
                                            "dueOn": (today + timedelta(days=30)).isoformat(),
                                            "idempotencyKey": "f-1"}}, token=reg.token))["addInspectionFollowUp"]
    assert added["errors"] == [] and added["followUp"]["status"] == "OPEN"
    follow_up = added["followUp"]["id"]
    clock.advance(days=10)
    reg_token = (await sign_in(api, reg.login)).token  # the access token lived 15 minutes
    done = (await api.data(COMPLETE, {"input": {"followUpId": follow_up, "note": "已上线新的保存策略",
                                                "idempotencyKey": "c-1"}}, token=reg_token))["completeFollowUp"]
    assert done["errors"] == [] and done["followUp"]["status"] == "DONE"
    assert done["followUp"]["completionNote"] == "已上线新的保存策略"
    assert [(h["action"], h["followUpId"]) for h in done["inspection"]["history"]] == [
        ("inspection.recorded", None), ("follow_up.added", follow_up), ("follow_up.done", follow_up)]
    again = (await api.data(COMPLETE, {"input": {"followUpId": follow_up, "note": "再次",
                                                 "idempotencyKey": "c-2"}}, token=reg_token))["completeFollowUp"]
    assert again["errors"][0]["code"] == "ALREADY_DONE"

    listed = (await api.data(LIST, {}, token=reg_token))["inspections"]["edges"]
    assert [e["node"]["id"] for e in listed] == [of_merchant["inspection"]["id"], inspection["id"]]
    only = (await api.data(LIST, {"org": merchant.account_id}, token=reg_token))["inspections"]["edges"]
    assert [e["node"]["id"] for e in only] == [of_merchant["inspection"]["id"]]
    async with services.session_factory() as session:
        actions = list((await session.execute(text(
            "SELECT action FROM audit_events WHERE action LIKE 'inspection%' ORDER BY at, action"))).scalars())
    assert actions == ["inspection.recorded", "inspection.recorded", "inspection_follow_up.added",
                       "inspection_follow_up.done"]


async def test_every_refusal_and_only_the_regulator(api, clock, services):
    reg = await regulator(api)
    merchant = await approved(api, "MERCHANT", name="被查商户", reg=reg)
    someone = await person(api)
    today = business_date(clock.now())

    async def record_code(who=reg, **fields) -> str | None:
        values = {"inspectedOn": today.isoformat(), "scope": "范围", "findings": "发现", "idempotencyKey": key(),
                  **fields}
        body = await api.gql(RECORD, {"input": values}, token=who.token)
        if body.get("errors"):
            return body["errors"][0]["extensions"]["code"]
        errors = body["data"]["recordInspection"]["errors"]
        return errors[0]["code"] if errors else None

    assert await record_code(who=merchant) == "FORBIDDEN"
    assert await record_code(who=someone) == "FORBIDDEN"
    assert await record_code(inspectedOn=(today + timedelta(days=1)).isoformat()) == "INVALID_DATE"
    assert await record_code(inspectedOn=date(2022, 8, 17).isoformat()) == "INVALID_DATE"
    assert await record_code(scope=" ") == "SCOPE_REQUIRED"
    assert await record_code(findings="") == "FINDING_REQUIRED"
    assert await record_code(documents=[{"name": "x", "sha256": "no", "byteSize": 1}]) == "INVALID_DOCUMENT"
    assert await record_code(organisationId=str(uuid.uuid4())) == "NOT_FOUND"
    assert await record_code(organisationId=someone.account_id) == "NOT_FOUND"  # a person is no organisation
    assert await record_code() is None
    [inspection] = [e["node"]["id"] for e in (await api.data(LIST, {}, token=reg.token))["inspections"]["edges"]]

    async def add_code(**fields) -> str | None:
        values = {"inspectionId": inspection, "action": "整改", "dueOn": (today + timedelta(days=7)).isoformat(),
                  "idempotencyKey": key(), **fields}
        body = await api.gql(ADD, {"input": values}, token=reg.token)
        errors = body["data"]["addInspectionFollowUp"]["errors"]
        return errors[0]["code"] if errors else None

    assert await add_code(inspectionId=str(uuid.uuid4())) == "NOT_FOUND"
    assert await add_code(dueOn=(today - timedelta(days=1)).isoformat()) == "INVALID_DATE"
    assert await add_code(dueOn=(today + timedelta(days=4 * 366)).isoformat()) == "INVALID_DATE"
    assert await add_code(action="") == "SCOPE_REQUIRED"
    assert await add_code() is None
    follow_up = (await api.data(ONE, {"id": inspection}, token=reg.token))["inspection"]["followUps"][0]["id"]

    async def complete_code(**fields) -> str | None:
        values = {"followUpId": follow_up, "note": "完成", "idempotencyKey": key(), **fields}
        body = await api.gql(COMPLETE, {"input": values}, token=reg.token)
        errors = body["data"]["completeFollowUp"]["errors"]
        return errors[0]["code"] if errors else None

    assert await complete_code(followUpId=str(uuid.uuid4())) == "NOT_FOUND"
    assert await complete_code(note="  ") == "NOTE_REQUIRED"
    assert await complete_code() is None
    assert await complete_code() == "ALREADY_DONE"
    # regulator-only reads
    for who in (merchant, someone):
        denied = await api.gql(LIST, {}, token=who.token)
        assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        denied = await api.gql(ONE, {"id": inspection}, token=who.token)
        assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await api.gql(LIST, {}))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await api.data(ONE, {"id": str(uuid.uuid4())}, token=reg.token))["inspection"] is None
