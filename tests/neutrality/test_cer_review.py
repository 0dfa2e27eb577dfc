"""The review of neutrality applications (art. 19, 经审核后予以注销): an application holds its tonnes
IN_REVIEW; a reviewer approves (retired and certified in one transaction) or rejects with a reason (the
same serials back to HELD); the regulator's versioned auto-approval policy; revocable certificates;
every refusal, idempotency, roles, and a race of two reviewers on real parallel connections."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select, update

from accounts.models import Account, AuditEvent
from core.errors import DomainError
from neutrality.cers import blocks
from neutrality.cers.models import Block, BlockState, Move
from neutrality.retirement import certificates as certs
from neutrality.retirement import review
from neutrality.retirement.certificates import Signer
from neutrality.retirement.models import Certificate, NeutralityPolicy, Retirement
from tests.conftest import organisation, person, regulator, sign_in
from tests.neutrality.certificate_fixtures import (
    APPLY,
    APPROVE,
    BASE_URL,
    GRANT,
    POLICY,
    QUEUE,
    REJECT,
    REVOKE,
    VERIFY,
    application,
    apply,
    approve,
    approve_through_api,
    auto_approve,
    holding,
    retire,
    reviewer,
    reviewer_actor,
)
from tests.neutrality.fixtures import accounts

SIGNER = Signer.generate()


async def _live(services, holder_id, state: BlockState) -> list[tuple[int, int]]:
    """The holder's live serial ranges in one state, touching blocks read as one range."""
    async with services.session_factory() as session:
        rows = await session.execute(select(Block.first_serial, Block.last_serial).where(
            Block.holder_id == holder_id, Block.state == state.value, Block.ended_at.is_(None)
        ).order_by(Block.first_serial))
    ranges: list[tuple[int, int]] = []
    for first, last in rows:
        if ranges and ranges[-1][1] + 1 == first:
            ranges[-1] = (ranges[-1][0], last)
        else:
            ranges.append((first, last))
    return ranges


async def _audit(services) -> list[blocks.StateTotals]:
    """issued = held + reserved + in_review + retired + cancelled, and no serial in two places (the CER audit's
    check; the fixtures issue blocks without issuance records, so the audit's comparison with them is left out)."""
    async with services.session_factory() as session:
        totals = await blocks.state_totals(session=session)
        assert await blocks.overlapping_live_blocks(session=session) == 0
    assert totals and all(t.balanced for t in totals), totals
    return totals


async def _in_tx(services, fn, **kw):
    async with services.session_factory() as session, session.begin():
        return await fn(session=session, clock=services.clock, **kw)


async def _count(services, model, *where) -> int:
    async with services.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


# --- the domain ----------------------------------------------------------------------------------


async def test_an_application_holds_the_exact_serials_for_review_and_counts_in_conservation(services):
    [holder] = await accounts(services, 1)
    await holding(services, holder, 100)
    applied = await apply(services, SIGNER, holder, footprint_kg=12_345)
    assert applied.certificate is None and applied.retirement.status == "pending_review"
    assert applied.retirement.retired_at is None and applied.retirement.decided_at is None
    assert [(r.first, r.last) for r in applied.ranges] == [(1, 13)]
    assert await _live(services, holder, BlockState.IN_REVIEW) == [(1, 13)]
    assert await _live(services, holder, BlockState.HELD) == [(14, 100)]
    assert await _live(services, holder, BlockState.RETIRED) == []
    assert await _count(services, Certificate) == 0
    [line] = await _audit(services)
    assert (line.issued, line.held, line.in_review, line.retired) == (100, 87, 13, 0)
    # held tonnes are not free: a second application cannot take them
    with pytest.raises(blocks.InsufficientTonnes):
        await apply(services, SIGNER, holder, footprint_kg=88_000)


