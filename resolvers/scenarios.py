"""Scenarios and their marks (art. 25-28): approved organisations apply, drawn experts evaluate (reviews),
the regulator grants a mark or refuses, suspends, reinstates or withdraws it; anyone lists the marked
scenarios and opens one by its mark number."""

from __future__ import annotations


import strawberry

from accounts.models import Role as R
from core.errors import NotFound
from resolvers.common import attachment_from_base64, parse_id
from resolvers.runner import Idempotency, run_mutation
from reviews import service as reviews
from scenarios import service
from scenarios.errors import ScenarioCode
from scenarios.models import District, Scenario, ScenarioKind, ScenarioStatus
from schema import scenarios as t
from schema.errors import PublicError
from schema.pagination import Connection
from schema.permissions import APPROVED_ORGANISATIONS, Allow


def _base_url(ctx) -> str:
    return ctx.settings.public_base_url


@strawberry.type
class ScenariosQuery:
    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="The data-protection pledge of art. 28 that a scenario application accepts.")
    def scenario_data_pledge(self) -> t.ScenarioDataPledge:
        return t.ScenarioDataPledge(version=service.PLEDGE_VERSION, sha256=service.PLEDGE_SHA256,
                                    text=service.PLEDGE_TEXT)

    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="Every marked scenario, newest grant first, with its mark's status (art. 27, 29).")
    async def scenarios(self, info: strawberry.Info, first: int | None = None,
                        after: str | None = None) -> Connection[t.PublicScenario]:
        ctx = info.context
        async with ctx.reading() as session:
            page = await service.public_scenarios(session=session, first=first, after=after, clock=ctx.clock)
        base_url = _base_url(ctx)
        return Connection.from_page(page, lambda p: t.PublicScenario.from_public(p, base_url))

    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="One marked scenario by its mark number (SZCS-2026-0001), or null.")
    async def scenario(self, info: strawberry.Info, mark_number: str) -> t.PublicScenario | None:
        ctx = info.context
        async with ctx.reading() as session:
            found = await service.public_scenario(session=session, clock=ctx.clock, number=mark_number)
        return t.PublicScenario.from_public(found, _base_url(ctx)) if found else None

    @strawberry.field(extensions=[Allow(*APPROVED_ORGANISATIONS)],
                      description="The caller's own scenario applications, newest first.")
    async def my_scenario_applications(self, info: strawberry.Info, first: int | None = None,
                                       after: str | None = None) -> Connection[t.ScenarioApplication]:
        ctx = info.context
        async with ctx.reading() as session:
            page = await service.list_applications(session=session, first=first, after=after,
                                                   applicant_id=ctx.principal.account_id)
            return await _applications(ctx, session, page)

    @strawberry.field(extensions=[Allow(R.REGULATOR)],
                      description="Every scenario application, newest first: the regulator's queue by status.")
    async def scenario_applications(
        self, info: strawberry.Info, status: t.ScenarioApplicationStatus | None = None, first: int | None = None,
        after: str | None = None,
    ) -> Connection[t.ScenarioApplication]:
        ctx = info.context
        async with ctx.reading() as session:
            page = await service.list_applications(session=session, first=first, after=after,
                                                   status=ScenarioStatus(status.value) if status else None)
            return await _applications(ctx, session, page)

    @strawberry.field(extensions=[Allow(signed_in=True)],
                      description="One application with its documents' bytes and its journal: its applicant, the "
                                  "regulator and the experts drawn into its review see it.")
    async def scenario_application(self, info: strawberry.Info, id: strawberry.ID) -> t.ScenarioApplication:
        ctx = info.context
        async with ctx.reading() as session:
            try:
                row = await service.get_scenario(session=session, scenario_id=parse_id(id))
            except NotFound:
                row = None
            if row is None or not await _may_read(ctx, session, row):
                raise PublicError("No such scenario application.", "NOT_FOUND")
            return await _application(ctx, session, row, with_content=True)


