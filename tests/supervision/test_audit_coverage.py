"""Every act of the regulator and of reviewers is in the audit log (art. 30-31).

LOGGED names, for each mutation only those roles may call, the audit action(s) it records. The
table must cover exactly the schema's such mutations: a new one without an entry here fails the
first test, and each action must be recorded by the code. A representative subset is then
exercised end to end (through GraphQL, and the CER registry's acts through its domain functions),
checking the entry: the actor, their role at the time, before and after, and the chain."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from accounts.models import AuditEvent
from audit_log.service import verify_chain
from core.documents import Document
from neutrality.cers import projects, verification
from neutrality.cers.models import VerifierReport
from schema.permissions import Allow
from server.graphql_schema import Mutation, schema
from tests.conftest import organisation, regulator
from tests.neutrality.fixtures import accounts, commissioned_project
from tests.neutrality.test_working_day_calendar import SCHEDULE_2027
from tests.reviews.fixtures import answer_all, expert_actors, in_transaction, library, opened_review, opinions_in

ROOT = Path(__file__).resolve().parents[2]
SUPERVISED_ROLES = frozenset({"regulator", "expert", "verifier", "neutrality_reviewer"})
DOMAIN = ("accounts", "reviews", "reductions", "neutrality", "mall", "wallets", "measures", "disclosure", "scenarios",
          "supervision")

LOGGED = {
    # accounts (art. 6, 24): the regulator's decisions on roles
    "decideRoleApplication": ("role.approved", "role.rejected"),
    "grantRole": ("role.granted",),
    "revokeRole": ("role.revoked",),
    # the expert library and reviews (art. 8, 13, 17)
    "addExpert": ("expert.added",),
    "setExpertStatus": ("expert.suspended", "expert.reinstated"),
    "declareExpertConflict": ("expert.conflict_declared",),
    "drawReviewExperts": ("review.drawn",),
    "submitReviewOpinion": ("review.answered",),
    "declineReview": ("review.declined",),
    # methodologies and exchange rules (art. 11-14, 21-22)
    "fileMethodology": ("methodology_application.filed", "methodology.published", "review.decided"),
    "refuseMethodologyApplication": ("methodology_application.refused", "review.decided"),
    "retireMethodology": ("methodology.retired",),
    "createExchangeRule": ("exchange_rule.created",),
    "publishExchangeRule": ("exchange_rule.published",),
    # the CER registry (art. 17, 32)
    "fileCerProject": ("cer_project.filed",),
    "rejectCerProject": ("cer_project.rejected",),
    "issueCers": ("cer.issued",),
    "cancelCers": ("cer.cancelled",),
    "commissionVerifier": ("verifier.commissioned",),
    "withdrawVerifierCommission": ("verifier.commission_withdrawn",),
    "submitVerificationReport": ("verification_report.submitted", "review.opened"),
    "recordFalseVerificationReport": ("verifier.sanctioned",),
    "unfreezeCerProject": ("cer_project.unfrozen",),
    "enterWorkingDaySchedule": ("working_day_schedule.entered",),
    # the yearly ETS offset scope (art. 18) and the Measures' own versions (art. 33)
    "draftEtsOffsetScope": ("ets_offset_scope.drafted",),
    "publishEtsOffsetScope": ("ets_offset_scope.published",),
    "enterMeasuresVersion": ("measures.version_entered",),
    # scenarios and their marks (art. 25-28)
    "grantScenarioMark": ("scenario.granted", "review.decided"),
    "refuseScenarioApplication": ("scenario.refused", "review.decided"),
    "suspendScenarioMark": ("scenario_mark.suspended",),
    "reinstateScenarioMark": ("scenario_mark.reinstated",),
    "withdrawScenarioMark": ("scenario_mark.withdrawn",),
    # supervision (art. 30-32): the credit record and inspections
    "recordViolation": ("violation.recorded",),
    "rescindViolation": ("violation.rescinded",),
    "recordInspection": ("inspection.recorded",),
    "addInspectionFollowUp": ("inspection_follow_up.added",),
    "completeFollowUp": ("inspection_follow_up.done",),
    # carbon neutrality (art. 19)
    "approveNeutralityApplication": ("neutrality.approved",),
    "rejectNeutralityApplication": ("neutrality.rejected",),
    "setNeutralityAutoApprovalPolicy": ("neutrality_policy.set",),
    "revokeCertificate": ("certificate.revoked",),
}


def supervised_mutations() -> set[str]:
    """The schema's mutations that only the regulator or a reviewer may call."""
    found = set()
    for field in Mutation.__strawberry_definition__.fields:
        allow = next((e for e in field.extensions if isinstance(e, Allow)), None)
        if allow is not None and not allow.anyone and allow.roles and allow.roles <= SUPERVISED_ROLES:
            found.add(schema.config.name_converter.get_graphql_name(field))
    return found


