"""The yearly ETS offset scope (art. 18): the regulator drafts and publishes it, holders surrender CERs for
ETS compliance within it, and anyone reads the scopes, their use and the surrenders."""

from __future__ import annotations

import strawberry

from accounts.models import ApiKeyScope as S
from accounts.models import Role as R
from neutrality.cers import offsets
from neutrality.cers.models import EtsOffsetScope, EtsSurrender
from resolvers.common import parse_id
from resolvers.runner import Idempotency, run_mutation
from schema import offsets as t
from schema.context import Context
from schema.pagination import Connection
from schema.permissions import CER_HOLDERS as HOLDERS
from schema.permissions import Allow


@strawberry.type
class OffsetsQuery:
    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="Each compliance year's published ETS offset scope (art. 18) and its use so far: "
                                  "tonnes surrendered and remaining. Newest year first.")
    async def ets_offset_scopes(self, info: strawberry.Info, first: int | None = None,
                                after: str | None = None) -> Connection[t.EtsOffsetScopeUse]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await offsets.offset_scope_use(session=session, first=first, after=after)
        return Connection.from_page(page, t.EtsOffsetScopeUse.from_row)

    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="Every published version of a year's scope, corrections and superseded ones, "
                                  "oldest first.")
    async def ets_offset_scope_versions(self, info: strawberry.Info, year: int) -> list[t.EtsOffsetScope]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            rows = await offsets.scope_versions(session=session, year=year)
        return [t.EtsOffsetScope.from_row(r) for r in rows]

    @strawberry.field(extensions=[Allow(R.REGULATOR)], description="Draft scopes not yet published, newest first.")
    async def ets_offset_scope_drafts(self, info: strawberry.Info, first: int | None = None,
                                      after: str | None = None) -> Connection[t.EtsOffsetScope]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await offsets.drafts(session=session, first=first, after=after)
        return Connection.from_page(page, t.EtsOffsetScope.from_row)

    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="Surrenders of CERs for ETS compliance (public registry, art. 18 and 29), newest "
                                  "first; optionally of one compliance year.")
    async def ets_surrenders(self, info: strawberry.Info, year: int | None = None, first: int | None = None,
                             after: str | None = None) -> Connection[t.EtsSurrender]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await offsets.public_surrenders(session=session, year=year, first=first, after=after)
        return Connection.from_page(page, t.EtsSurrender.from_row)

    @strawberry.field(extensions=[Allow(*HOLDERS)], description="The caller's surrenders for ETS compliance, newest "
                                                                "first.")
    async def my_ets_surrenders(self, info: strawberry.Info, first: int | None = None,
                                after: str | None = None) -> Connection[t.EtsSurrender]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await offsets.holder_surrenders(session=session, holder_id=ctx.principal.account_id, first=first,
                                                   after=after)
        return Connection.from_page(page, t.EtsSurrender.from_row)


async def _scope(session, result: dict) -> t.EtsOffsetScope:
    return t.EtsOffsetScope.from_row(await session.get(EtsOffsetScope, parse_id(result["scope_id"])))