@strawberry.type
class ScenariosMutation:
    @strawberry.mutation(extensions=[Allow(*APPROVED_ORGANISATIONS, password_session=True)],
                         description="Apply to create a scenario (art. 27), as an organisation the regulator "
                                     "approved in a role: name, kind, address, district, the behaviours recorded "
                                     "there, the art. 28 pledge and documents. Complete, it opens a review by drawn "
                                     "scenario experts; incomplete, it is refused naming every missing item.")
    async def apply_for_scenario(self, info: strawberry.Info, input: t.ApplyForScenarioInput) -> t.ApplyForScenarioPayload:
        ctx = info.context
        decoded: list[service.ApplicationFields] = []  # once, before the transaction (the fingerprint names sha256s)

        def fields() -> service.ApplicationFields:
            if not decoded:
                decoded.append(service.ApplicationFields(
                    name=input.name, kind=ScenarioKind(input.kind.value) if input.kind else None,
                    address=input.address, district=District(input.district.value) if input.district else None,
                    methodology_codes=list(input.methodology_codes),
                    pledge_version=input.pledge.version if input.pledge else None,
                    pledge_sha256=input.pledge.sha256 if input.pledge else None,
                    documents=[_document(d, i) for i, d in enumerate(input.documents)]))
            return decoded[0]

        async def apply(session) -> dict:
            row = await service.apply(session=session, clock=ctx.clock, applicant_id=ctx.principal.account_id,
                                      fields=fields())
            return {"application_id": str(row.id)}

        async def answer(session, result: dict) -> t.ApplyForScenarioPayload:
            return t.ApplyForScenarioPayload(application=await _application_of(ctx, session, result))

        def idempotency() -> Idempotency:
            f = fields()
            request = {"name": f.name, "kind": f.kind, "address": f.address, "district": f.district,
                       "methodologyCodes": f.methodology_codes, "pledge": [f.pledge_version, f.pledge_sha256],
                       "documents": [[d.attachment.document.name, d.attachment.media_type, d.attachment.document.sha256]
                                     for d in f.documents]}
            return Idempotency("applyForScenario", input.idempotency_key, request)

        return await run_mutation(ctx, t.ApplyForScenarioPayload, apply, answer=answer, idempotency=idempotency)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)],
                         description="Grant a scenario its mark (标识, art. 27) after its experts' opinions are in, "
                                     "giving reasons and the validity in years (1 to 5).")
    async def grant_scenario_mark(self, info: strawberry.Info,
                                  input: t.GrantScenarioMarkInput) -> t.GrantScenarioMarkPayload:
        ctx = info.context

        async def grant(session) -> dict:
            row, _mark = await service.grant(
                session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                scenario_id=parse_id(input.application_id, "applicationId"), reason=input.reason,
                validity_years=input.validity_years)
            return {"application_id": str(row.id)}

        async def answer(session, result: dict) -> t.GrantScenarioMarkPayload:
            return t.GrantScenarioMarkPayload(application=await _application_of(ctx, session, result))

        def idempotency() -> Idempotency:
            return Idempotency("grantScenarioMark", input.idempotency_key,
                               {"applicationId": str(parse_id(input.application_id, "applicationId")),
                                "reason": input.reason, "validityYears": input.validity_years})

        return await run_mutation(ctx, t.GrantScenarioMarkPayload, grant, answer=answer, idempotency=idempotency)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)],
                         description="Refuse a scenario application after its experts' opinions are in, giving reasons.")
    async def refuse_scenario_application(self, info: strawberry.Info, input: t.RefuseScenarioApplicationInput
                                          ) -> t.RefuseScenarioApplicationPayload:
        ctx = info.context

        async def refuse(session) -> dict:
            row = await service.refuse(session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                                       scenario_id=parse_id(input.application_id, "applicationId"),
                                       reason=input.reason)
            return {"application_id": str(row.id)}

        async def answer(session, result: dict) -> t.RefuseScenarioApplicationPayload:
            return t.RefuseScenarioApplicationPayload(application=await _application_of(ctx, session, result))

        def idempotency() -> Idempotency:
            return Idempotency("refuseScenarioApplication", input.idempotency_key,
                               {"applicationId": str(parse_id(input.application_id, "applicationId")),
                                "reason": input.reason})

        return await run_mutation(ctx, t.RefuseScenarioApplicationPayload, refuse, answer=answer,
                                  idempotency=idempotency)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)],
                         description="Suspend an active mark, with a reason: reports of behaviour from now on in the "
                                     "scenario are rejected SCENARIO_MARK_SUSPENDED until it is reinstated.")
    async def suspend_scenario_mark(self, info: strawberry.Info,
                                    input: t.ChangeScenarioMarkInput) -> t.SuspendScenarioMarkPayload:
        return await _change(info.context, t.SuspendScenarioMarkPayload, "suspend", "suspendScenarioMark", input)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)],
                         description="Reinstate a suspended mark (within its validity), with a reason.")
    async def reinstate_scenario_mark(self, info: strawberry.Info,
                                      input: t.ChangeScenarioMarkInput) -> t.ReinstateScenarioMarkPayload:
        return await _change(info.context, t.ReinstateScenarioMarkPayload, "reinstate", "reinstateScenarioMark", input)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)],
                         description="Withdraw an active or suspended mark for good, with a reason.")
    async def withdraw_scenario_mark(self, info: strawberry.Info,
                                     input: t.ChangeScenarioMarkInput) -> t.WithdrawScenarioMarkPayload:
        return await _change(info.context, t.WithdrawScenarioMarkPayload, "withdraw", "withdrawScenarioMark", input)