def test_every_mutation_of_the_regulator_or_a_reviewer_says_what_it_logs():
    assert supervised_mutations() == set(LOGGED)


def test_the_code_records_every_action_of_the_table():
    source = "\n".join(path.read_text(encoding="utf-8") for package in DOMAIN
                       for path in sorted((ROOT / package).rglob("*.py")))
    journal = (ROOT / "reviews" / "service.py").read_text(encoding="utf-8")
    for mutation, actions in LOGGED.items():
        for action in actions:
            noun, verb = action.split(".", 1)
            # the review's steps are journalled as f"review.{action}" (reviews/service.py _journal)
            recorded = f'"{verb}"' in journal if noun == "review" else f'"{action}"' in source
            assert recorded, f"{mutation}: nothing records {action}"


async def entries(services) -> list[AuditEvent]:
    async with services.session_factory() as session:
        return list(await session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def one(found: list[AuditEvent], action: str, actor) -> AuditEvent:
    matching = [e for e in found if e.action == action and str(e.actor_account_id) == str(actor)]
    assert matching, f"no {action} by {actor}: {[(e.action, e.actor_account_id) for e in found]}"
    return matching[-1]


async def run(api, token: str, mutation: str, payload: str, variables: dict) -> dict:
    body = await api.data(mutation, {"input": variables}, token=token)
    answer = body[payload]
    assert answer["errors"] == [], answer
    return answer


async def test_acts_through_the_api_leave_their_entries(api, services, clock):
    reg = await regulator(api)
    panel = await expert_actors(api, reg, 4)  # addExpert, four times
    org = await organisation(api, "某检测有限公司")
    suspended = panel[3]
    await run(api, reg.token, """mutation($input: SetExpertStatusInput!) {
        setExpertStatus(input: $input) { errors { code } } }""", "setExpertStatus",
              {"expertId": suspended.expert_id, "active": False, "reason": "利益冲突核查中"})
    await run(api, reg.token, """mutation($input: SetExpertStatusInput!) {
        setExpertStatus(input: $input) { errors { code } } }""", "setExpertStatus",
              {"expertId": suspended.expert_id, "active": True, "reason": "核查完毕"})
    await run(api, reg.token, """mutation($input: DeclareExpertConflictInput!) {
        declareExpertConflict(input: $input) { errors { code } } }""", "declareExpertConflict",
              {"expertId": panel[0].expert_id, "organisationId": org.account_id, "note": "兼职顾问"})
    rule = await run(api, reg.token, """mutation($input: CreateExchangeRuleInput!) {
        createExchangeRule(input: $input) { rule { id } errors { code } } }""", "createExchangeRule",
                     {"points": 1, "reductionMg": 10_000, "dailyCapPoints": 500, "acceptanceWindowDays": 7,
                      "effectiveFrom": (clock.now() + timedelta(days=1)).isoformat()})
    await run(api, reg.token, """mutation($input: PublishExchangeRuleInput!) {
        publishExchangeRule(input: $input) { errors { code } } }""", "publishExchangeRule", {"id": rule["rule"]["id"]})
    await run(api, reg.token, """mutation($input: SetNeutralityAutoApprovalPolicyInput!) {
        setNeutralityAutoApprovalPolicy(input: $input) { errors { code } } }""", "setNeutralityAutoApprovalPolicy",
              {"maxTonnes": 100, "idempotencyKey": "policy-1"})
    await run(api, reg.token, """mutation($input: EnterWorkingDayScheduleInput!) {
        enterWorkingDaySchedule(input: $input) { errors { code } } }""", "enterWorkingDaySchedule",
              {**SCHEDULE_2027, "idempotencyKey": "calendar-2027"})
    # a review of three seats: drawn, two opinions, one declination and its replacement draw
    review_id = await opened_review(services, seats=3)
    await opinions_in(api, reg, str(review_id), [])  # drawReviewExperts; the opinions follow one by one
    found = await entries(services)
    seated = {e for e in one(found, "review.drawn", reg.account_id).details["chosen"]}
    members = [m for m in panel if m.expert_id in seated]
    for member in members[:2]:
        await run(api, member.actor.token, """mutation($input: SubmitReviewOpinionInput!) {
            submitReviewOpinion(input: $input) { errors { code } } }""", "submitReviewOpinion",
                  {"reviewId": str(review_id), "opinion": "PASS", "text": "数据一致"})
    decliner = members[2]
    await run(api, decliner.actor.token, """mutation($input: DeclineReviewInput!) {
        declineReview(input: $input) { errors { code } } }""", "declineReview",
              {"reviewId": str(review_id), "reason": "曾为申请方提供咨询"})

    found = await entries(services)
    added = one(found, "expert.added", reg.account_id)
    assert added.actor_roles == ["regulator"] and added.after["status"] == "active" and added.before is None
    assert [(e.before, e.after) for e in found if e.action in ("expert.suspended", "expert.reinstated")] == [
        ({"status": "active"}, {"status": "suspended"}), ({"status": "suspended"}, {"status": "active"})]
    assert one(found, "expert.conflict_declared", reg.account_id).after == {
        "conflict_organisation_id": org.account_id}
    created = one(found, "exchange_rule.created", reg.account_id)
    published = one(found, "exchange_rule.published", reg.account_id)
    assert (created.after["status"], published.before["status"], published.after["status"]) == (
        "draft", "draft", "published")
    assert one(found, "neutrality_policy.set", reg.account_id).after == {"version": 1, "max_tonnes": 100}
    assert one(found, "working_day_schedule.entered", reg.account_id).after["year"] == 2027
    answered = [e for e in found if e.action == "review.answered"]
    assert {str(e.actor_account_id) for e in answered} == {m.actor.account_id for m in members[:2]}
    assert all(e.actor_roles == ["expert", "individual"] and e.after == {"seat": "answered", "opinion": "pass"}
               for e in answered)
    declined = one(found, "review.declined", decliner.actor.account_id)
    assert (declined.before, declined.after) == ({"seat": "seated"}, {"seat": "declined"})
    replacement = one(found, "review.drawn", decliner.actor.account_id)
    assert replacement.details["replacement"] is True and replacement.after["draws_done"] == 2
    # nothing personal: no name, email or phone of anyone in any entry
    text = " ".join(str((e.details, e.before, e.after)) for e in found)
    assert "专家" not in text and "@" not in text and "南方科技大学" not in text
    async with services.session_factory() as session:
        assert (await verify_chain(session=session)).intact


DOC = Document(name="核查报告.pdf", sha256="0f" * 32, byte_size=4096)


async def test_the_registrys_acts_leave_their_entries(services):
    await library(services, 3)
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    commissioned = await commissioned_project(services, experts_wanted=3)
    await in_transaction(services, verification.submit_report, verifier_id=commissioned.verifier_id,
                         commission_id=commissioned.commission_id,
                         vintages=[verification.VintageTonnes(2025, 300)], documents=[DOC])
    async with services.session_factory() as session:
        commission = await verification.get_commission(session=session, commission_id=commissioned.commission_id)
    await answer_all(services, commission.review_id)
    await in_transaction(services, projects.file_project, regulator_id=regulator_id,
                         project_id=commissioned.project_id, note="准予备案")
    async with services.session_factory() as session:
        report = await session.scalar(select(VerifierReport).where(VerifierReport.commission_id == commission.id))
    issuance = await in_transaction(services, projects.issue_cers, regulator_id=regulator_id,
                                    verifier_report_id=report.id, tonnes=100)
    await in_transaction(services, projects.cancel_cers, regulator_id=regulator_id,
                         project_id=commissioned.project_id, vintage=2025, first_serial=91, last_serial=100,
                         reason="重复签发")
    await in_transaction(services, verification.record_false_report, regulator_id=regulator_id,
                         verifier_id=commissioned.verifier_id, commission_id=commission.id, reason="虚报减排量",
                         freeze_unsold=True)
    await in_transaction(services, verification.unfreeze_project, regulator_id=regulator_id,
                         project_id=commissioned.project_id, reason="复核属实部分保留")
    other = await commissioned_project(services)
    await in_transaction(services, verification.withdraw_commission, regulator_id=regulator_id,
                         commission_id=other.commission_id, reason="改派")

    found = await entries(services)
    submitted = one(found, "verification_report.submitted", commissioned.verifier_id)
    assert submitted.actor_roles == ["verifier"]
    assert submitted.after["project_status"] == "verified" and submitted.after["vintages"] == [
        {"vintage": 2025, "tonnes": 300}]
    assert one(found, "review.opened", commissioned.verifier_id).after == {"status": "open"}
    decided = one(found, "review.decided", regulator_id)
    assert (decided.before, decided.after) == ({"status": "drawn"}, {"status": "decided", "decision": "approved"})
    filed = one(found, "cer_project.filed", regulator_id)
    assert (filed.before, filed.after["status"], filed.actor_roles) == ({"status": "verified"}, "filed", ["regulator"])
    issued = one(found, "cer.issued", regulator_id)
    assert issued.subject_id == issuance.id
    assert (issued.before["issued_tonnes"], issued.after["issued_tonnes"], issued.after["tonnes"]) == (0, 100, 100)
    cancelled = one(found, "cer.cancelled", regulator_id)
    assert (cancelled.after["first_serial"], cancelled.after["last_serial"], cancelled.after["tonnes"]) == (91, 100, 10)
    sanctioned = one(found, "verifier.sanctioned", regulator_id)
    assert sanctioned.after == {"barred": True, "froze_unsold": True,
                                "frozen_projects": [commissioned.project_code]}
    assert one(found, "cer_project.unfrozen", regulator_id).after["frozen"] is False
    assert one(found, "verifier.commission_withdrawn", regulator_id).after == {"status": "withdrawn"}
    # every entry is an act on a subject, numbered without gaps, and the chain holds
    assert [e.seq for e in found] == list(range(1, len(found) + 1))
    async with services.session_factory() as session:
        assert (await verify_chain(session=session)).intact
    assert uuid.UUID(str(issued.details["verifier_report_id"])) == report.id


async def test_a_methodology_filing_leaves_its_entries(services):
    """The regulator applies for its own methodology (art. 12), the experts are drawn and opine, the
    regulator files it (a new published version) and later retires it; another is refused."""
    from reductions import filing, service as reductions
    from tests.reductions.filing_fixtures import complete_fields, seat_and_opine

    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    applied = await in_transaction(services, filing.apply, applicant_id=regulator_id, fields=complete_fields())
    await seat_and_opine(services, regulator_id, applied)
    filed, methodology = await in_transaction(services, filing.file_application, regulator_id=regulator_id,
                                              application_id=applied.id, reason="方法学合理")
    await in_transaction(services, reductions.retire_methodology, methodology_id=methodology.id,
                         regulator_id=regulator_id)
    other = await in_transaction(services, filing.apply, applicant_id=regulator_id,
                                 fields=complete_fields(code="SZ-WALK"))
    await seat_and_opine(services, regulator_id, other, verdict="fail")
    await in_transaction(services, filing.refuse_application, regulator_id=regulator_id, application_id=other.id,
                         reason="基准线依据不足")

    found = await entries(services)
    mine = [(e.action, e.subject_id) for e in found if e.actor_account_id == regulator_id]
    # in the order they were recorded, the entries of one transaction one after another
    assert mine == [
        ("review.opened", applied.review_id), ("methodology_application.submitted", applied.id),
        ("review.drawn", applied.review_id), ("review.decided", applied.review_id),
        ("methodology.published", methodology.id), ("methodology_application.filed", applied.id),
        ("methodology.retired", methodology.id),
        ("review.opened", other.review_id), ("methodology_application.submitted", other.id),
        ("review.drawn", other.review_id), ("review.decided", other.review_id),
        ("methodology_application.refused", other.id)]
    published = one(found, "methodology.published", regulator_id)
    assert {k: published.after[k] for k in ("code", "version", "status")} == {
        "code": "SZ-BIKE", "version": methodology.version, "status": "published"}
    retired = one(found, "methodology.retired", regulator_id)
    assert (retired.before["status"], retired.after["status"]) == ("published", "retired")
    assert one(found, "methodology_application.refused", regulator_id).after == {"status": "refused",
                                                                                "code": "SZ-WALK"}
    assert len([e for e in found if e.action == "review.answered"]) == 6