@strawberry.type
class OffsetsMutation:
    @strawberry.mutation(extensions=[Allow(R.REGULATOR)],
                         description="Draft a version of a compliance year's ETS offset scope (art. 18): eligible "
                                     "vintages, project kinds and/or methodology codes, and the year's cap in tonnes. "
                                     "Private until published.")
    async def draft_ets_offset_scope(self, info: strawberry.Info,
                                     input: t.DraftEtsOffsetScopeInput) -> t.DraftEtsOffsetScopePayload:
        ctx: Context = info.context

        async def draft(session) -> dict:
            row = await offsets.draft_scope(session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                                            year=input.year, vintages=list(input.vintages),
                                            project_kinds=list(input.project_kinds),
                                            methodology_codes=list(input.methodology_codes),
                                            cap_tonnes=input.cap_tonnes, note=input.note)
            return {"scope_id": str(row.id)}

        async def answer(session, result: dict) -> t.DraftEtsOffsetScopePayload:
            return t.DraftEtsOffsetScopePayload(scope=await _scope(session, result))

        return await run_mutation(ctx, t.DraftEtsOffsetScopePayload, draft, answer=answer, idempotency=Idempotency(
            "draftEtsOffsetScope", input.idempotency_key,
            {"year": input.year, "vintages": list(input.vintages), "projectKinds": list(input.project_kinds),
             "methodologyCodes": list(input.methodology_codes), "capTonnes": input.cap_tonnes, "note": input.note}))

    @strawberry.mutation(extensions=[Allow(R.REGULATOR)],
                         description="Publish a draft scope (art. 18): in force for its year and immutable. A draft "
                                     "for a year already published is a correction that supersedes it; its cap may "
                                     "not be below the tonnes already surrendered (CAP_BELOW_SURRENDERED).")
    async def publish_ets_offset_scope(self, info: strawberry.Info,
                                       input: t.PublishEtsOffsetScopeInput) -> t.PublishEtsOffsetScopePayload:
        ctx: Context = info.context

        async def publish(session) -> dict:
            row = await offsets.publish_scope(session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                                              scope_id=parse_id(input.scope_id, "scopeId"))
            return {"scope_id": str(row.id)}

        async def answer(session, result: dict) -> t.PublishEtsOffsetScopePayload:
            return t.PublishEtsOffsetScopePayload(scope=await _scope(session, result))

        def idempotency() -> Idempotency:
            return Idempotency("publishEtsOffsetScope", input.idempotency_key,
                               {"scopeId": str(parse_id(input.scope_id, "scopeId"))})

        return await run_mutation(ctx, t.PublishEtsOffsetScopePayload, publish, answer=answer, idempotency=idempotency)

    @strawberry.mutation(extensions=[Allow(*HOLDERS, scope=S.RETIRE_CERS)],
                         description="Surrender held CERs (not those on offer) for a compliance entity's Shenzhen ETS "
                                     "obligation of a year (履约抵销, art. 18), within that year's published scope and "
                                     "cap. Final: the serials become surrendered, publicly, naming the entity and "
                                     "year. Retry with the same idempotencyKey to get the same result.")
    async def surrender_cers_for_compliance(self, info: strawberry.Info, input: t.SurrenderCersForComplianceInput
                                            ) -> t.SurrenderCersForCompliancePayload:
        ctx: Context = info.context
        serials = (input.serial_range.first, input.serial_range.last) if input.serial_range else None

        def request() -> offsets.SurrenderRequest:
            return offsets.SurrenderRequest(
                year=input.year, entity_name=input.entity_name, entity_code=input.entity_code, tonnes=input.tonnes,
                project_id=parse_id(input.project_id, "projectId") if input.project_id else None,
                vintage=input.vintage, serials=serials)

        async def surrender(session) -> dict:
            row = await offsets.surrender_cers(session=session, clock=ctx.clock, holder_id=ctx.principal.account_id,
                                               request=request())
            return {"surrender_id": str(row.id)}

        async def answer(session, result: dict) -> t.SurrenderCersForCompliancePayload:
            row = await session.get(EtsSurrender, parse_id(result["surrender_id"]))
            return t.SurrenderCersForCompliancePayload(surrender=t.EtsSurrender.from_row(row))

        def idempotency() -> Idempotency:
            asked = request()
            return Idempotency("surrenderCersForCompliance", input.idempotency_key, {
                "year": asked.year, "entityName": asked.entity_name, "entityCode": asked.entity_code,
                "tonnes": asked.tonnes, "projectId": str(asked.project_id) if asked.project_id else None,
                "vintage": asked.vintage, "serialRange": list(serials) if serials else None})

        return await run_mutation(ctx, t.SurrenderCersForCompliancePayload, surrender, answer=answer,
                                  idempotency=idempotency)
