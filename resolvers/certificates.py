"""Carbon neutrality: applying (organisations, individuals and project owners, art. 19), the holder's
retirements and certificates, and the public verification of certificates and their signing keys."""

from __future__ import annotations

import strawberry

from accounts.models import ApiKeyScope as S
from core.errors import DomainError
from neutrality.retirement import certificates as certs
from neutrality.retirement import retirements
from neutrality.retirement.models import Certificate, Retirement
from resolvers.common import parse_id
from resolvers.runner import Idempotency, run_mutation
from schema import certificates as t
from schema.context import Context
from schema.pagination import Connection
from schema.permissions import CER_HOLDERS as HOLDERS
from schema.permissions import Allow


def _base_url(ctx: Context) -> str:
    return ctx.settings.public_base_url


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
        return Connection.from_page(page, lambda row: t.CerRetirement.from_row(row, found.get(row.id), _base_url(ctx)))

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
                         description="Apply for carbon neutrality (自愿实施碳中和): retire at least the footprint rounded "
                                     "up to whole tonnes from your held CERs (not those on offer) for a public "
                                     "beneficiary, and receive the signed certificate. Final; retry with the same "
                                     "idempotencyKey to get the same result.")
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
            return {"retirement_id": str(outcome.retirement.id), "certificate_id": str(outcome.certificate.id)}

        async def answer(session, result: dict) -> t.ApplyForNeutralityPayload:
            retirement = await session.get(Retirement, parse_id(result["retirement_id"]))
            certificate = await session.get(Certificate, parse_id(result["certificate_id"]))
            return t.ApplyForNeutralityPayload(
                retirement=t.CerRetirement.from_row(retirement, certificate, _base_url(ctx)),
                certificate=t.CarbonNeutralCertificate.from_row(certificate, _base_url(ctx)))

        def idempotency() -> Idempotency:
            project = project_id()
            return Idempotency("applyForNeutrality", input.idempotency_key, {
                "beneficiaryName": input.beneficiary_name, "subjectKind": input.subject_kind.value,
                "subject": input.subject, "footprintKg": input.footprint_kg,
                "periodStart": input.period_start.isoformat(), "periodEnd": input.period_end.isoformat(),
                "tonnes": input.tonnes, "projectId": str(project) if project else None,
                "vintage": input.vintage, "serialRange": list(serials) if serials else None})

        return await run_mutation(ctx, t.ApplyForNeutralityPayload, retire, answer=answer, idempotency=idempotency)
