"""The technical review through the public API: every review contract by its persisted hash, who
sees what (the public, a drawn expert, another expert, the regulator), and the refusals."""

from __future__ import annotations

import uuid

from tests.api.test_frontend_contracts import PersistedClient
from tests.conftest import organisation, person, regulator, sign_in
from tests.reviews.fixtures import REVIEW_CONTRACTS, expert_actors, opened_review

REVIEW = """query($id: ID!) { review(id: $id) { id status seats { expert { id } opinion text } } }"""


async def test_a_review_from_library_to_opinions_by_persisted_operations(api, services):
    c = PersistedClient(api)
    reg = await regulator(api)
    owner = await organisation(api, "光明绿能科技有限公司")
    someone = await person(api, "李教授")
    added = (await c.run("AddExpert", {"input": {"accountId": someone.account_id, "name": "李教授",
                                                 "affiliation": "清华大学深圳国际研究生院",
                                                 "fields": ["reduction_verification", "domain:metro"]}},
                         token=reg.token))["addExpert"]["expert"]
    assert added["active"] is True and added["expert"]["fields"] == ["domain:metro", "reduction_verification"]
    lee = await sign_in(api, someone.login)
    panel = await expert_actors(api, reg, 4)
    declared = await c.run("DeclareExpertConflict", {"input": {"organisationId": owner.account_id,
                                                              "note": "曾为该公司提供咨询"}}, token=lee.token)
    assert declared["declareExpertConflict"]["conflict"]["organisationId"] == owner.account_id
    await c.run("RegulatorDeclareExpertConflict", {"input": {"expertId": panel[0].expert_id,
                                                            "organisationId": owner.account_id}}, token=reg.token)
    await c.run("SetExpertStatus", {"input": {"expertId": panel[1].expert_id, "active": False,
                                              "reason": "借调外地"}}, token=reg.token)
    library = (await c.run("ExpertLibrary", {"first": 10}, token=reg.token))["expertLibrary"]["edges"]
    assert len(library) == 5 and any(e["node"]["conflicts"] for e in library)
    public = (await c.run("Experts", {"field": "reduction_verification", "first": 10}))["experts"]["edges"]
    assert len(public) == 4 and set(public[0]["node"]) == {"id", "name", "fields", "affiliation"}

    review_id = str(await opened_review(services, seats=2, parties=[uuid.UUID(owner.account_id)]))
    before = (await c.run("ReviewRecord", {"id": review_id}))["review"]
    assert before["status"] == "OPEN" and before["draws"] == [] and len(before["nextCommitment"]) == 64
    drawn = (await c.run("DrawReviewExperts", {"input": {"reviewId": review_id}},
                         token=reg.token))["drawReviewExperts"]["review"]
    seated = {s["expert"]["id"] for s in drawn["seats"]}
    # lee and panel[0] are conflicted, panel[1] is suspended: the draw is from panel[2:]
    assert seated == {panel[2].expert_id, panel[3].expert_id}
    assert drawn["draws"][0]["commitment"] == before["nextCommitment"]
    assert sorted(drawn["draws"][0]["pool"]) == sorted(seated)

    first, second = panel[2], panel[3]
    mine = (await c.run("MyReviewSeats", {"first": 10}, token=first.actor.token))["myReviewSeats"]["edges"]
    assert [e["node"]["reviewId"] for e in mine] == [review_id]
    assert (await c.run("MyReviewSeats", {"first": 10}, token=panel[0].actor.token))["myReviewSeats"]["edges"] == []
    await c.run("SubmitReviewOpinion", {"input": {"reviewId": review_id, "opinion": "PASS_WITH_CHANGES",
                                                  "text": "建议补充电表校验记录"}}, token=first.actor.token)
    # each expert sees their own seat only; the public sees none; the regulator sees all with the opinions
    own = (await c.run("ExpertReview", {"id": review_id}, token=first.actor.token))["review"]["seats"]
    assert [(s["opinion"], s["text"]) for s in own] == [("PASS_WITH_CHANGES", "建议补充电表校验记录")]
    other = (await api.data(REVIEW, {"id": review_id}, token=second.actor.token))["review"]["seats"]
    assert [s["expert"]["id"] for s in other] == [second.expert_id] and other[0]["opinion"] is None
    assert (await api.data(REVIEW, {"id": review_id}))["review"]["seats"] == []
    assert (await api.data(REVIEW, {"id": review_id}, token=panel[0].actor.token))["review"]["seats"] == []
    # the second declines for a conflict; nobody eligible is left, so the seat stays empty
    declined = (await c.run("DeclineReview", {"input": {"reviewId": review_id, "reason": "与核查机构有合作"}},
                            token=second.actor.token))["declineReview"]["seat"]
    assert declined["status"] == "DECLINED"
    listed = (await c.run("ReviewsForRegulator", {"status": "DRAWN", "first": 10},
                          token=reg.token))["reviewsForRegulator"]["edges"]
    [node] = [e["node"] for e in listed if e["node"]["id"] == review_id]
    assert sorted(s["status"] for s in node["seats"]) == ["ANSWERED", "DECLINED"]
    journal = (await c.run("ReviewJournal", {"reviewId": review_id}, token=reg.token))["reviewJournal"]
    assert [j["action"] for j in journal] == ["opened", "drawn", "answered", "declined", "short"]
    checks = (await c.run("RecheckReviewDraws", {"reviewId": review_id}))["recheckReviewDraws"]
    assert [c_["valid"] for c_ in checks] == [True]
    assert c.ran - {"SignUp", "Login"} == REVIEW_CONTRACTS, sorted(REVIEW_CONTRACTS - c.ran)