async def test_approval_retires_the_same_serials_and_issues_a_verifiable_certificate(services):
    [holder] = await accounts(services, 1)
    await holding(services, holder, 30)
    applied = await apply(services, SIGNER, holder, footprint_kg=12_345)
    checker = await reviewer(services)
    services.clock.advance(minutes=5)
    approved = await approve(services, SIGNER, applied.retirement.id, checker)
    assert approved.retirement.status == "approved" and approved.retirement.decided_by == checker
    assert approved.retirement.retired_at == approved.retirement.decided_at == services.clock.now()
    assert approved.retirement.policy_id is None
    assert [(r.first, r.last) for r in approved.ranges] == [(r.first, r.last) for r in applied.ranges] == [(1, 13)]
    assert await _live(services, holder, BlockState.RETIRED) == [(1, 13)]
    assert await _live(services, holder, BlockState.IN_REVIEW) == []
    async with services.session_factory() as session:
        checked = await certs.verify_certificate(session=session, number_or_code=approved.certificate.number)
        actions = (await session.scalars(select(AuditEvent.action).where(
            AuditEvent.subject_id == applied.retirement.id))).all()
    assert checked.valid and checked.revocation is None and checked.live_serials == [approved.ranges[0].label]
    assert actions == ["neutrality.approved"]
    [line] = await _audit(services)
    assert (line.held, line.in_review, line.retired) == (17, 0, 13)

    # decided once
    for decide in (lambda: approve(services, SIGNER, applied.retirement.id, checker),
                   lambda: _in_tx(services, review.reject, reviewer_id=checker, retirement_id=applied.retirement.id,
                                  reason="late")):
        with pytest.raises(DomainError) as refused:
            await decide()
        assert refused.value.code == "NOT_PENDING_REVIEW"
    assert await _count(services, Certificate) == 1


async def test_rejection_needs_a_reason_and_releases_the_very_same_serials(services):
    [holder] = await accounts(services, 1)
    await holding(services, holder, 40)
    # serials 1..5 are retired first, so the application takes 6..18 and the rest stays 19..40
    await retire(services, SIGNER, holder, footprint_kg=5_000)
    applied = await apply(services, SIGNER, holder, footprint_kg=12_345)
    assert await _live(services, holder, BlockState.IN_REVIEW) == [(6, 18)]
    checker = await reviewer(services)
    for reason in ("", "   ", None, "x" * 2001):
        with pytest.raises(DomainError) as refused:
            await _in_tx(services, review.reject, reviewer_id=checker, retirement_id=applied.retirement.id,
                         reason=reason)
        assert refused.value.code == "REASON_REQUIRED" and refused.value.field == "reason"
    rejected = await _in_tx(services, review.reject, reviewer_id=checker, retirement_id=applied.retirement.id,
                            reason="受益方与申请人无关联")
    assert rejected.status == "rejected" and rejected.decision_reason == "受益方与申请人无关联"
    assert rejected.decided_by == checker and rejected.retired_at is None
    # the same serials, the same holder, HELD again (the journal says so too)
    assert await _live(services, holder, BlockState.HELD) == [(6, 40)]
    async with services.session_factory() as session:
        held = (await session.execute(select(Block.first_serial, Block.last_serial).where(
            Block.holder_id == holder, Block.state == "held", Block.ended_at.is_(None)).order_by(Block.first_serial))).all()
    assert [tuple(r) for r in held] == [(6, 18), (19, 40)]  # the released block is exactly the one held
    assert await _live(services, holder, BlockState.IN_REVIEW) == []
    async with services.session_factory() as session:
        released = (await session.scalars(select(Move).where(Move.reference_id == applied.retirement.id)
                                          .order_by(Move.seq))).all()
    assert [(m.kind, m.from_state, m.to_state, m.first_serial, m.last_serial, m.to_holder_id) for m in released] == [
        ("review", "held", "in_review", 6, 18, holder), ("release", "in_review", "held", 6, 18, holder)]
    assert await _count(services, Certificate) == 1
    with pytest.raises(DomainError) as refused:
        await approve(services, SIGNER, applied.retirement.id, checker)
    assert refused.value.code == "NOT_PENDING_REVIEW"
    # the released tonnes are free again
    again = await apply(services, SIGNER, holder, footprint_kg=35_000)
    assert [(r.first, r.last) for r in certs.merge_ranges(again.ranges)] == [(6, 40)]
    await _audit(services)


async def test_a_reviewer_does_not_decide_their_own_application(services):
    [own] = await accounts(services, 1, role="neutrality_reviewer", kind="person")
    await holding(services, own, 10)
    applied = await apply(services, SIGNER, own, footprint_kg=1_000)
    with pytest.raises(DomainError) as refused:
        await approve(services, SIGNER, applied.retirement.id, own)
    assert refused.value.code == "OWN_APPLICATION"
    with pytest.raises(DomainError):
        await approve(services, SIGNER, uuid.uuid4(), own)


