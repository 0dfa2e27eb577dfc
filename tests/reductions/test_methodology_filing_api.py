"""Methodology filing over the API (issue 10, art. 11-14): the front-end contracts as persisted queries,
permissions, every refusal as a typed error, idempotency keys, and the public list's filing record."""

import base64
import uuid

from sqlalchemy import event

from core.documents import MAX_ATTACHMENT_BYTES
from reviews.models import Review
from tests.api.test_frontend_contracts import PersistedClient
from tests.conftest import approved, organisation, person, regulator
from tests.reductions.filing_fixtures import (FORM, METHODOLOGY_CONTRACTS, NOTES, TEXT, application_input,
                                              document_input)
from tests.reviews.fixtures import DRAW, expert_actors, opinions_in

APPLY = """mutation($input: ApplyForMethodologyFilingInput!) {
  applyForMethodologyFiling(input: $input) { application { id status } errors { code field message } } }"""
FILE = """mutation($input: FileMethodologyInput!) {
  fileMethodology(input: $input) { application { id status } methodology { id version } errors { code field message } } }"""
REFUSE = """mutation($input: RefuseMethodologyApplicationInput!) {
  refuseMethodologyApplication(input: $input) { application { id status } errors { code field message } } }"""
CREATE_GONE = """mutation { createMethodology(input: {}) { errors { code } } }"""


async def test_filing_contracts_walk_as_persisted_queries(api, clock):
    c = PersistedClient(api)
    reg = await regulator(api)
    applicant = await approved(api, "VERIFIER", "深圳骑行低碳研究院", reg=reg)
    applied = (await c.run("ApplyForMethodologyFiling", {"input": application_input("bike-1")},
                           token=applicant.token))["applyForMethodologyFiling"]["application"]
    assert applied["status"] == "UNDER_REVIEW" and applied["reviewId"]
    assert [e["event"] for e in applied["journal"]] == ["submitted"]
    mine = (await c.run("MyMethodologyApplications", {"first": 10}, token=applicant.token))["myMethodologyApplications"]
    assert [e["node"]["id"] for e in mine["edges"]] == [applied["id"]]
    one = (await c.run("MethodologyApplication", {"id": applied["id"]}, token=applicant.token))["methodologyApplication"]
    assert base64.b64decode(one["documents"][0]["contentBase64"]) == FORM
    assert base64.b64decode(one["documents"][1]["contentBase64"]) == TEXT
    listed = (await c.run("MethodologyApplications", {"status": "UNDER_REVIEW", "first": 10}, token=reg.token)
              )["methodologyApplications"]
    assert [e["node"]["code"] for e in listed["edges"]] == ["SZ-BIKE"]

    panel = await expert_actors(api, reg, 3, fields=("METHODOLOGY",))
    await opinions_in(api, reg, applied["reviewId"], panel)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(api.services.engine.sync_engine, "before_cursor_execute", count)
    try:
        filed = (await c.run("FileMethodology", {"input": {"applicationId": applied["id"], "reason": "专家一致通过",
                                                           "idempotencyKey": "file-1"}}, token=reg.token)
                 )["fileMethodology"]
    finally:
        event.remove(api.services.engine.sync_engine, "before_cursor_execute", count)
    # the answer builds the application and its filing record from one read of each
    assert sum("FROM methodology_documents" in s for s in statements) == 1, statements
    assert sum("FROM methodology_applications" in s and "FOR UPDATE" not in s for s in statements) == 1, statements
    assert filed["application"]["status"] == "FILED"
    assert (filed["methodology"]["code"], filed["methodology"]["version"], filed["methodology"]["status"]) == (
        "SZ-BIKE", 1, "PUBLISHED")
    public = {m["code"]: m for m in (await c.run("Methodologies"))["methodologies"]}
    bike = public["SZ-BIKE"]
    assert bike["filing"]["applicantName"] == "深圳骑行低碳研究院"
    assert (bike["filing"]["reviewOutcome"], bike["filing"]["decisionReason"]) == ("approved", "专家一致通过")
    assert bike["filing"]["reviewId"] == applied["reviewId"]
    assert bike["filing"]["expertOpinions"] == {"passed": 3, "passedWithChanges": 0, "failed": 0}
    assert [d["kind"] for d in bike["filing"]["documents"]] == ["APPLICATION_FORM", "METHODOLOGY_TEXT", "DRAFTING_NOTES"]
    assert public["SZ-METRO"]["filing"] is None and public["SZ-HOME-POWER"]["calculation"] == "BASELINE_MINUS_ACTUAL"
    record = (await c.run("MethodologyFilingRecord", {"id": applied["id"]}))["methodologyApplication"]  # anonymous
    assert base64.b64decode(record["documents"][2]["contentBase64"]) == NOTES
    assert [e["event"] for e in record["journal"]] == ["submitted", "filed"]

    other = (await c.run("ApplyForMethodologyFiling", {"input": application_input("walk-1", code="SZ-WALK")},
                         token=applicant.token))["applyForMethodologyFiling"]["application"]
    await opinions_in(api, reg, other["reviewId"], panel, opinion="FAIL")
    refused = (await c.run("RefuseMethodologyApplication", {"input": {
        "applicationId": other["id"], "reason": "步数换算依据不足", "idempotencyKey": "refuse-1"}}, token=reg.token)
               )["refuseMethodologyApplication"]["application"]
    assert (refused["status"], refused["decisionReason"]) == ("REFUSED", "步数换算依据不足")
    retired = (await c.run("RetireMethodology", {"input": {"id": filed["methodology"]["id"]}}, token=reg.token)
               )["retireMethodology"]["methodology"]
    assert retired["status"] == "RETIRED"
    assert c.ran == METHODOLOGY_CONTRACTS | {"Methodologies"}, f"not exercised: {sorted(METHODOLOGY_CONTRACTS - c.ran)}"

    # the outcome is the review's own decision, read from the review, not a constant of the record
    async with api.services.session_factory() as session, session.begin():
        review = await session.get(Review, uuid.UUID(applied["reviewId"]))
        assert review.decision == bike["filing"]["reviewOutcome"]
        review.decision = "refused"
    again = {m["code"]: m for m in (await c.run("Methodologies"))["methodologies"]}
    assert again["SZ-BIKE"]["filing"]["reviewOutcome"] == "refused"


