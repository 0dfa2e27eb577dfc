"""Supervision (art. 30-32): violations, sanctions and credit records; the public list of sanctions
in force; inspections and their follow-ups."""

from __future__ import annotations

import strawberry

from accounts import revocation
from accounts.models import Role as R
from core.documents import Document
from core.errors import NotFound
from mall import catalog_cache
from resolvers.common import parse_id, parse_optional_id
from resolvers.runner import Idempotency, run_mutation
from schema import supervision as t
from schema.context import Context
from schema.pagination import Connection
from schema.permissions import Allow
from supervision import inspections, violations
from supervision.models import Sanction

# who may read a credit record: the regulator, and an organisation its own
RECORD_READERS = (R.REGULATOR, R.ORGANISATION, R.APP_OPERATOR, R.MERCHANT, R.VERIFIER)


def _documents(items) -> list[Document]:
    return [Document(name=d.name, sha256=d.sha256, byte_size=d.byte_size) for d in items]


def _document_request(items) -> list:
    return [[d.name, d.sha256, d.byte_size] for d in items]


async def _violation(session, ctx: Context, violation_id) -> t.Violation:
    entry = await violations.get_entry(session=session, violation_id=violation_id)
    return t.Violation.from_entry(entry, ctx.clock.now())


async def _inspection(session, inspection_id) -> t.Inspection:
    return t.Inspection.from_view(await inspections.get_inspection(session=session, inspection_id=inspection_id))


def _follow_up_ids(row) -> dict:
    return {"inspection_id": str(row.inspection_id), "follow_up_id": str(row.id)}


def _follow_up_answer(payload: type):
    """A follow-up mutation's answer: the inspection as it is now, and the follow-up in it."""
    async def answer(session, result: dict):
        inspection = await _inspection(session, parse_id(result["inspection_id"]))
        follow_up = next(f for f in inspection.follow_ups if f.id == result["follow_up_id"])
        return payload(inspection=inspection, follow_up=follow_up)

    return answer


@strawberry.type
class SupervisionQuery:
    @strawberry.field(extensions=[Allow(*RECORD_READERS)],
                      description="An organisation's credit record (信用记录, art. 31-32), newest first, rescissions "
                                  "included: any organisation's for the regulator; an organisation sees only its own "
                                  "(another's is null).")
    async def credit_record(self, info: strawberry.Info, organisation_id: strawberry.ID, first: int | None = None,
                            after: str | None = None) -> Connection[t.Violation] | None:
        ctx: Context = info.context
        wanted = parse_optional_id(organisation_id)
        if not ctx.principal.has(R.REGULATOR.value) and wanted != ctx.principal.account_id:
            return None
        now = ctx.clock.now()
        async with ctx.reading() as session:
            page = await violations.credit_record(session=session, organisation_id=wanted, first=first, after=after)
        return Connection.from_page(page, lambda entry: t.Violation.from_entry(entry, now))

    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="Sanctions in force (art. 29, 31): running suspensions and revocations, newest "
                                  "first; the organisation's name, role, article and period, nothing private.")
    async def sanctions_in_force(self, info: strawberry.Info, first: int | None = None,
                                 after: str | None = None) -> Connection[t.SanctionInForce]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await violations.sanctions_in_force(session=session, clock=ctx.clock, first=first, after=after)
        return Connection.from_page(page, t.SanctionInForce.from_row)

    @strawberry.field(extensions=[Allow(R.REGULATOR)],
                      description="Inspections (art. 30), newest first; of one organisation if named.")
    async def inspections(self, info: strawberry.Info, organisation_id: strawberry.ID | None = None,
                          first: int | None = None, after: str | None = None) -> Connection[t.Inspection]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await inspections.list_inspections(session=session, organisation_id=parse_optional_id(
                organisation_id), first=first, after=after)
            views = {v.inspection.id: t.Inspection.from_view(v)
                     for v in await inspections.views(session, [i.node for i in page.items])}
        return Connection.from_page(page, lambda row: views[row.id])

    @strawberry.field(extensions=[Allow(R.REGULATOR)], description="One inspection with its follow-ups and history.")
    async def inspection(self, info: strawberry.Info, id: strawberry.ID) -> t.Inspection | None:
        ctx: Context = info.context
        try:
            async with ctx.reading() as session:
                return await _inspection(session, parse_id(id))
        except NotFound:
            return None