async def test_the_auto_approval_policy_covers_small_applications_of_organisations_in_good_standing(services):
    [org, suspended, big] = await accounts(services, 3)
    [individual] = await accounts(services, 1, role="individual", kind="person")
    for holder in (org, suspended, big, individual):
        await holding(services, holder, 50)
    async with services.session_factory() as session, session.begin():
        await session.execute(update(Account).where(Account.id == suspended).values(suspended_at=services.clock.now()))
    first = await auto_approve(services, max_tonnes=10)
    assert first.version == 1

    covered = await apply(services, SIGNER, org, footprint_kg=9_500)  # 10 t: covered
    assert covered.retirement.status == "approved" and covered.retirement.policy_id == first.id
    assert covered.retirement.decided_by is None and covered.certificate is not None
    assert [(r.first, r.last) for r in covered.ranges] == [(1, 10)]
    assert await _live(services, org, BlockState.RETIRED) == [(1, 10)]
    async with services.session_factory() as session:
        journal = (await session.scalars(select(Move).where(Move.reference_id == covered.retirement.id)
                                         .order_by(Move.seq))).all()
    # approved by the policy in the transaction that applied: one move, never held in review
    assert [(m.kind, m.from_state, m.to_state, m.first_serial, m.last_serial) for m in journal] == [
        ("retire", "held", "retired", 1, 10)]
    for holder, footprint in ((big, 10_001), (suspended, 1_000), (individual, 1_000)):  # too big; not in good standing
        outcome = await apply(services, SIGNER, holder, footprint_kg=footprint)
        assert outcome.retirement.status == "pending_review" and outcome.certificate is None, holder

    # a revoked certificate ends good standing
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    await _in_tx(services, review.revoke_certificate, regulator_id=regulator_id,
                 number_or_code=covered.certificate.number, reason="虚假")
    assert (await apply(services, SIGNER, org, footprint_kg=1_000)).retirement.status == "pending_review"

    # a new version replaces the old; switched off, everything is reviewed; versions are kept
    [other] = await accounts(services, 1)
    await holding(services, other, 20)
    second = await auto_approve(services, max_tonnes=2)
    approved = await apply(services, SIGNER, other, footprint_kg=2_000)
    assert approved.retirement.policy_id == second.id and second.version == 2
    off = await auto_approve(services, max_tonnes=None)
    assert off.version == 3 and off.max_tonnes is None
    assert (await apply(services, SIGNER, other, footprint_kg=1_000)).retirement.status == "pending_review"
    assert await _count(services, NeutralityPolicy) == 3
    for bad in (0, -1, 10_000_001, True):
        with pytest.raises(DomainError) as refused:
            await auto_approve(services, max_tonnes=bad)
        assert refused.value.code == "INVALID_POLICY"
    await _audit(services)


