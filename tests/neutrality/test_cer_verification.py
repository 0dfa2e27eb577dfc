"""Independent verification (art. 17) and false reports (art. 32): only the commissioned verifier
reports, nobody else can raise verified tonnes, filing waits for the drawn experts, a sanction bars
the verifier, flags its projects and freezes their tonnes."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from core.documents import Document
from core.errors import DomainError
from neutrality.cers import projects, verification
from neutrality.cers.models import Project, VerifierReport
from neutrality.market import offers, purchases
from reviews.models import Opinion
from tests.conftest import organisation, regulator
from tests.neutrality.fixtures import accounts, commissioned_project
from tests.reviews.fixtures import answer_all, in_transaction, library

DOC = Document(name="核查报告.pdf", sha256="0f" * 32, byte_size=4096)
SUBMIT = """
mutation($input: SubmitVerificationReportInput!) {
  submitVerificationReport(input: $input) { commission { id status } errors { code field message } }
}"""
COMMISSION = """
mutation($input: CommissionVerifierInput!) {
  commissionVerifier(input: $input) { commission { id } errors { code field message } }
}"""


async def _report(services, commissioned, tonnes: int = 500, vintage: int = 2025):
    return await in_transaction(services, verification.submit_report, verifier_id=commissioned.verifier_id,
                                commission_id=commissioned.commission_id,
                                vintages=[verification.VintageTonnes(vintage=vintage, tonnes=tonnes)], documents=[DOC])


async def _regulator_id(services) -> uuid.UUID:
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    return regulator_id


async def test_only_the_commissioned_verifier_reports_and_only_once(services):
    commissioned = await commissioned_project(services)
    [other_verifier] = await accounts(services, 1, role="verifier")
    with pytest.raises(DomainError) as stranger:
        await in_transaction(services, verification.submit_report, verifier_id=other_verifier,
                             commission_id=commissioned.commission_id,
                             vintages=[verification.VintageTonnes(2025, 100)], documents=[DOC])
    assert stranger.value.code == "NOT_FOUND"
    # the owner cannot report on its own project, whatever roles it holds
    with pytest.raises(DomainError) as owner:
        await in_transaction(services, verification.submit_report, verifier_id=commissioned.owner_id,
                             commission_id=commissioned.commission_id,
                             vintages=[verification.VintageTonnes(2025, 100)], documents=[DOC])
    assert owner.value.code == "NOT_FOUND"
    for vintages, documents, code in (([], [DOC], "INVALID"),
                                      ([verification.VintageTonnes(2025, 0)], [DOC], "INVALID"),
                                      ([verification.VintageTonnes(2025, 1), verification.VintageTonnes(2025, 2)],
                                       [DOC], "INVALID"),
                                      ([verification.VintageTonnes(2025, 1)], [], "INVALID_DOCUMENT"),
                                      ([verification.VintageTonnes(2025, 1)],
                                       [Document(name="a", sha256="xyz", byte_size=1)], "INVALID_DOCUMENT")):
        with pytest.raises(DomainError) as bad:
            await in_transaction(services, verification.submit_report, verifier_id=commissioned.verifier_id,
                                 commission_id=commissioned.commission_id, vintages=vintages, documents=documents)
        assert bad.value.code == code
    commission = await _report(services, commissioned, tonnes=500)
    assert commission.status == "reported" and commission.review_id is not None
    with pytest.raises(DomainError) as again:
        await _report(services, commissioned, tonnes=5_000)
    assert again.value.code == "WRONG_STATUS"
    async with services.session_factory() as session:
        reports = (await session.scalars(select(VerifierReport).where(
            VerifierReport.project_id == commissioned.project_id))).all()
        project = await session.get(Project, commissioned.project_id)
    assert [(r.verified_tonnes, r.verifier_id) for r in reports] == [(500, commissioned.verifier_id)]
    assert project.status == "verified"


async def test_no_path_lets_a_project_owner_raise_its_verified_tonnes(api, services):
    """No mutation writes a verified figure but the commissioned verifier's; the owner, even holding
    the VERIFIER role, cannot be commissioned for its own project; issuance stays capped."""
    reg = await regulator(api)
    own = await organisation(api, "光明绿能科技有限公司", apply_for=["PROJECT_OWNER"])
    verifier_role = await api.data("""mutation { applyForRole(input: {role: VERIFIER}) {
        application { id } errors { code } } }""", token=own.token)
    await api.data("""mutation($id: ID!) { decideRoleApplication(input: {applicationId: $id, approve: true}) {
        errors { code } } }""", {"id": verifier_role["applyForRole"]["application"]["id"]}, token=reg.token)
    schema = (await api.gql("{ __schema { mutationType { fields { name } } } }"))["data"]["__schema"]
    writers = {f["name"] for f in schema["mutationType"]["fields"]}
    assert "attachVerifierReport" not in writers
    assert {w for w in writers if "erif" in w} == {"commissionVerifier", "withdrawVerifierCommission",
                                                  "submitVerificationReport", "recordFalseVerificationReport"}

    commissioned = await commissioned_project(services)
    async with services.session_factory() as session, session.begin():
        await session.execute(select(Project).where(Project.id == commissioned.project_id).with_for_update())
        project = await session.get(Project, commissioned.project_id)
        project.owner_id = uuid.UUID(own.account_id)
    # the owner signed in as a verifier: not its commission, so nothing to submit to
    refused = await api.data(SUBMIT, {"input": {"commissionId": str(commissioned.commission_id),
                                                "vintages": [{"vintage": 2025, "tonnes": 999_999}],
                                                "documents": [{"name": "x.pdf", "sha256": "ab" * 32, "byteSize": 1}],
                                                "idempotencyKey": "own-1"}}, token=(await _fresh(api, own)).token)
    assert [e["code"] for e in refused["submitVerificationReport"]["errors"]] == ["NOT_FOUND"]
    # nor can the regulator commission the owner to verify its own project
    async with services.session_factory() as session, session.begin():
        await session.execute(select(Project).where(Project.id == commissioned.project_id).with_for_update())
        await verification.withdraw_commission(session=session, clock=services.clock, regulator_id=uuid.UUID(
            reg.account_id), commission_id=commissioned.commission_id, reason="改派")
    itself = await api.data(COMMISSION, {"input": {"projectId": str(commissioned.project_id),
                                                   "verifierId": own.account_id}}, token=reg.token)
    assert [e["code"] for e in itself["commissionVerifier"]["errors"]] == ["VERIFIER_NOT_INDEPENDENT"]
    not_verifier = await organisation(api, "某咨询公司")
    nobody = await api.data(COMMISSION, {"input": {"projectId": str(commissioned.project_id),
                                                   "verifierId": not_verifier.account_id}}, token=reg.token)
    assert [e["code"] for e in nobody["commissionVerifier"]["errors"]] == ["NOT_A_VERIFIER"]
    owner_commissions = await api.data(COMMISSION, {"input": {"projectId": str(commissioned.project_id),
                                                              "verifierId": own.account_id}}, token=own.token)
    assert [e["code"] for e in owner_commissions["commissionVerifier"]["errors"]] == ["FORBIDDEN"]


async def _fresh(api, actor):
    from tests.conftest import sign_in
    return await sign_in(api, actor.login)


async def test_filing_and_rejection_decide_the_experts_review(services):
    await library(services, 3)
    regulator_id = await _regulator_id(services)
    commissioned = await commissioned_project(services, experts_wanted=3)
    commission = await _report(services, commissioned, tonnes=800)
    with pytest.raises(DomainError) as early:
        await in_transaction(services, projects.file_project, regulator_id=regulator_id,
                             project_id=commissioned.project_id, note="准予备案")
    assert early.value.code == "OPINIONS_OUTSTANDING"
    with pytest.raises(DomainError) as early_reject:
        await in_transaction(services, projects.reject_project, regulator_id=regulator_id,
                             project_id=commissioned.project_id, reason="数据不实")
    assert early_reject.value.code == "OPINIONS_OUTSTANDING"
    await answer_all(services, commission.review_id, Opinion.PASS_WITH_CHANGES)
    with pytest.raises(DomainError) as no_reason:
        await in_transaction(services, projects.file_project, regulator_id=regulator_id,
                             project_id=commissioned.project_id, note=" ")
    assert no_reason.value.code == "REASON_REQUIRED"
    filed = await in_transaction(services, projects.file_project, regulator_id=regulator_id,
                                 project_id=commissioned.project_id, note="专家意见：修改后通过，准予备案")
    assert filed.status == "filed"
    async with services.session_factory() as session:
        from reviews import service as reviews
        review = await reviews.get_review(session=session, review_id=commission.review_id)
        report = await session.scalar(select(VerifierReport).where(VerifierReport.commission_id == commission.id))
    assert (review.decision, review.decision_reason) == ("approved", "专家意见：修改后通过，准予备案")
    with pytest.raises(DomainError) as over:
        await in_transaction(services, projects.issue_cers, regulator_id=regulator_id,
                             verifier_report_id=report.id, tonnes=801)
    assert over.value.code == "EXCEEDS_VERIFIED"
    assert (await in_transaction(services, projects.issue_cers, regulator_id=regulator_id,
                                 verifier_report_id=report.id, tonnes=800)).last_serial == 800

    # another project whose experts fail the report: the rejection decides its review
    second = await commissioned_project(services, experts_wanted=2)
    commission2 = await _report(services, second, tonnes=50)
    await answer_all(services, commission2.review_id, Opinion.FAIL)
    rejected = await in_transaction(services, projects.reject_project, regulator_id=regulator_id,
                                    project_id=second.project_id, reason="专家一致认为基准线不成立")
    assert rejected.status == "rejected"
    async with services.session_factory() as session:
        review2 = await reviews.get_review(session=session, review_id=commission2.review_id)
    assert review2.decision == "refused"


async def test_a_false_report_bars_the_verifier_flags_and_freezes_its_projects(services):
    await library(services, 3)
    regulator_id = await _regulator_id(services)
    commissioned = await commissioned_project(services, experts_wanted=3)
    commission = await _report(services, commissioned, tonnes=300)
    await answer_all(services, commission.review_id)
    await in_transaction(services, projects.file_project, regulator_id=regulator_id,
                         project_id=commissioned.project_id, note="准予备案")
    async with services.session_factory() as session:
        report = await session.scalar(select(VerifierReport).where(VerifierReport.commission_id == commission.id))
    await in_transaction(services, projects.issue_cers, regulator_id=regulator_id, verifier_report_id=report.id,
                         tonnes=100)
    offer = await in_transaction(services, offers.create_offer, seller_id=commissioned.owner_id,
                                 project_id=commissioned.project_id, vintage=2025, quantity=50,
                                 price_per_tonne_fen=5_000)
    [buyer] = await accounts(services, 1)
    # the same verifier is commissioned elsewhere and has not reported yet
    pending = await commissioned_project(services)
    async with services.session_factory() as session, session.begin():
        from sqlalchemy import text
        await session.execute(text("UPDATE cer_verifier_commissions SET verifier_id = :v WHERE id = :c"),
                              {"v": commissioned.verifier_id, "c": pending.commission_id})

    with pytest.raises(DomainError) as bare:
        await in_transaction(services, verification.record_false_report, regulator_id=regulator_id,
                             verifier_id=commissioned.verifier_id, commission_id=None, reason="", freeze_unsold=True)
    assert bare.value.code == "REASON_REQUIRED"
    sanction, frozen = await in_transaction(services, verification.record_false_report, regulator_id=regulator_id,
                                            verifier_id=commissioned.verifier_id, commission_id=commission.id,
                                            reason="虚报减排量", freeze_unsold=True)
    assert frozen == [commissioned.project_code]
    with pytest.raises(DomainError) as frozen_issue:
        await in_transaction(services, projects.issue_cers, regulator_id=regulator_id, verifier_report_id=report.id,
                             tonnes=10)
    assert frozen_issue.value.code == "PROJECT_FROZEN"
    with pytest.raises(DomainError) as frozen_sale:
        await in_transaction(services, purchases.reserve_purchase, buyer_id=buyer, offer_id=offer.id, quantity=5)
    assert frozen_sale.value.code == "PROJECT_FROZEN"
    with pytest.raises(DomainError) as frozen_offer:
        await in_transaction(services, offers.create_offer, seller_id=commissioned.owner_id,
                             project_id=commissioned.project_id, vintage=2025, quantity=10, price_per_tonne_fen=5_000)
    assert frozen_offer.value.code == "PROJECT_FROZEN"
    with pytest.raises(DomainError) as barred_submit:
        await in_transaction(services, verification.submit_report, verifier_id=commissioned.verifier_id,
                             commission_id=pending.commission_id, vintages=[verification.VintageTonnes(2025, 5)],
                             documents=[DOC])
    assert barred_submit.value.code == "VERIFIER_SANCTIONED"
    third = await commissioned_project(services)
    await in_transaction(services, verification.withdraw_commission, regulator_id=regulator_id,
                         commission_id=third.commission_id, reason="改派")
    with pytest.raises(DomainError) as barred:
        await in_transaction(services, verification.commission_verifier, regulator_id=regulator_id,
                             project_id=third.project_id, verifier_id=commissioned.verifier_id)
    assert barred.value.code == "VERIFIER_SANCTIONED"
    async with services.session_factory() as session:
        flags = await verification.flags(session=session, project_ids=[commissioned.project_id, third.project_id])
    assert flags == {commissioned.project_id: ["虚报减排量"], third.project_id: []}

    with pytest.raises(DomainError) as not_frozen:
        await in_transaction(services, verification.unfreeze_project, regulator_id=regulator_id,
                             project_id=third.project_id, reason="x")
    assert not_frozen.value.code == "WRONG_STATUS"
    await in_transaction(services, verification.unfreeze_project, regulator_id=regulator_id,
                         project_id=commissioned.project_id, reason="复核属实部分保留")
    assert (await in_transaction(services, projects.issue_cers, regulator_id=regulator_id,
                                 verifier_report_id=report.id, tonnes=10)).last_serial == 110
    assert (await in_transaction(services, purchases.reserve_purchase, buyer_id=buyer, offer_id=offer.id,
                                 quantity=5)).quantity == 5


async def test_commissioning_refusals(services):
    regulator_id = await _regulator_id(services)
    commissioned = await commissioned_project(services)
    [verifier] = await accounts(services, 1, role="verifier")
    with pytest.raises(DomainError) as twice:
        await in_transaction(services, verification.commission_verifier, regulator_id=regulator_id,
                             project_id=commissioned.project_id, verifier_id=verifier)
    assert twice.value.code == "ALREADY_COMMISSIONED"
    await _report(services, commissioned)
    with pytest.raises(DomainError) as late:
        await in_transaction(services, verification.withdraw_commission, regulator_id=regulator_id,
                             commission_id=commissioned.commission_id, reason="改派")
    assert late.value.code == "WRONG_STATUS"
    with pytest.raises(DomainError) as verified:
        await in_transaction(services, verification.commission_verifier, regulator_id=regulator_id,
                             project_id=commissioned.project_id, verifier_id=verifier)
    assert verified.value.code == "WRONG_STATUS"
    with pytest.raises(DomainError) as seats:
        other = await commissioned_project(services)
        await in_transaction(services, verification.withdraw_commission, regulator_id=regulator_id,
                             commission_id=other.commission_id, reason="改派")
        await in_transaction(services, verification.commission_verifier, regulator_id=regulator_id,
                             project_id=other.project_id, verifier_id=verifier, experts_wanted=0)
    assert seats.value.code == "INVALID"