async def _change(ctx, payload, change: str, operation: str, input: t.ChangeScenarioMarkInput):
    async def act(session) -> dict:
        mark = await service.change_mark(session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                                         number=input.mark_number, change=change, reason=input.reason)
        return {"mark_number": mark.number}

    async def answer(session, result: dict):
        found = await service.public_scenario(session=session, clock=ctx.clock, number=result["mark_number"])
        return payload(scenario=t.PublicScenario.from_public(found, _base_url(ctx)))

    return await run_mutation(ctx, payload, act, answer=answer, idempotency=Idempotency(
        operation, input.idempotency_key, {"markNumber": input.mark_number.strip().upper(), "reason": input.reason}))


def _document(value: t.ScenarioDocumentInput, index: int) -> service.ScenarioAttachment:
    attachment = attachment_from_base64(value.file_name, value.media_type, value.content_base64,
                                        field=f"documents.{index}", too_large=ScenarioCode.DOCUMENT_TOO_LARGE,
                                        invalid=ScenarioCode.INVALID_APPLICATION)
    return service.ScenarioAttachment(attachment, declared_sha256=value.sha256)


async def _application(ctx, session, row: Scenario, with_content: bool = False) -> t.ScenarioApplication:
    documents = await service.documents_of(session=session, scenario_ids=[row.id], with_content=with_content)
    journal = await service.journal_of(session=session, scenario_id=row.id)
    marks = await service.marks_of(session=session, scenario_ids=[row.id])
    return t.ScenarioApplication.from_row(row, marks.get(row.id), documents[row.id], ctx.clock.now(), _base_url(ctx),
                                          journal, with_content=with_content)


async def _application_of(ctx, session, result: dict) -> t.ScenarioApplication:
    row = await service.get_scenario(session=session, scenario_id=parse_id(result["application_id"]))
    return await _application(ctx, session, row)


async def _applications(ctx, session, page) -> Connection[t.ScenarioApplication]:
    ids = [i.node.id for i in page.items]
    documents = await service.documents_of(session=session, scenario_ids=ids)
    marks = await service.marks_of(session=session, scenario_ids=ids)
    now, base_url = ctx.clock.now(), _base_url(ctx)
    return Connection.from_page(page, lambda row: t.ScenarioApplication.from_row(
        row, marks.get(row.id), documents[row.id], now, base_url))


async def _may_read(ctx, session, row: Scenario) -> bool:
    if ctx.principal.has(R.REGULATOR.value):
        return True
    return await reviews.may_read_subject(session=session, review_id=row.review_id, applicant_id=row.applicant_id,
                                          account_id=ctx.principal.account_id)
