"""The Measures' own period (art. 33): which version of the rules governs, and the regulator entering a successor."""

from __future__ import annotations

from datetime import date

import strawberry

from accounts.models import Role as R
from measures import service
from resolvers.runner import Idempotency, run_mutation
from schema import measures as t
from schema.context import Context
from schema.permissions import Allow


@strawberry.type
class MeasuresQuery:
    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="The version of the Measures governing a day (today in Asia/Shanghai by default), "
                                  "its successor and how long it has left (art. 33).")
    async def measures_in_force(self, info: strawberry.Info, on: date | None = None) -> t.MeasuresInForce:
        ctx: Context = info.context
        async with ctx.reading() as session:
            return t.MeasuresInForce.from_day(await service.measures_on(session=session, clock=ctx.clock, day=on))

    @strawberry.field(extensions=[Allow(anyone=True)], description="Every version of the Measures, oldest first.")
    async def measures_versions(self, info: strawberry.Info) -> list[t.MeasuresVersion]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            return [t.MeasuresVersion.from_row(v) for v in await service.versions(session=session)]


@strawberry.type
class MeasuresMutation:
    @strawberry.mutation(extensions=[Allow(R.REGULATOR)],
                         description="Enter a successor version of the Measures as published (art. 33). Points "
                                     "already credited keep their expiry; exchange rules starting while it governs "
                                     "keep to its longest validity.")
    async def enter_measures_version(self, info: strawberry.Info,
                                     input: t.EnterMeasuresVersionInput) -> t.EnterMeasuresVersionPayload:
        ctx: Context = info.context

        async def enter(session) -> dict:
            row = await service.enter_version(
                session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id, title=input.title,
                source_reference=input.source_reference, effective_from=input.effective_from,
                effective_until=input.effective_until, max_point_validity_years=input.max_point_validity_years,
                text_sha256=input.text_sha256, note=input.note)
            return {"version": row.version}

        async def answer(session, result: dict) -> t.EnterMeasuresVersionPayload:
            found = next(v for v in await service.versions(session=session) if v.version == result["version"])
            return t.EnterMeasuresVersionPayload(version=t.MeasuresVersion.from_row(found))

        request = {"title": input.title, "sourceReference": input.source_reference,
                   "effectiveFrom": input.effective_from.isoformat(),
                   "effectiveUntil": input.effective_until.isoformat() if input.effective_until else None,
                   "maxPointValidityYears": input.max_point_validity_years, "textSha256": input.text_sha256,
                   "note": input.note}
        return await run_mutation(ctx, t.EnterMeasuresVersionPayload, enter, answer=answer,
                                  idempotency=Idempotency("enterMeasuresVersion", input.idempotency_key, request))