async def test_an_incomplete_application_answers_every_missing_item_and_replays_them(api):
    applicant = await approved(api, "MERCHANT")
    variables = {"input": {"idempotencyKey": "empty", "code": "SZ-X", "calculation": "BASELINE_MINUS_ACTUAL",
                           "applicationForm": document_input("form.pdf", FORM)}}
    first = (await api.data(APPLY, variables, token=applicant.token))["applyForMethodologyFiling"]
    assert first["application"] is None
    assert [(e["code"], e["field"]) for e in first["errors"]] == [
        ("MISSING_ITEM", f) for f in ("name", "behaviourDomain", "activityUnit", "factorMgPerUnit", "maxQuantity",
                                      "methodologyText", "draftingNotes")]
    again = (await api.data(APPLY, variables, token=applicant.token))["applyForMethodologyFiling"]
    assert again["errors"] == first["errors"]
    reused = (await api.data(APPLY, {"input": {**variables["input"], "code": "SZ-Y"}}, token=applicant.token)
              )["applyForMethodologyFiling"]["errors"]
    assert [e["code"] for e in reused] == ["IDEMPOTENCY_KEY_REUSED"]


async def test_document_refusals(api):
    applicant = await approved(api, "MERCHANT")
    too_large = document_input("big.pdf", b"x" * (MAX_ATTACHMENT_BYTES + 1))
    not_base64 = {"fileName": "t.pdf", "mediaType": "application/pdf", "contentBase64": "not base64!"}
    for key, overrides, code, field in (
        ("big", {"methodologyText": too_large}, "DOCUMENT_TOO_LARGE", "methodologyText"),
        ("b64", {"draftingNotes": not_base64}, "INVALID_APPLICATION", "draftingNotes"),
        ("fac", {"factorMgPerUnit": -5}, "INVALID_APPLICATION", "factorMgPerUnit"),
        ("max", {"maxQuantity": "1e400"}, "QUANTITY_TOO_LARGE", "maxQuantity"),
    ):
        errors = (await api.data(APPLY, {"input": application_input(key, **overrides)}, token=applicant.token)
                  )["applyForMethodologyFiling"]["errors"]
        assert [(e["code"], e["field"]) for e in errors] == [(code, field)], (key, errors)


async def test_a_retried_application_opens_one_review(api):
    applicant = await approved(api, "MERCHANT")
    first = (await api.data(APPLY, {"input": application_input("once")}, token=applicant.token))
    again = (await api.data(APPLY, {"input": application_input("once")}, token=applicant.token))
    assert first == again
    mine = await api.data("{ myMethodologyApplications(first: 10) { edges { node { id } } } }", token=applicant.token)
    assert len(mine["myMethodologyApplications"]["edges"]) == 1


