"""Experts and reviews for tests: the library filled through the domain or the API, and a review
taken to the point where every opinion is in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from reviews import experts, service
from reviews.models import Opinion, ReviewSeat, SubjectKind
from tests.conftest import Actor, person, sign_in
from tests.neutrality.fixtures import accounts

# the review front-end contracts, walked by hash in tests/reviews/test_review_api.py
REVIEW_CONTRACTS = {
    "AddExpert", "SetExpertStatus", "RegulatorDeclareExpertConflict", "ExpertLibrary", "DrawReviewExperts",
    "ReviewsForRegulator", "ReviewJournal", "MyReviewSeats", "SubmitReviewOpinion", "DeclineReview",
    "DeclareExpertConflict", "ExpertReview", "Experts", "ReviewRecord", "RecheckReviewDraws",
}
ADD_EXPERT = """
mutation($input: AddExpertInput!) {
  addExpert(input: $input) { expert { expert { id name } } errors { code field message } }
}"""
DRAW = """
mutation($input: DrawReviewExpertsInput!) {
  drawReviewExperts(input: $input) { review { id status seats { expert { id } } } errors { code field message } }
}"""
OPINION = """
mutation($input: SubmitReviewOpinionInput!) {
  submitReviewOpinion(input: $input) { seat { id status opinion } errors { code field message } }
}"""


async def in_transaction(services, fn, **kwargs):
    async with services.session_factory() as session:
        async with session.begin():
            return await fn(session=session, clock=services.clock, **kwargs)


async def library(services, n: int, fields=("reduction_verification",)) -> list[uuid.UUID]:
    """n experts of the given fields, added by a regulator; their ids."""
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    people = await accounts(services, n, role="individual", kind="person")
    ids = []
    for i, account_id in enumerate(people):
        expert = await in_transaction(services, experts.add_expert, regulator_id=regulator_id, account_id=account_id,
                                      name=f"专家 {i:03d}", affiliation=f"深圳大学 {i}", fields=list(fields))
        ids.append(expert.id)
    return ids


async def opened_review(services, *, seats: int = 3, field: str = "reduction_verification",
                        parties: list[uuid.UUID] = ()) -> uuid.UUID:
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    review = await in_transaction(services, service.open_review, opened_by=regulator_id,
                                  subject_kind=SubjectKind.PROJECT_VERIFICATION, subject_id=uuid.uuid4(), field=field,
                                  experts_wanted=seats, parties=list(parties))
    return review.id


async def answer_all(services, review_id: uuid.UUID, opinion: Opinion = Opinion.PASS) -> list[ReviewSeat]:
    """Draw the review's experts (as a regulator) and have each seated expert give `opinion`."""
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    await in_transaction(services, service.draw_experts, regulator_id=regulator_id, review_id=review_id)
    async with services.session_factory() as session:
        seats = (await service.seats_of(session=session, review_ids=[review_id]))[review_id]
        expert_accounts = {s.expert_id: (await experts.get_expert(session=session, expert_id=s.expert_id)).account_id
                           for s in seats}
    answered = []
    for seat in seats:
        if seat.status == "seated":
            answered.append(await in_transaction(services, service.submit_opinion,
                                                 account_id=expert_accounts[seat.expert_id], review_id=review_id,
                                                 opinion=opinion, text="数据与方法学一致 (consistent with the methodology)"))
    return answered


@dataclass
class ExpertActor:
    actor: Actor
    expert_id: str


async def expert_actors(api, reg: Actor, n: int, fields=("REDUCTION_VERIFICATION",)) -> list[ExpertActor]:
    """n people added to the library through the API, signed in afresh with the EXPERT role."""
    found = []
    for i in range(n):
        someone = await person(api, f"专家{i}")
        added = (await api.data(ADD_EXPERT, {"input": {"accountId": someone.account_id, "name": f"专家{i}",
                                                       "affiliation": "南方科技大学",
                                                       "fields": [f.lower() for f in fields]}},
                                token=reg.token))["addExpert"]
        assert added["errors"] == [], added
        found.append(ExpertActor(actor=await sign_in(api, someone.login), expert_id=added["expert"]["expert"]["id"]))
    return found


async def opinions_in(api, reg: Actor, review_id: str, panel: list[ExpertActor], opinion: str = "PASS") -> None:
    """The regulator draws the review's experts; each drawn expert of `panel` gives `opinion`."""
    drawn = (await api.data(DRAW, {"input": {"reviewId": review_id}}, token=reg.token))["drawReviewExperts"]
    assert drawn["errors"] == [], drawn
    seated = {s["expert"]["id"] for s in drawn["review"]["seats"]}
    for member in panel:
        if member.expert_id in seated:
            given = (await api.data(OPINION, {"input": {"reviewId": review_id, "opinion": opinion,
                                                        "text": "核查报告与监测数据一致"}},
                                    token=member.actor.token))["submitReviewOpinion"]
            assert given["errors"] == [], given