async def test_refusals_and_permissions(api, services):
    reg = await regulator(api)
    [expert] = await expert_actors(api, reg, 1)
    someone = await person(api)
    org = await organisation(api)
    add = """mutation($input: AddExpertInput!) { addExpert(input: $input) { errors { code field } } }"""
    body = {"accountId": someone.account_id, "name": "张三", "affiliation": "深圳大学", "fields": ["methodology"]}
    assert (await api.data(add, {"input": body}, token=expert.actor.token))["addExpert"]["errors"][0]["code"] == "FORBIDDEN"
    for bad, code in (({"fields": ["astrology"]}, "INVALID_FIELD"), ({"fields": []}, "INVALID"),
                      ({"name": " "}, "INVALID"), ({"accountId": org.account_id}, "NOT_AN_EXPERT"),
                      ({"accountId": expert.actor.account_id}, "ALREADY_AN_EXPERT"),
                      ({"accountId": "nope"}, "NOT_FOUND"), ({"affiliation": "x" * 201}, "INVALID")):
        answer = (await api.data(add, {"input": {**body, **bad}}, token=reg.token))["addExpert"]
        assert [e["code"] for e in answer["errors"]] == [code], (bad, answer)
    opinion = """mutation($input: SubmitReviewOpinionInput!) { submitReviewOpinion(input: $input) {
        errors { code } } }"""
    review_id = str(await opened_review(services, seats=1))
    not_drawn = await api.data(opinion, {"input": {"reviewId": review_id, "opinion": "PASS", "text": "ok"}},
                               token=expert.actor.token)
    assert not_drawn["submitReviewOpinion"]["errors"] == [{"code": "NOT_FOUND"}]
    person_opinion = await api.data(opinion, {"input": {"reviewId": review_id, "opinion": "PASS", "text": "ok"}},
                                    token=someone.token)
    assert person_opinion["submitReviewOpinion"]["errors"] == [{"code": "FORBIDDEN"}]
    draw = """mutation($input: DrawReviewExpertsInput!) { drawReviewExperts(input: $input) { errors { code } } }"""
    assert (await api.data(draw, {"input": {"reviewId": review_id}}, token=expert.actor.token)
            )["drawReviewExperts"]["errors"] == [{"code": "FORBIDDEN"}]
    journal = await api.gql("query($id: ID!) { reviewJournal(reviewId: $id) { action } }", {"id": review_id},
                            token=expert.actor.token)
    assert journal["data"] is None and journal["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await api.data(REVIEW, {"id": "not-an-id"}))["review"] is None
    assert (await api.data("query($id: ID!) { recheckReviewDraws(reviewId: $id) { valid } }",
                           {"id": str(uuid.uuid4())}))["recheckReviewDraws"] == []


async def test_lists_cost_the_same_statements_for_one_review_or_many(api, services):
    """reviewsForRegulator and expertLibrary load seats, experts and conflicts per page, not per row."""
    from sqlalchemy import event

    from tests.reviews.fixtures import answer_all, library

    reg = await regulator(api)
    await library(services, 3)
    query = """query { reviewsForRegulator(first: 50) { edges { node { id seats { expert { name } } } } }
                       expertLibrary(first: 50) { edges { node { conflicts { note } } } } }"""
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    async def cost() -> int:
        statements.clear()
        event.listen(services.engine.sync_engine, "before_cursor_execute", count)
        try:
            await api.data(query, token=reg.token)
        finally:
            event.remove(services.engine.sync_engine, "before_cursor_execute", count)
        return len(statements)

    await answer_all(services, await opened_review(services, seats=2))
    one = await cost()
    for _ in range(4):
        await answer_all(services, await opened_review(services, seats=2))
    await library(services, 5)
    many = await cost()
    assert many == one and one > 0
