"""Set-up for the retirement and certificate tests: holders with tonnes, applications for neutrality
and their approval by a reviewer (art. 19) through the domain functions with a given signing key, an
auto-approval policy, and the GraphQL documents they use."""

from __future__ import annotations

import uuid
from datetime import date

from neutrality.retirement import retirements, review
from neutrality.retirement.certificates import Signer
from tests.neutrality.market_fixtures import issue
from tests.neutrality.fixtures import Registry, accounts, filed_project

# the carbon-neutrality front-end contracts, walked by hash in tests/neutrality/test_cer_certificates.py
CERTIFICATE_CONTRACTS = {
    "ApplyForNeutrality", "MyCertificates", "MyRetirements", "CertificateDownload", "VerifyCertificate",
    "CertificateSigningKeys", "NeutralityReviewQueue", "ApproveNeutralityApplication", "RejectNeutralityApplication",
    "ReviewerAutoApprovalPolicy", "GrantRole", "SetNeutralityAutoApprovalPolicy", "NeutralityAutoApprovalPolicy",
    "RevokeCertificate",
}

BASE_URL = "https://verify.tanpuhui.example"

APPLY = """
mutation Apply($input: ApplyForNeutralityInput!) {
  applyForNeutrality(input: $input) {
    retirement { id status tonnes footprintKg footprintTonnes beneficiaryName subjectKind periodStart periodEnd
                 approvedByPolicyVersion certificate { number } }
    certificate { number verificationCode verificationUrl pdfUrl tonnesRetired keyId signature canonicalJson
                  serialRanges { label projectCode vintage firstSerial lastSerial quantity }
                  projects { code title vintages } }
    errors { code field message }
  }
}"""

VERIFY = """
query Verify($v: String!) {
  verifyCertificate(numberOrCode: $v) {
    valid signatureValid keyKnown serialsMatch retiredSerials
    certificate { number verificationCode beneficiaryName tonnesRetired keyId signature canonicalJson
                  serialRanges { label } }
  }
}"""

CERT_FIELDS = """number verificationCode verificationUrl pdfUrl tonnesRetired keyId signature canonicalJson
                  serialRanges { label projectCode vintage firstSerial lastSerial quantity }
                  projects { code title vintages }"""

APPROVE = """
mutation Approve($input: ApproveNeutralityApplicationInput!) {
  approveNeutralityApplication(input: $input) {
    retirement { id status retiredAt decidedAt approvedByPolicyVersion certificate { number } }
    certificate { %s }
    errors { code field message }
  }
}""" % CERT_FIELDS

REJECT = """
mutation Reject($input: RejectNeutralityApplicationInput!) {
  rejectNeutralityApplication(input: $input) {
    retirement { id status retiredAt decidedAt decisionReason certificate { number } }
    errors { code field message }
  }
}"""

QUEUE = """
query Queue($first: Int, $after: String) {
  neutralityReviewQueue(first: $first, after: $after) {
    edges { node { applicantName heldSerials retirement { id status tonnes beneficiaryName } } }
    pageInfo { hasNextPage endCursor }
  }
}"""

GRANT = """
mutation Grant($input: GrantRoleInput!) {
  grantRole(input: $input) { grant { id role status accountId } errors { code field message } }
}"""

REVOKE = """
mutation Revoke($input: RevokeCertificateInput!) {
  revokeCertificate(input: $input) {
    certificate { number signature canonicalJson } revocation { reason revokedAt }
    errors { code field message }
  }
}"""

POLICY = """
mutation Policy($input: SetNeutralityAutoApprovalPolicyInput!) {
  setNeutralityAutoApprovalPolicy(input: $input) { policy { version maxTonnes note setAt } errors { code field message } }
}"""

KEYS = "{ certificateSigningKeys { keyId algorithm publicKey publicKeyPem firstUsedAt retiredAt current } }"


def application(**overrides) -> dict:
    """An applyForNeutrality input: a forum with a 12.345 t footprint."""
    return {"beneficiaryName": "深圳湾零碳科技有限公司", "subjectKind": "EVENT", "subject": "2026 深圳低碳发展论坛",
            "footprintKg": 12_345, "periodStart": "2026-02-27", "periodEnd": "2026-02-28",
            "idempotencyKey": uuid.uuid4().hex, **overrides}


async def reviewer_actor(api, reg=None):
    """A person the regulator granted NEUTRALITY_REVIEWER, signed in afresh (the role is in the new token)."""
    from tests.conftest import person, regulator, sign_in

    someone = await person(api, "审核员 李审")
    reg = reg or await regulator(api)
    granted = (await api.data(GRANT, {"input": {"accountId": someone.account_id, "role": "NEUTRALITY_REVIEWER",
                                                "note": "平台审核岗"}}, token=reg.token))["grantRole"]
    assert granted["errors"] == [], granted
    return await sign_in(api, someone.login)


async def approve_through_api(api, token: str, retirement_id: str, key: str | None = None) -> dict:
    data = (await api.data(APPROVE, {"input": {"retirementId": retirement_id, "idempotencyKey": key or uuid.uuid4().hex}},
                           token=token))["approveNeutralityApplication"]
    return data


async def holding(services, holder_id, tonnes: int = 100, vintage: int = 2025,
                  registry: Registry | None = None) -> Registry:
    """A filed project (new unless given) with serials 1..tonnes of `vintage` issued to `holder_id`."""
    registry = registry or await filed_project(services, buyers=0)
    await issue(services, registry, holder_id, 1, tonnes, vintage)
    return registry


async def apply(services, signer: Signer, holder_id, **kw) -> retirements.Outcome:
    """An application for neutrality: its tonnes held for review (or approved at once under a policy)."""
    args = dict(beneficiary_name="深圳湾零碳科技有限公司", subject_kind="event", subject="2026 深圳低碳发展论坛",
                footprint_kg=12_345, period_start=date(2026, 2, 27), period_end=date(2026, 2, 28))
    args.update(kw)
    async with services.session_factory() as session, session.begin():
        return await retirements.apply_for_neutrality(session=session, clock=services.clock, signer=signer,
                                                      public_base_url=BASE_URL, holder_id=holder_id, **args)


async def reviewer(services):
    """A person holding the NEUTRALITY_REVIEWER role (written straight to the database)."""
    [account] = await accounts(services, 1, role="neutrality_reviewer", kind="person")
    return account


async def approve(services, signer: Signer, retirement_id, reviewer_id=None) -> review.Approved:
    reviewer_id = reviewer_id or await reviewer(services)
    async with services.session_factory() as session, session.begin():
        return await review.approve(session=session, clock=services.clock, signer=signer, public_base_url=BASE_URL,
                                    reviewer_id=reviewer_id, retirement_id=retirement_id)


async def retire(services, signer: Signer, holder_id, **kw) -> retirements.Outcome:
    """Apply, then a reviewer approves: the tonnes retired and the certificate issued (art. 19)."""
    applied = await apply(services, signer, holder_id, **kw)
    if applied.certificate is not None:  # an auto-approval policy approved it at once
        return applied
    approved = await approve(services, signer, applied.retirement.id)
    return retirements.Outcome(retirement=approved.retirement, certificate=approved.certificate,
                               ranges=approved.ranges)


async def auto_approve(services, max_tonnes: int | None = 1_000_000):
    """The regulator's auto-approval policy: organisations in good standing get up to max_tonnes at once."""
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    async with services.session_factory() as session, session.begin():
        return await review.set_policy(session=session, clock=services.clock, regulator_id=regulator_id,
                                       max_tonnes=max_tonnes)