async def test_a_revoked_certificate_verifies_as_revoked_with_its_reason_and_unchanged_bytes(api, services):
    [holder] = await accounts(services, 1)
    await holding(services, holder, 20)
    outcome = await retire(services, SIGNER, holder, footprint_kg=3_000)
    before = await api.data(VERIFY, {"v": outcome.certificate.number})
    assert before["verifyCertificate"]["valid"] is True
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    for reason in ("", "  "):
        with pytest.raises(DomainError) as refused:
            await _in_tx(services, review.revoke_certificate, regulator_id=regulator_id,
                         number_or_code=outcome.certificate.number, reason=reason)
        assert refused.value.code == "REASON_REQUIRED"
    services.clock.advance(days=3)
    await _in_tx(services, review.revoke_certificate, regulator_id=regulator_id,
                 number_or_code=outcome.certificate.verification_code, reason="项目核查报告造假 (fraud)")
    with pytest.raises(DomainError) as refused:
        await _in_tx(services, review.revoke_certificate, regulator_id=regulator_id,
                     number_or_code=outcome.certificate.number, reason="again")
    assert refused.value.code == "CERTIFICATE_ALREADY_REVOKED"

    query = """query($v: String!) { verifyCertificate(numberOrCode: $v) {
      status valid signatureValid serialsMatch revocation { reason revokedAt }
      certificate { canonicalJson signature } } }"""
    after = (await api.data(query, {"v": outcome.certificate.number}))["verifyCertificate"]
    assert after["status"] == "REVOKED" and after["valid"] is False
    assert after["signatureValid"] is True and after["serialsMatch"] is True
    assert after["revocation"]["reason"] == "项目核查报告造假 (fraud)"
    assert after["revocation"]["revokedAt"].startswith(services.clock.now().isoformat()[:16])
    assert after["certificate"]["canonicalJson"] == before["verifyCertificate"]["certificate"]["canonicalJson"]
    assert after["certificate"]["signature"] == before["verifyCertificate"]["certificate"]["signature"]
    async with services.session_factory() as session:
        row = await session.get(Certificate, outcome.certificate.id)
    assert (row.canonical, row.signature) == (outcome.certificate.canonical, outcome.certificate.signature)
    # the PDF is rendered from the signed document alone, so it reads as issued
    pdf = await api.client.get(f"/certificates/{outcome.certificate.verification_code}.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    plain = (await api.client.get(f"/certificates/{outcome.certificate.number}")).json()
    assert plain["status"] == "REVOKED" and plain["revocation"]["reason"] == "项目核查报告造假 (fraud)"
    page = (await api.client.get(f"/certificates/{outcome.certificate.number}", headers={"accept": "text/html"})).text
    assert "已撤销 REVOKED" in page and "项目核查报告造假" in page
    # the tonnes stay retired
    assert await _live(services, holder, BlockState.RETIRED) == [(1, 3)]


# --- through the API -----------------------------------------------------------------------------


async def test_roles_only_reviewers_decide_only_the_regulator_grants_sets_policy_and_revokes(api, services):
    org = await organisation(api)
    await holding(services, uuid.UUID(org.account_id), 30)
    reg = await regulator(api)
    checker = await reviewer_actor(api, reg)
    applied = (await api.data(APPLY, {"input": application()}, token=org.token))["applyForNeutrality"]
    retirement_id = applied["retirement"]["id"]
    assert applied["retirement"]["status"] == "PENDING_REVIEW" and applied["certificate"] is None

    decide = {"retirementId": retirement_id, "idempotencyKey": "k"}
    for token in (org.token, reg.token):
        refused = (await api.data(APPROVE, {"input": decide}, token=token))["approveNeutralityApplication"]
        assert [e["code"] for e in refused["errors"]] == ["FORBIDDEN"]
        refused = (await api.data(REJECT, {"input": {**decide, "reason": "no"}}, token=token))[
            "rejectNeutralityApplication"]
        assert [e["code"] for e in refused["errors"]] == ["FORBIDDEN"]
    assert (await api.gql(QUEUE, {"first": 5}, token=org.token))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    for token in (org.token, checker.token):
        refused = (await api.data(POLICY, {"input": {"maxTonnes": 5, "idempotencyKey": "p-1"}},
                                  token=token))["setNeutralityAutoApprovalPolicy"]
        assert [e["code"] for e in refused["errors"]] == ["FORBIDDEN"]
        refused = (await api.data(REVOKE, {"input": {"number": "SZCN-2026-000001", "reason": "x",
                                                     "idempotencyKey": "k"}}, token=token))["revokeCertificate"]
        assert [e["code"] for e in refused["errors"]] == ["FORBIDDEN"]
        refused = (await api.data(GRANT, {"input": {"accountId": org.account_id, "role": "NEUTRALITY_REVIEWER"}},
                                  token=token))["grantRole"]
        assert [e["code"] for e in refused["errors"]] == ["FORBIDDEN"]

    # the regulator grants the role to persons only; granting it again is the same answer
    refused = (await api.data(GRANT, {"input": {"accountId": org.account_id, "role": "NEUTRALITY_REVIEWER"}},
                              token=reg.token))["grantRole"]
    assert [e["code"] for e in refused["errors"]] == ["ROLE_NOT_ALLOWED"]
    again = (await api.data(GRANT, {"input": {"accountId": checker.account_id, "role": "NEUTRALITY_REVIEWER"}},
                            token=reg.token))["grantRole"]
    assert again["errors"] == [] and again["grant"]["status"] == "ACTIVE"
    someone = await person(api)
    for role in ("MERCHANT", "EXPERT"):  # an expert is added to the library with addExpert instead
        refused = (await api.data(GRANT, {"input": {"accountId": someone.account_id, "role": role}},
                                  token=reg.token))["grantRole"]
        assert [e["code"] for e in refused["errors"]] == ["ROLE_NOT_ALLOWED"], role

    # the reviewer sees the queue and decides
    queue = (await api.data(QUEUE, {"first": 5}, token=checker.token))["neutralityReviewQueue"]["edges"]
    assert [e["node"]["retirement"]["id"] for e in queue] == [retirement_id]
    assert queue[0]["node"]["applicantName"] == "深圳绿色科技有限公司" and len(queue[0]["node"]["heldSerials"]) == 1
    no_reason = (await api.data(REJECT, {"input": {**decide, "reason": " "}}, token=checker.token))[
        "rejectNeutralityApplication"]
    assert [(e["code"], e["field"]) for e in no_reason["errors"]] == [("REASON_REQUIRED", "reason")]
    done = await approve_through_api(api, checker.token, retirement_id, key="approve-1")
    assert done["errors"] == [] and done["retirement"]["status"] == "APPROVED"
    assert done["retirement"]["certificate"]["number"] == done["certificate"]["number"]
    # the same key replays the first answer; a new key is refused, the application is decided
    assert await approve_through_api(api, checker.token, retirement_id, key="approve-1") == done
    twice = await approve_through_api(api, checker.token, retirement_id, key="approve-2")
    assert [e["code"] for e in twice["errors"]] == ["NOT_PENDING_REVIEW"] and twice["certificate"] is None
    assert (await api.data(QUEUE, {"first": 5}, token=checker.token))["neutralityReviewQueue"]["edges"] == []

    # revoking: idempotent by key; a second revocation is a typed error
    revoke = {"number": done["certificate"]["number"], "reason": "虚假申报", "idempotencyKey": "revoke-1"}
    first = (await api.data(REVOKE, {"input": revoke}, token=reg.token))["revokeCertificate"]
    assert first["errors"] == [] and first["revocation"]["reason"] == "虚假申报"
    assert (await api.data(REVOKE, {"input": revoke}, token=reg.token))["revokeCertificate"] == first
    again = (await api.data(REVOKE, {"input": {**revoke, "idempotencyKey": "revoke-2"}}, token=reg.token))[
        "revokeCertificate"]
    assert [e["code"] for e in again["errors"]] == ["CERTIFICATE_ALREADY_REVOKED"]
    verified = (await api.data(VERIFY, {"v": done["certificate"]["verificationCode"]}))["verifyCertificate"]
    assert verified["valid"] is False and verified["signatureValid"] is True

    # a withdrawn reviewer decides nothing more
    grant_id = (await api.data("query($id: ID!) { account(id: $id) { roles { id role } } }",
                               {"id": checker.account_id}, token=reg.token))["account"]["roles"]
    grant_id = next(r["id"] for r in grant_id if r["role"] == "NEUTRALITY_REVIEWER")
    revoked = await api.data("mutation($i: RevokeRoleInput!) { revokeRole(input: $i) { errors { code } } }",
                             {"i": {"applicationId": grant_id, "reason": "调岗"}}, token=reg.token)
    assert revoked["revokeRole"]["errors"] == []
    second = (await api.data(APPLY, {"input": application(footprintKg=1_000)}, token=org.token))["applyForNeutrality"]
    later = await sign_in(api, checker.login)
    refused = await approve_through_api(api, later.token, second["retirement"]["id"])
    assert [e["code"] for e in refused["errors"]] == ["FORBIDDEN"]
    await _audit(services)


async def test_rejecting_through_the_api_replays_by_key_and_the_holder_sees_why(api, services):
    org = await organisation(api)
    await holding(services, uuid.UUID(org.account_id), 20)
    checker = await reviewer_actor(api)
    applied = (await api.data(APPLY, {"input": application()}, token=org.token))["applyForNeutrality"]
    reject = {"retirementId": applied["retirement"]["id"], "reason": "材料不全", "idempotencyKey": "reject-1"}
    first = (await api.data(REJECT, {"input": reject}, token=checker.token))["rejectNeutralityApplication"]
    assert first["errors"] == [] and first["retirement"]["status"] == "REJECTED"
    assert first["retirement"]["decisionReason"] == "材料不全" and first["retirement"]["certificate"] is None
    assert (await api.data(REJECT, {"input": reject}, token=checker.token))["rejectNeutralityApplication"] == first
    reused = (await api.data(REJECT, {"input": {**reject, "reason": "另一个理由"}}, token=checker.token))[
        "rejectNeutralityApplication"]
    assert [e["code"] for e in reused["errors"]] == ["IDEMPOTENCY_KEY_REUSED"]
    mine = await api.data("{ myRetirements(first: 5) { edges { node { status decisionReason retiredAt } } } }",
                          token=org.token)
    assert mine["myRetirements"]["edges"] == [{"node": {"status": "REJECTED", "decisionReason": "材料不全",
                                                        "retiredAt": None}}]
    assert await _live(services, uuid.UUID(org.account_id), BlockState.HELD) == [(1, 20)]


# --- a race on real parallel connections ---------------------------------------------------------


@pytest.mark.parametrize("second", ["approve", "reject"])
async def test_two_reviewers_deciding_one_application_at_once_end_in_exactly_one_decision(services, second):
    [holder] = await accounts(services, 1)
    await holding(services, holder, 30)
    applied = await apply(services, SIGNER, holder, footprint_kg=12_345)
    first_reviewer, second_reviewer = await reviewer(services), await reviewer(services)

    async def decide(kind, who):
        try:
            if kind == "approve":
                await approve(services, SIGNER, applied.retirement.id, who)
            else:
                await _in_tx(services, review.reject, reviewer_id=who, retirement_id=applied.retirement.id,
                             reason="race")
            return kind
        except DomainError as refused:
            return refused.code

    for _ in range(3):  # each round on a fresh application
        results = await asyncio.gather(decide("approve", first_reviewer), decide(second, second_reviewer))
        assert sorted(results).count("NOT_PENDING_REVIEW") == 1, results
        async with services.session_factory() as session:
            row = await session.get(Retirement, applied.retirement.id)
            certificates = await session.scalar(select(func.count()).select_from(Certificate).where(
                Certificate.retirement_id == applied.retirement.id))
        winner = next(r for r in results if r != "NOT_PENDING_REVIEW")
        assert row.status == ("approved" if winner == "approve" else "rejected")
        assert certificates == (1 if winner == "approve" else 0)
        await _audit(services)
        applied = await apply(services, SIGNER, holder, footprint_kg=1_000)
    assert await _live(services, holder, BlockState.IN_REVIEW) == [(r.first, r.last) for r in applied.ranges]


# --- the migration ---------------------------------------------------------------------------------


async def test_migration_0012_makes_existing_retirements_approved(embedded):
    """A retirement made before review existed was retired at once: 0012 records it as approved, applied and
    decided when it was retired, by no one."""
    import os

    import asyncpg

    from server.migrate import downgrade, upgrade
    from tests.conftest import database_url

    name = f"mig12_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host=embedded.pg_host, user="postgres", database="postgres")
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        url = database_url(embedded, name)
        await asyncio.to_thread(upgrade, url, "0011_review_roles")
        db = await asyncpg.connect(host=embedded.pg_host, user="postgres", database=name)
        try:
            holder, retirement = uuid.uuid4(), uuid.uuid4()
            await db.execute("INSERT INTO accounts (id, kind, display_name, email, password_hash, created_at)"
                             " VALUES ($1, 'organisation', 'Org', 'o@example.org', 'x', now())", holder)
            await db.execute(
                "INSERT INTO cer_retirements (id, holder_id, beneficiary_name, subject_kind, subject, footprint_kg,"
                " tonnes, period_start, period_end, retired_at) VALUES ($1, $2, 'B', 'event', 'S', 1000, 1,"
                " '2026-01-01', '2026-01-02', '2026-02-01T08:00:00+00')", retirement, holder)
            await asyncio.to_thread(upgrade, url)
            row = await db.fetchrow("SELECT status, applied_at, decided_at, retired_at, decided_by, policy_id"
                                    " FROM cer_retirements WHERE id = $1", retirement)
            assert row["status"] == "approved" and row["decided_by"] is None and row["policy_id"] is None
            assert row["applied_at"] == row["decided_at"] == row["retired_at"]
            # a database of only pre-review retirements migrates back
            await asyncio.to_thread(downgrade, url, "0011_review_roles")
            assert await db.fetchval("SELECT count(*) FROM cer_retirements") == 1
        finally:
            await db.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