async def test_who_may_apply_read_and_decide(api):
    reg = await regulator(api)
    applicant = await approved(api, "MERCHANT", reg=reg)
    stranger = await organisation(api, "另一家公司")
    operator = await approved(api, "APP_OPERATOR", reg=reg)
    someone = await person(api)
    refused = (await api.data(APPLY, {"input": application_input("p")}, token=someone.token))
    assert [e["code"] for e in refused["applyForMethodologyFiling"]["errors"]] == ["FORBIDDEN"]
    # "any approved organisation" (art. 11): not one that just signed up, nor one whose application for a role
    # awaits the regulator, nor a project owner (a role without the regulator's approval)
    pending = await organisation(api, "待批准公司", apply_for=["MERCHANT"])
    owner = await organisation(api, "项目业主公司", apply_for=["PROJECT_OWNER"])
    for who in (stranger, pending, owner):
        unapproved = await api.data(APPLY, {"input": application_input(f"u-{who.account_id}")}, token=who.token)
        assert [e["code"] for e in unapproved["applyForMethodologyFiling"]["errors"]] == ["FORBIDDEN"], unapproved
    # an approved operator is an organisation too; the regulator applies for its own (art. 12)
    for who in (operator, reg):
        ok = await api.data(APPLY, {"input": application_input(f"k-{who.account_id}", code=f"SZ-{who.account_id[:6]}")},
                            token=who.token)
        assert ok["applyForMethodologyFiling"]["errors"] == [], ok
    application_id = (await api.data(APPLY, {"input": application_input("a")}, token=applicant.token)
                      )["applyForMethodologyFiling"]["application"]["id"]
    read = "query($id: ID!) { methodologyApplication(id: $id) { id } }"
    hidden = await api.gql(read, {"id": application_id}, token=stranger.token)
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert (await api.gql(read, {"id": str(uuid.uuid4())}, token=reg.token))["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert (await api.data(read, {"id": application_id}, token=reg.token))["methodologyApplication"]["id"] == application_id
    listing = await api.gql("{ methodologyApplications(first: 5) { edges { cursor } } }", token=applicant.token)
    assert listing["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    for mutation, name in ((FILE, "fileMethodology"), (REFUSE, "refuseMethodologyApplication")):
        by_applicant = await api.data(mutation, {"input": {"applicationId": application_id, "reason": "自己批准",
                                                           "idempotencyKey": "self"}}, token=applicant.token)
        assert [e["code"] for e in by_applicant[name]["errors"]] == ["FORBIDDEN"]
        early = await api.data(mutation, {"input": {"applicationId": application_id, "reason": "太早",
                                                    "idempotencyKey": f"early-{name}"}}, token=reg.token)
        assert [e["code"] for e in early[name]["errors"]] == ["OPINIONS_OUTSTANDING"]
    # the direct publishing path is gone: publication is only by filing
    gone = await api.gql(CREATE_GONE, token=reg.token)
    assert gone.get("data") is None and "createMethodology" in gone["errors"][0]["message"], gone


async def test_drawn_experts_read_the_application_others_only_once_filed(api):
    reg = await regulator(api)
    applicant = await approved(api, "APP_OPERATOR", reg=reg)
    panel = await expert_actors(api, reg, 4, fields=("METHODOLOGY",))
    applied = (await api.data(APPLY.replace("status }", "status reviewId }"), {"input": application_input("e")},
                              token=applicant.token))["applyForMethodologyFiling"]["application"]
    read = "query($id: ID!) { methodologyApplication(id: $id) { id documents { contentBase64 } } }"
    drawn = (await api.data(DRAW, {"input": {"reviewId": applied["reviewId"]}}, token=reg.token))["drawReviewExperts"]
    seated = {s["expert"]["id"] for s in drawn["review"]["seats"]}
    assert len(seated) == 3
    for member in panel:
        body = await api.gql(read, {"id": applied["id"]}, token=member.actor.token)
        if member.expert_id in seated:
            assert base64.b64decode(body["data"]["methodologyApplication"]["documents"][0]["contentBase64"]) == FORM
        else:
            assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert (await api.gql(read, {"id": applied["id"]}))["errors"][0]["extensions"]["code"] == "NOT_FOUND"
