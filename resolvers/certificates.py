"""Carbon neutrality: applying (organisations, individuals and project owners, art. 19), the review of
applications by the platform's neutrality reviewers, the regulator's auto-approval policy and revocation
of certificates, the holder's retirements and certificates, and the public verification of certificates
and their signing keys."""

from __future__ import annotations

import strawberry

from accounts import service as accounts
from accounts.models import ApiKeyScope as S
from accounts.models import Role as R
from core.errors import DomainError
from neutrality.cers.models import BlockState
from neutrality.retirement import certificates as certs
from neutrality.retirement import retirements, review
from neutrality.retirement.models import Certificate, CertificateRevocation, NeutralityPolicy, Retirement
from resolvers.common import parse_id
from resolvers.runner import Idempotency, run_mutation
from schema import certificates as t
from schema.context import Context
from schema.pagination import Connection
from schema.permissions import CER_HOLDERS as HOLDERS
from schema.permissions import Allow


REVIEWERS = (R.NEUTRALITY_REVIEWER, R.REGULATOR)


def _base_url(ctx: Context) -> str:
    return ctx.settings.public_base_url


async def _retirement(ctx: Context, session, retirement_id: str) -> t.CerRetirement:
    """One retirement as the API shows it: with its certificate and the policy version that approved it."""
    row = await session.get(Retirement, parse_id(retirement_id))
    found = await certs.certificates_for_retirements(session=session, retirement_ids=[row.id])
    versions = await review.policy_versions(session=session, policy_ids=[row.policy_id])
    return t.CerRetirement.from_row(row, found.get(row.id), _base_url(ctx), versions.get(row.policy_id))


@strawberry.type
class CertificatesQuery:
    @strawberry.field(extensions=[Allow(*HOLDERS)], description="The caller's retirements for carbon neutrality, "
                                                                "newest first, each with its certificate.")
    async def my_retirements(self, info: strawberry.Info, first: int | None = None,
                             after: str | None = None) -> Connection[t.CerRetirement]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await retirements.holder_retirements(session=session, holder_id=ctx.principal.account_id,
                                                        first=first, after=after)
            found = await certs.certificates_for_retirements(session=session,
                                                             retirement_ids=[i.node.id for i in page.items])
            versions = await review.policy_versions(session=session, policy_ids=[i.node.policy_id for i in page.items])
        return Connection.from_page(page, lambda row: t.CerRetirement.from_row(row, found.get(row.id), _base_url(ctx),
                                                                               versions.get(row.policy_id)))

    @strawberry.field(extensions=[Allow(*REVIEWERS)],
                      description="Neutrality applications waiting for review (art. 19), oldest first, with the "
                                  "applicant and the exact serials held for each.")
    async def neutrality_review_queue(self, info: strawberry.Info, first: int | None = None,
                                      after: str | None = None) -> Connection[t.NeutralityApplication]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await review.review_queue(session=session, first=first, after=after)
            rows = [i.node for i in page.items]
            names = await accounts.account_names(session=session, ids=[r.holder_id for r in rows])
            held = await certs.live_ranges(session=session, retirement_ids=[r.id for r in rows],
                                           state=BlockState.IN_REVIEW)
        return Connection.from_page(page, lambda row: t.NeutralityApplication(
            retirement=t.CerRetirement.from_row(row, None, _base_url(ctx)), applicant_name=names.get(row.holder_id, ""),
            held_serials=[r.label for r in held.get(row.id, [])]))

    @strawberry.field(extensions=[Allow(*REVIEWERS)],
                      description="The auto-approval policy in force; null if the regulator never set one.")
    async def neutrality_auto_approval_policy(self, info: strawberry.Info) -> t.NeutralityAutoApprovalPolicy | None:
        ctx: Context = info.context
        async with ctx.reading() as session:
            row = await review.current_policy(session=session)
        return t.NeutralityAutoApprovalPolicy.from_row(row) if row else None

    @strawberry.field(extensions=[Allow(*HOLDERS)], description="The caller's carbon-neutral certificates, newest first.")
    async def my_certificates(self, info: strawberry.Info, first: int | None = None,
                              after: str | None = None) -> Connection[t.CarbonNeutralCertificate]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await certs.holder_certificates(session=session, holder_id=ctx.principal.account_id, first=first,
                                                   after=after)
        return Connection.from_page(page, lambda row: t.CarbonNeutralCertificate.from_row(row, _base_url(ctx)))

    @strawberry.field(extensions=[Allow(*HOLDERS)],
                      description="One of the caller's certificates by number, with its PDF download address.")
    async def certificate(self, info: strawberry.Info, number: str) -> t.CarbonNeutralCertificate | None:
        ctx: Context = info.context
        try:
            async with ctx.reading() as session:
                row = await certs.holder_certificate(session=session, holder_id=ctx.principal.account_id,
                                                     number=number)
        except DomainError:
            return None
        return t.CarbonNeutralCertificate.from_row(row, _base_url(ctx))

    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="Verify a carbon-neutral certificate by its number (SZCN-...) or verification code, "
                                  "without signing in. null: no certificate has that number or code.")
    async def verify_certificate(self, info: strawberry.Info, number_or_code: str) -> t.CertificateVerification | None:
        ctx: Context = info.context
        try:
            async with ctx.reading() as session:
                result = await certs.verify_certificate(session=session, number_or_code=number_or_code)
        except DomainError:
            return None
        return t.CertificateVerification.from_result(result, _base_url(ctx))

    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="Every public key that signs or signed certificates, oldest first; rotated-out "
                                  "keys stay listed so old certificates still verify.")
    async def certificate_signing_keys(self, info: strawberry.Info) -> list[t.CertificateSigningKey]:
        ctx: Context = info.context
        signer = certs.signer_from_settings(ctx.settings)
        async with ctx.reading() as session:
            rows = await certs.signing_keys(session=session)
        keys = [t.CertificateSigningKey.from_key(r.public_key, first_used_at=r.first_used_at, retired_at=r.retired_at,
                                                 current=r.key_id == signer.key_id) for r in rows]
        if all(r.key_id != signer.key_id for r in rows):
            keys.append(t.CertificateSigningKey.from_key(signer.public_key, first_used_at=None, retired_at=None,
                                                         current=True))
        return keys