@strawberry.type
class SupervisionMutation:
    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)],
                         description="Record a violation against an organisation in a role (art. 31-32), with the "
                                     "article, finding, documents and a sanction, in force at once: a suspension takes "
                                     "its listings and app mall off sale and refuses its reports or commissions until "
                                     "it ends by itself; a revocation revokes the role and archives its listings. Held "
                                     "redemptions of a suspended or revoked merchant or app mall are released to "
                                     "their lots. Audited.")
    async def record_violation(self, info: strawberry.Info, input: t.RecordViolationInput) -> t.RecordViolationPayload:
        ctx: Context = info.context

        revoked: list = []  # sign-ins a revocation ended, marked in Redis after the commit

        async def record(session) -> dict:
            recorded = await violations.record_violation(
                session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                organisation_id=parse_id(input.organisation_id, "organisationId"), role=input.role.value,
                article=input.article, finding=input.finding, documents=_documents(input.documents),
                sanction=input.sanction.value, suspended_until=input.suspended_until)
            revoked[:] = recorded.revoked_families
            return {"violation_id": str(recorded.violation.id)}

        async def answer(session, result: dict) -> t.RecordViolationPayload:
            return t.RecordViolationPayload(violation=await _violation(session, ctx, parse_id(result["violation_id"])))

        async def then(payload: t.RecordViolationPayload) -> t.RecordViolationPayload:
            v = payload.violation
            if revoked:
                await revocation.mark_families_revoked(ctx.redis, revoked, ctx.settings.access_token_ttl_seconds)
            if v.sanction == Sanction.REVOCATION:
                await revocation.forget_cached_api_keys(ctx.redis)
            whose = violations.releases(organisation_id=parse_id(v.organisation_id), role=v.role.value,
                                        sanction=v.sanction.value)
            if whose is not None and v.in_force:
                await catalog_cache.invalidate(ctx.redis)
                payload.released_redemptions = await violations.release_held_redemptions(
                    session_factory=ctx.services.session_factory, clock=ctx.clock, whose=whose,
                    until=v.suspended_until)
            return payload

        def idempotency() -> Idempotency:
            return Idempotency("recordViolation", input.idempotency_key, {
                "organisationId": str(parse_id(input.organisation_id, "organisationId")), "role": input.role.value,
                "article": input.article, "finding": input.finding, "documents": _document_request(input.documents),
                "sanction": input.sanction.value,
                "suspendedUntil": input.suspended_until.isoformat() if input.suspended_until else None})

        return await run_mutation(ctx, t.RecordViolationPayload, record, answer=answer, then=then,
                                  idempotency=idempotency)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)],
                         description="Rescind a violation recorded in error, with a reason (a new entry; the "
                                     "violation stays in the record). A rescinded suspension ends at once; a revoked "
                                     "role stays revoked (the organisation applies again). Audited.")
    async def rescind_violation(self, info: strawberry.Info,
                                input: t.RescindViolationInput) -> t.RescindViolationPayload:
        ctx: Context = info.context

        async def rescind(session) -> dict:
            row = await violations.rescind_violation(
                session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                violation_id=parse_id(input.violation_id, "violationId"), reason=input.reason)
            return {"violation_id": str(row.violation_id)}

        async def answer(session, result: dict) -> t.RescindViolationPayload:
            return t.RescindViolationPayload(violation=await _violation(session, ctx, parse_id(result["violation_id"])))

        async def then(payload: t.RescindViolationPayload) -> t.RescindViolationPayload:
            await catalog_cache.invalidate(ctx.redis)  # listings may be back on sale
            return payload

        def idempotency() -> Idempotency:
            return Idempotency("rescindViolation", input.idempotency_key, {
                "violationId": str(parse_id(input.violation_id, "violationId")), "reason": input.reason})

        return await run_mutation(ctx, t.RescindViolationPayload, rescind, answer=answer, then=then,
                                  idempotency=idempotency)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)],
                         description="Record an inspection of the platform, or of one organisation (art. 30): date, "
                                     "scope, findings and documents. Audited.")
    async def record_inspection(self, info: strawberry.Info,
                                input: t.RecordInspectionInput) -> t.RecordInspectionPayload:
        ctx: Context = info.context
        organisation = input.organisation_id

        async def record(session) -> dict:
            row = await inspections.record_inspection(
                session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                organisation_id=parse_id(organisation, "organisationId") if organisation else None,
                inspected_on=input.inspected_on, scope=input.scope, findings=input.findings,
                documents=_documents(input.documents))
            return {"inspection_id": str(row.id)}

        async def answer(session, result: dict) -> t.RecordInspectionPayload:
            return t.RecordInspectionPayload(inspection=await _inspection(session, parse_id(result["inspection_id"])))

        def idempotency() -> Idempotency:
            return Idempotency("recordInspection", input.idempotency_key, {
                "organisationId": str(organisation) if organisation else None,
                "inspectedOn": input.inspected_on.isoformat(), "scope": input.scope, "findings": input.findings,
                "documents": _document_request(input.documents)})

        return await run_mutation(ctx, t.RecordInspectionPayload, record, answer=answer, idempotency=idempotency)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)],
                         description="Add a follow-up to an inspection, due by a date. Audited.")
    async def add_inspection_follow_up(self, info: strawberry.Info, input: t.AddInspectionFollowUpInput
                                       ) -> t.AddInspectionFollowUpPayload:
        ctx: Context = info.context

        async def add(session) -> dict:
            row = await inspections.add_follow_up(
                session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                inspection_id=parse_id(input.inspection_id, "inspectionId"), action=input.action, due_on=input.due_on)
            return _follow_up_ids(row)

        def idempotency() -> Idempotency:
            return Idempotency("addInspectionFollowUp", input.idempotency_key, {
                "inspectionId": str(parse_id(input.inspection_id, "inspectionId")), "action": input.action,
                "dueOn": input.due_on.isoformat()})

        return await run_mutation(ctx, t.AddInspectionFollowUpPayload, add,
                                  answer=_follow_up_answer(t.AddInspectionFollowUpPayload), idempotency=idempotency)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)],
                         description="Mark a follow-up done, with a note of what was done. Audited.")
    async def complete_follow_up(self, info: strawberry.Info,
                                 input: t.CompleteFollowUpInput) -> t.CompleteFollowUpPayload:
        ctx: Context = info.context

        async def complete(session) -> dict:
            row = await inspections.complete_follow_up(
                session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                follow_up_id=parse_id(input.follow_up_id, "followUpId"), note=input.note)
            return _follow_up_ids(row)

        def idempotency() -> Idempotency:
            return Idempotency("completeFollowUp", input.idempotency_key, {
                "followUpId": str(parse_id(input.follow_up_id, "followUpId")), "note": input.note})

        return await run_mutation(ctx, t.CompleteFollowUpPayload, complete,
                                  answer=_follow_up_answer(t.CompleteFollowUpPayload), idempotency=idempotency)
