"""Violations, credit records and sanctions through the public API (art. 30-32): a suspension takes
effect at once and ends by itself when the clock passes its end; a revocation is for good; a warning
changes nothing but the record; the public list of sanctions shows nothing private."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text

from core.errors import DomainError
from mall import catalog_cache
from neutrality.cers import verification
from supervision import violations
from tests.conftest import approved, organisation, person, regulator, sign_in
from tests.mall.test_mall_api import LISTING, Mall, browse, lots_of
from tests.neutrality.fixtures import accounts, filed_project

DOCS = [{"name": "检查报告.pdf", "sha256": "ab" * 32, "byteSize": 20480}]
VIOLATION_FIELDS = """id organisationId organisationName role article finding documents { name sha256 byteSize }
  sanction suspendedFrom suspendedUntil inForce recordedAt rescission { reason rescindedAt }"""
RECORD = """
mutation Record($input: RecordViolationInput!) {
  recordViolation(input: $input) { violation { %s } releasedRedemptions errors { code field message } }
}""" % VIOLATION_FIELDS
RESCIND = """
mutation Rescind($input: RescindViolationInput!) {
  rescindViolation(input: $input) { violation { %s } errors { code field message } }
}""" % VIOLATION_FIELDS
CREDIT_RECORD = """
query Credit($id: ID!) { creditRecord(organisationId: $id, first: 50) { edges { node { %s } } } }""" % VIOLATION_FIELDS
SANCTIONS = """
query Sanctions($first: Int, $after: String) {
  sanctionsInForce(first: $first, after: $after) {
    edges { node { id organisationName role article sanction since until } } pageInfo { hasNextPage endCursor }
  }
}"""
REDEMPTIONS = "{ myRedemptions(first: 50) { edges { node { id status points settledReason } } } }"
REPORT = """
mutation Report($input: ReportBehaviourInput!) {
  reportBehaviour(input: $input) { results { reportId status } errors { code field message } }
}"""
REVOKE = """
mutation Revoke($input: RevokeRoleInput!) {
  revokeRole(input: $input) { application { id status role } errors { code field message } }
}"""


async def record(api, reg, org_id: str, role: str, sanction: str, *, key: str | None = None, **extra) -> dict:
    values = {"organisationId": org_id, "role": role, "article": 31, "finding": "未按规定核验积分兑换",
              "documents": DOCS, "sanction": sanction, "idempotencyKey": key or uuid.uuid4().hex, **extra}
    return (await api.data(RECORD, {"input": values}, token=reg.token))["recordViolation"]


async def redemption(api, who) -> dict:
    [node] = [e["node"] for e in (await api.data(REDEMPTIONS, token=who.token))["myRedemptions"]["edges"]]
    return node


async def scalar(services, sql: str, **params):
    async with services.session_factory() as session:
        return (await session.execute(text(sql), params)).scalar_one()


async def audit_actions(services) -> list[str]:
    async with services.session_factory() as session:
        return list((await session.execute(text("SELECT action FROM audit_events ORDER BY at, action"))).scalars())


async def test_a_suspended_merchant_leaves_the_catalogue_and_comes_back_by_itself(api, clock, services):
    mall = await Mall(api, clock).open()
    buyer = await mall.newcomer("买家")
    await mall.earn("买家", "100", "r-1")  # 468 points
    listing = await mall.listing(mall.merchant, pricePoints=100, stock=5, perPersonLimit=None)
    await mall.activate(mall.merchant, listing["id"])
    other = await mall.listing(mall.merchant2, title="共享单车月卡", pricePoints=50)
    await mall.activate(mall.merchant2, other["id"])
    before = lots_of(await mall.wallet(buyer))
    held = await mall.redeem(buyer, {**listing, "pricePoints": 100}, "k-1", quantity=2)
    assert held["errors"] == [], held
    assert (await mall.wallet(buyer))["held"] == 200

    until = clock.now() + timedelta(days=2)
    answer = await record(api, mall.reg, mall.merchant.account_id, "MERCHANT", "SUSPENSION",
                          suspendedUntil=until.isoformat())
    assert answer["errors"] == [], answer
    violation = answer["violation"]
    assert violation["inForce"] and violation["sanction"] == "SUSPENSION" and answer["releasedRedemptions"] == 1

    # at once: its listing leaves the catalogue (the cache too), cannot be seen or redeemed; the other stays
    assert [n["id"] for n in await browse(api)] == [other["id"]]
    assert (await api.data(LISTING, {"id": listing["id"]}))["listing"] is None
    refused = await mall.redeem(buyer, {**listing, "pricePoints": 100}, "k-2")
    assert refused["errors"][0]["code"] == "NOT_AVAILABLE"
    # the held redemption went back to the very lots it came from, with a notice
    released = await redemption(api, buyer)
    assert released["status"] == "RELEASED" and "suspended by the regulator" in released["settledReason"]
    wallet = await mall.wallet(buyer)
    assert lots_of(wallet) == before and wallet["held"] == 0 and wallet["balance"] == 468
    assert await scalar(services, "SELECT stock_available FROM listings WHERE id = :l",
                        l=uuid.UUID(listing["id"])) == 5
    assert (await api.data("{ ledgerAudit { ok } }", token=mall.reg.token))["ledgerAudit"]["ok"]
    # the merchant still sees its own listing
    assert (await api.data(LISTING, {"id": listing["id"]}, token=mall.merchant.token))["listing"]["id"]
    assert "violation.recorded" in await audit_actions(services)

    # the suspension ends by itself: nothing runs, the clock passes its end
    clock.set(until + timedelta(seconds=1))
    # a cached page lives TTL_SECONDS of real time, as when an availability window ends; the test's
    # clock jumped two days in no time, so drop the cached pages as their TTL would have
    await catalog_cache.invalidate(services.redis)
    await mall.refresh()
    buyer = mall.people["买家"]
    assert {n["id"] for n in await browse(api)} == {listing["id"], other["id"]}
    again = await mall.redeem(buyer, {**listing, "pricePoints": 100}, "k-3")
    assert again["errors"] == [] and again["redemption"]["status"] == "HELD"
    record_now = (await api.data(CREDIT_RECORD, {"id": mall.merchant.account_id}, token=mall.reg.token))
    [entry] = [e["node"] for e in record_now["creditRecord"]["edges"]]
    assert entry["id"] == violation["id"] and entry["inForce"] is False
    assert (await api.data(SANCTIONS))["sanctionsInForce"]["edges"] == []


async def test_a_suspended_operator_reports_nothing_and_its_app_mall_closes_until_rescinded(api, clock, services):
    mall = await Mall(api, clock).open()
    buyer = await mall.newcomer("乘客")
    await mall.earn("乘客", "100", "r-1")
    app_listing = await mall.listing(mall.merchant, channel="APP", appOperatorId=mall.operator.account_id,
                                     pricePoints=100, perPersonLimit=None)
    await mall.activate(mall.merchant, app_listing["id"])
    platform_listing = await mall.listing(mall.merchant, title="布袋", pricePoints=10, perPersonLimit=None)
    await mall.activate(mall.merchant, platform_listing["id"])
    before = lots_of(await mall.wallet(buyer))
    assert (await mall.redeem(buyer, app_listing, "k-1"))["errors"] == []

    answer = await record(api, mall.reg, mall.operator.account_id, "APP_OPERATOR", "SUSPENSION",
                          suspendedUntil=(clock.now() + timedelta(days=30)).isoformat())
    assert answer["errors"] == [] and answer["releasedRedemptions"] == 1
    # its reports are refused, the whole call, with its own code
    at = (clock.now() - timedelta(minutes=1)).isoformat()
    item = {"reportId": "r-2", "externalUserId": mall.externals["乘客"], "methodologyCode": "SZ-METRO",
            "quantity": "10", "occurredAt": at}
    refused = (await api.data(REPORT, {"input": {"items": [item]}}, api_key=mall.key))["reportBehaviour"]
    assert refused["errors"][0]["code"] == "OPERATOR_SUSPENDED" and refused["results"] == []
    # its app mall closes; the merchant's platform listing stays
    assert [n["id"] for n in await browse(api)] == [platform_listing["id"]]
    assert (await mall.redeem(buyer, app_listing, "k-2"))["errors"][0]["code"] == "NOT_AVAILABLE"
    assert (await redemption(api, buyer))["status"] == "RELEASED"
    assert lots_of(await mall.wallet(buyer)) == before

    # a rescission (a new entry) ends it at once; the violation stays in the record
    rescinded = (await api.data(RESCIND, {"input": {"violationId": answer["violation"]["id"],
                                                     "reason": "误认主体", "idempotencyKey": "x-1"}},
                                token=mall.reg.token))["rescindViolation"]
    assert rescinded["errors"] == [] and rescinded["violation"]["rescission"]["reason"] == "误认主体"
    assert rescinded["violation"]["inForce"] is False
    accepted = (await api.data(REPORT, {"input": {"items": [item]}}, api_key=mall.key))["reportBehaviour"]
    assert accepted["errors"] == [] and accepted["results"][0]["status"] == "CREDITED"
    assert {n["id"] for n in await browse(api)} == {app_listing["id"], platform_listing["id"]}
    again = (await api.data(RESCIND, {"input": {"violationId": answer["violation"]["id"], "reason": "再次",
                                                 "idempotencyKey": "x-2"}}, token=mall.reg.token))
    assert again["rescindViolation"]["errors"][0]["code"] == "ALREADY_RESCINDED"
    assert "violation.rescinded" in await audit_actions(services)


async def test_an_operator_suspension_ends_by_itself(api, clock, services):
    mall = await Mall(api, clock).open()
    await mall.newcomer("行人")
    until = clock.now() + timedelta(hours=3)
    assert (await record(api, mall.reg, mall.operator.account_id, "APP_OPERATOR", "SUSPENSION",
                         suspendedUntil=until.isoformat()))["errors"] == []
    item = {"reportId": "r-1", "externalUserId": mall.externals["行人"], "methodologyCode": "SZ-METRO",
            "quantity": "10", "occurredAt": (clock.now() - timedelta(minutes=1)).isoformat()}
    refused = (await api.data(REPORT, {"input": {"items": [item]}}, api_key=mall.key))["reportBehaviour"]
    assert refused["errors"][0]["code"] == "OPERATOR_SUSPENDED"
    clock.set(until)  # the end itself is no longer suspended
    item["occurredAt"] = (clock.now() - timedelta(minutes=1)).isoformat()
    accepted = (await api.data(REPORT, {"input": {"items": [item]}}, api_key=mall.key))["reportBehaviour"]
    assert accepted["errors"] == [] and accepted["results"][0]["status"] == "CREDITED"


async def test_revocation_is_for_good_and_takes_the_role(api, clock, services):
    mall = await Mall(api, clock).open()
    buyer = await mall.newcomer("顾客")
    await mall.earn("顾客", "100", "r-1")
    listing = await mall.listing(mall.merchant, pricePoints=100, perPersonLimit=None)
    await mall.activate(mall.merchant, listing["id"])
    before = lots_of(await mall.wallet(buyer))
    assert (await mall.redeem(buyer, listing, "k-1"))["errors"] == []

    answer = await record(api, mall.reg, mall.merchant.account_id, "MERCHANT", "REVOCATION", article=24)
    assert answer["errors"] == [] and answer["releasedRedemptions"] == 1
    assert answer["violation"]["inForce"] and answer["violation"]["suspendedUntil"] is None
    roles = {r["role"]: r["status"] for r in (await api.data(
        "{ me { roles { role status } } }", token=(await sign_in(api, mall.merchant.login)).token))["me"]["roles"]}
    assert roles["MERCHANT"] == "REVOKED"
    assert await scalar(services, "SELECT status FROM listings WHERE id = :l", l=uuid.UUID(listing["id"])) == "archived"
    assert await browse(api) == []
    released = await redemption(api, buyer)
    assert released["status"] == "RELEASED" and "no longer approved" in released["settledReason"]
    assert lots_of(await mall.wallet(buyer)) == before
    # for good: months on, still off sale, still listed as in force
    clock.advance(days=40)
    await mall.refresh()
    assert await browse(api) == []
    [public] = [e["node"] for e in (await api.data(SANCTIONS))["sanctionsInForce"]["edges"]]
    assert public["sanction"] == "REVOCATION" and public["until"] is None and public["article"] == 24
    # a second revocation has no role left to take
    again = await record(api, mall.reg, mall.merchant.account_id, "MERCHANT", "REVOCATION")
    assert again["errors"][0]["code"] == "ROLE_NOT_HELD"
    actions = await audit_actions(services)
    assert "role.revoked" in actions and "violation.recorded" in actions


async def test_revoking_the_merchant_role_by_any_path_takes_its_listings_out(api, clock, services):
    mall = await Mall(api, clock).open()
    buyer = await mall.newcomer("路人")
    await mall.earn("路人", "100", "r-1")
    listing = await mall.listing(mall.merchant2, pricePoints=100, perPersonLimit=None)
    await mall.activate(mall.merchant2, listing["id"])
    assert (await mall.redeem(buyer, listing, "k-1"))["errors"] == []
    assert [n["id"] for n in await browse(api)] == [listing["id"]]  # cached now
    application = next(r["id"] for r in (await api.data("{ me { roles { id role } } }", token=mall.merchant2.token)
                                          )["me"]["roles"] if r["role"] == "MERCHANT")
    revoked = (await api.data(REVOKE, {"input": {"applicationId": application, "reason": "停业"}},
                              token=mall.reg.token))["revokeRole"]
    assert revoked["errors"] == [] and revoked["application"]["status"] == "REVOKED"
    assert await browse(api) == []
    assert (await mall.redeem(buyer, listing, "k-2"))["errors"][0]["code"] == "NOT_AVAILABLE"
    assert (await redemption(api, buyer))["status"] == "RELEASED"


async def test_a_warning_changes_nothing_but_the_record(api, clock, services):
    mall = await Mall(api, clock).open()
    buyer = await mall.newcomer("居民")
    await mall.earn("居民", "100", "r-1")
    listing = await mall.listing(mall.merchant, pricePoints=100, perPersonLimit=None)
    await mall.activate(mall.merchant, listing["id"])
    assert (await mall.redeem(buyer, listing, "k-1"))["errors"] == []
    answer = await record(api, mall.reg, mall.merchant.account_id, "MERCHANT", "WARNING")
    assert answer["errors"] == [] and answer["releasedRedemptions"] == 0 and answer["violation"]["inForce"] is False
    assert [n["id"] for n in await browse(api)] == [listing["id"]]
    assert (await redemption(api, buyer))["status"] == "HELD"
    assert (await mall.redeem(buyer, listing, "k-2"))["errors"] == []
    assert (await api.data(SANCTIONS))["sanctionsInForce"]["edges"] == []
    own = await api.data(CREDIT_RECORD, {"id": mall.merchant.account_id}, token=mall.merchant.token)
    assert [e["node"]["sanction"] for e in own["creditRecord"]["edges"]] == ["WARNING"]


async def test_every_refusal_of_recording_and_rescinding(api, clock, services):
    reg = await regulator(api)
    merchant = await approved(api, "MERCHANT", name="一号商户", reg=reg)
    pending = await organisation(api, "待批机构", apply_for=["MERCHANT"])
    someone = await person(api)
    later = (clock.now() + timedelta(days=1)).isoformat()

    async def code(org_id, role="MERCHANT", sanction="SUSPENSION", who=reg, **extra) -> str:
        values = {"organisationId": org_id, "role": role, "article": 31, "finding": "违规", "documents": DOCS,
                  "sanction": sanction, "idempotencyKey": uuid.uuid4().hex, "suspendedUntil": later, **extra}
        body = await api.gql(RECORD, {"input": values}, token=who.token)
        if body.get("errors"):
            return body["errors"][0]["extensions"]["code"]
        [error] = body["data"]["recordViolation"]["errors"]
        return error["code"]

    assert await code(merchant.account_id, who=merchant) == "FORBIDDEN"
    assert await code(str(uuid.uuid4())) == "NOT_FOUND"
    assert await code("not-an-id") == "NOT_FOUND"
    assert await code(someone.account_id) == "ROLE_NOT_HELD"  # a person
    assert await code(pending.account_id) == "ROLE_NOT_HELD"  # applied, not approved
    assert await code(merchant.account_id, role="VERIFIER") == "ROLE_NOT_HELD"
    assert await code(merchant.account_id, article=0) == "INVALID_ARTICLE"
    assert await code(merchant.account_id, article=34) == "INVALID_ARTICLE"
    assert await code(merchant.account_id, finding="   ") == "FINDING_REQUIRED"
    assert await code(merchant.account_id, finding="长" * 5001) == "FINDING_REQUIRED"
    assert await code(merchant.account_id, documents=[]) == "INVALID_DOCUMENT"
    assert await code(merchant.account_id, documents=[{**DOCS[0], "sha256": "xyz"}]) == "INVALID_DOCUMENT"
    assert await code(merchant.account_id, suspendedUntil=None) == "INVALID_PERIOD"
    assert await code(merchant.account_id, suspendedUntil=(clock.now() - timedelta(minutes=1)).isoformat()) == \
        "INVALID_PERIOD"
    assert await code(merchant.account_id, suspendedUntil=(clock.now() + timedelta(days=731)).isoformat()) == \
        "INVALID_PERIOD"
    assert await code(merchant.account_id, sanction="WARNING") == "INVALID_PERIOD"  # a warning has no period
    assert await code(merchant.account_id, role="SCENARIO_OPERATOR", sanction="REVOCATION",
                      suspendedUntil=None) == "REVOCATION_NOT_APPLICABLE"
    # nothing was recorded by any refusal
    assert await scalar(services, "SELECT count(*) FROM violations") == 0

    # the same key replays the first answer; with another input it is refused
    first = await record(api, reg, merchant.account_id, "MERCHANT", "WARNING", key="same")
    replay = await record(api, reg, merchant.account_id, "MERCHANT", "WARNING", key="same")
    assert replay["violation"]["id"] == first["violation"]["id"]
    reused = await record(api, reg, merchant.account_id, "MERCHANT", "WARNING", key="same", article=30)
    assert reused["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await scalar(services, "SELECT count(*) FROM violations") == 1
    # a scenario operator is any organisation; it can be warned or suspended
    assert (await record(api, reg, pending.account_id, "SCENARIO_OPERATOR", "WARNING"))["errors"] == []

    async def rescind(violation_id, reason="录入错误", who=reg) -> str | None:
        body = await api.gql(RESCIND, {"input": {"violationId": violation_id, "reason": reason,
                                                  "idempotencyKey": uuid.uuid4().hex}}, token=who.token)
        if body.get("errors"):
            return body["errors"][0]["extensions"]["code"]
        errors = body["data"]["rescindViolation"]["errors"]
        return errors[0]["code"] if errors else None

    assert await rescind(first["violation"]["id"], who=merchant) == "FORBIDDEN"
    assert await rescind(str(uuid.uuid4())) == "NOT_FOUND"
    assert await rescind(first["violation"]["id"], reason=" ") == "REASON_REQUIRED"
    assert await rescind(first["violation"]["id"]) is None
    assert await rescind(first["violation"]["id"]) == "ALREADY_RESCINDED"

    # the credit record: the regulator sees anyone's; an organisation its own only; a person nothing
    own = await api.data(CREDIT_RECORD, {"id": merchant.account_id}, token=merchant.token)
    [entry] = [e["node"] for e in own["creditRecord"]["edges"]]
    assert entry["rescission"]["reason"] == "录入错误" and entry["finding"] == "未按规定核验积分兑换"
    other = await api.data(CREDIT_RECORD, {"id": pending.account_id}, token=merchant.token)
    assert other["creditRecord"] is None
    denied = await api.gql(CREDIT_RECORD, {"id": merchant.account_id}, token=someone.token)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert len((await api.data(CREDIT_RECORD, {"id": pending.account_id}, token=reg.token)
                )["creditRecord"]["edges"]) == 1


async def test_the_public_list_shows_nothing_private(api, clock, services):
    reg = await regulator(api)
    orgs = [await approved(api, "MERCHANT", name=f"商户{i}", reg=reg) for i in range(3)]
    for i, org in enumerate(orgs):
        answer = await record(api, reg, org.account_id, "MERCHANT", "SUSPENSION",
                              suspendedUntil=(clock.now() + timedelta(days=10 + i)).isoformat())
        assert answer["errors"] == []
        clock.advance(minutes=1)
    await record(api, reg, orgs[0].account_id, "MERCHANT", "WARNING")
    seen, after = [], None
    while True:
        page = (await api.data(SANCTIONS, {"first": 2, "after": after}))["sanctionsInForce"]
        seen += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert [n["organisationName"] for n in seen] == ["商户2", "商户1", "商户0"]
    assert all(n["sanction"] == "SUSPENSION" for n in seen)
    body = str(await api.gql(SANCTIONS, {"first": 100}))
    private = [org.login for org in orgs] + [org.account_id for org in orgs] + ["未按规定核验积分兑换", DOCS[0]["sha256"],
                                                                              "检查报告"]
    assert not [p for p in private if p in body]
    # the type itself has no private field to ask for
    for field in ("finding", "documents", "organisationId", "email", "phone"):
        refused = await api.gql("{ sanctionsInForce { edges { node { %s } } } }" % field)
        assert refused.get("errors"), field
    too_many = await api.gql(SANCTIONS, {"first": 101})
    assert too_many.get("errors") or too_many["data"] is None


async def test_a_suspended_verifier_gets_no_commission_until_its_suspension_ends(services, clock):
    registry = await filed_project(services, buyers=0)
    [verifier] = await accounts(services, 1, role="verifier")
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    async with services.session_factory() as session:
        async with session.begin():
            await session.execute(text("UPDATE cer_projects SET status = 'declared', filed_at = NULL WHERE id = :p"),
                                  {"p": registry.project_id})
            await violations.record_violation(
                session=session, clock=clock, regulator_id=regulator_id, organisation_id=verifier, role="verifier",
                article=32, finding="核查报告与现场不符", documents=[violations.Document("r.pdf", "cd" * 32, 10)],
                sanction="suspension", suspended_until=clock.now() + timedelta(days=90))

    async def commission():
        async with services.session_factory() as session:
            async with session.begin():
                return await verification.commission_verifier(
                    session=session, clock=clock, regulator_id=regulator_id, project_id=registry.project_id,
                    verifier_id=verifier)

    with pytest.raises(DomainError) as barred:
        await commission()
    assert barred.value.code == "VERIFIER_SANCTIONED" and "suspended" in barred.value.message
    clock.advance(days=90, seconds=1)
    assert (await commission()).verifier_id == verifier