@strawberry.type
class CertificatesMutation:
    @strawberry.mutation(extensions=[Allow(*HOLDERS, scope=S.RETIRE_CERS)],
                         description="Apply for carbon neutrality (自愿实施碳中和, art. 19): hold at least the footprint "
                                     "rounded up to whole tonnes from your held CERs (not those on offer) for a public "
                                     "beneficiary, pending review; a reviewer's approval retires them and issues the "
                                     "signed certificate (at once if the auto-approval policy covers it). Retry with "
                                     "the same idempotencyKey to get the same result.")
    async def apply_for_neutrality(self, info: strawberry.Info,
                                   input: t.ApplyForNeutralityInput) -> t.ApplyForNeutralityPayload:
        ctx: Context = info.context

        signer = certs.signer_from_settings(ctx.settings)
        serials = (input.serial_range.first, input.serial_range.last) if input.serial_range else None

        def project_id():
            return parse_id(input.project_id, "projectId") if input.project_id else None

        async def retire(session) -> dict:
            outcome = await retirements.apply_for_neutrality(
                session=session, clock=ctx.clock, signer=signer, public_base_url=_base_url(ctx),
                holder_id=ctx.principal.account_id, beneficiary_name=input.beneficiary_name,
                subject_kind=input.subject_kind.value, subject=input.subject, footprint_kg=input.footprint_kg,
                period_start=input.period_start, period_end=input.period_end, tonnes=input.tonnes,
                project_id=project_id(), vintage=input.vintage, serials=serials)
            return {"retirement_id": str(outcome.retirement.id)}

        async def answer(session, result: dict) -> t.ApplyForNeutralityPayload:
            retirement = await _retirement(ctx, session, result["retirement_id"])
            return t.ApplyForNeutralityPayload(retirement=retirement, certificate=retirement.certificate)

        def idempotency() -> Idempotency:
            project = project_id()
            return Idempotency("applyForNeutrality", input.idempotency_key, {
                "beneficiaryName": input.beneficiary_name, "subjectKind": input.subject_kind.value,
                "subject": input.subject, "footprintKg": input.footprint_kg,
                "periodStart": input.period_start.isoformat(), "periodEnd": input.period_end.isoformat(),
                "tonnes": input.tonnes, "projectId": str(project) if project else None,
                "vintage": input.vintage, "serialRange": list(serials) if serials else None})

        return await run_mutation(ctx, t.ApplyForNeutralityPayload, retire, answer=answer, idempotency=idempotency)

    @strawberry.mutation(extensions=[Allow(R.NEUTRALITY_REVIEWER)],
                         description="Approve a pending neutrality application (art. 19, 经审核后予以注销): its held "
                                     "serials are retired and the signed certificate issued, in one transaction. Retry "
                                     "with the same idempotencyKey to get the same result.")
    async def approve_neutrality_application(self, info: strawberry.Info, input: t.ApproveNeutralityApplicationInput
                                             ) -> t.ApproveNeutralityApplicationPayload:
        ctx: Context = info.context
        signer = certs.signer_from_settings(ctx.settings)

        async def approve(session) -> dict:
            approved = await review.approve(session=session, clock=ctx.clock, signer=signer,
                                            public_base_url=_base_url(ctx), reviewer_id=ctx.principal.account_id,
                                            retirement_id=parse_id(input.retirement_id, "retirementId"))
            return {"retirement_id": str(approved.retirement.id)}

        async def answer(session, result: dict) -> t.ApproveNeutralityApplicationPayload:
            retirement = await _retirement(ctx, session, result["retirement_id"])
            return t.ApproveNeutralityApplicationPayload(retirement=retirement, certificate=retirement.certificate)

        return await run_mutation(ctx, t.ApproveNeutralityApplicationPayload, approve, answer=answer,
                                  idempotency=Idempotency("approveNeutralityApplication", input.idempotency_key,
                                                          {"retirementId": str(input.retirement_id)}))

    @strawberry.mutation(extensions=[Allow(R.NEUTRALITY_REVIEWER)],
                         description="Reject a pending neutrality application with a reason: its held serials go back "
                                     "to the applicant's account, the very same ones. Retry with the same "
                                     "idempotencyKey to get the same result.")
    async def reject_neutrality_application(self, info: strawberry.Info, input: t.RejectNeutralityApplicationInput
                                            ) -> t.RejectNeutralityApplicationPayload:
        ctx: Context = info.context

        async def reject(session) -> dict:
            row = await review.reject(session=session, clock=ctx.clock, reviewer_id=ctx.principal.account_id,
                                      retirement_id=parse_id(input.retirement_id, "retirementId"), reason=input.reason)
            return {"retirement_id": str(row.id)}

        async def answer(session, result: dict) -> t.RejectNeutralityApplicationPayload:
            return t.RejectNeutralityApplicationPayload(retirement=await _retirement(ctx, session,
                                                                                     result["retirement_id"]))

        return await run_mutation(ctx, t.RejectNeutralityApplicationPayload, reject, answer=answer,
                                  idempotency=Idempotency("rejectNeutralityApplication", input.idempotency_key,
                                                          {"retirementId": str(input.retirement_id),
                                                           "reason": input.reason}))

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)],
                         description="Set the auto-approval policy of neutrality applications: a new version replaces "
                                     "the one in force (versions are kept); maxTonnes null switches it off.")
    async def set_neutrality_auto_approval_policy(self, info: strawberry.Info,
                                                  input: t.SetNeutralityAutoApprovalPolicyInput
                                                  ) -> t.SetNeutralityAutoApprovalPolicyPayload:
        ctx: Context = info.context

        async def set_policy(session) -> dict:
            row = await review.set_policy(session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                                          max_tonnes=input.max_tonnes, note=input.note)
            return {"policy_id": str(row.id)}

        async def answer(session, result: dict) -> t.SetNeutralityAutoApprovalPolicyPayload:
            row = await session.get(NeutralityPolicy, parse_id(result["policy_id"]))
            return t.SetNeutralityAutoApprovalPolicyPayload(policy=t.NeutralityAutoApprovalPolicy.from_row(row))

        return await run_mutation(
            ctx, t.SetNeutralityAutoApprovalPolicyPayload, set_policy, answer=answer,
            idempotency=Idempotency("setNeutralityAutoApprovalPolicy", input.idempotency_key,
                                    {"maxTonnes": input.max_tonnes, "note": input.note}))

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)],
                         description="Revoke a certificate with a reason (e.g. fraud): public verification then says "
                                     "REVOKED and why; the signed certificate stays as issued and its tonnes stay "
                                     "retired. Retry with the same idempotencyKey to get the same result.")
    async def revoke_certificate(self, info: strawberry.Info,
                                 input: t.RevokeCertificateInput) -> t.RevokeCertificatePayload:
        ctx: Context = info.context

        async def revoke(session) -> dict:
            certificate, _ = await review.revoke_certificate(session=session, clock=ctx.clock,
                                                             regulator_id=ctx.principal.account_id,
                                                             number_or_code=input.number, reason=input.reason)
            return {"certificate_id": str(certificate.id)}

        async def answer(session, result: dict) -> t.RevokeCertificatePayload:
            certificate = await session.get(Certificate, parse_id(result["certificate_id"]))
            revocation = await session.get(CertificateRevocation, certificate.id)
            return t.RevokeCertificatePayload(
                certificate=t.CarbonNeutralCertificate.from_row(certificate, _base_url(ctx)),
                revocation=t.CertificateRevocation(reason=revocation.reason, revoked_at=revocation.revoked_at))

        return await run_mutation(ctx, t.RevokeCertificatePayload, revoke, answer=answer,
                                  idempotency=Idempotency("revokeCertificate", input.idempotency_key,
                                                          {"number": input.number, "reason": input.reason}))
