"""Methodologies and exchange rules (regulator), behaviour reports (operators)."""

from __future__ import annotations

from datetime import date

import strawberry

from accounts.models import ApiKeyScope as S
from accounts.models import Role as R
from core.keyset import MAX_PAGE_SIZE
from reductions import service
from reductions.models import PublicationStatus as DomainStatus
from resolvers.common import parse_id
from resolvers.runner import run_mutation
from schema import reductions as t
from schema.pagination import Connection
from schema.permissions import Allow
from schema.wallets import OperatorPointTotals, PointTotals
from wallets import read

# a batch racing another batch with the same report ids is retried once; then they are duplicates
REPORT_ATTEMPTS = 3


@strawberry.type
class ReductionsQuery:
    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="Published (and retired) methodologies; the regulator also sees drafts.")
    async def methodologies(self, info: strawberry.Info) -> list[t.Methodology]:
        ctx = info.context
        drafts = ctx.principal is not None and ctx.principal.has(R.REGULATOR.value)
        async with ctx.reading() as session:
            rows = await service.list_methodologies(session=session, include_drafts=drafts)
        return [t.Methodology.from_row(r) for r in rows]

    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="Published exchange rules; the regulator also sees drafts.")
    async def exchange_rules(self, info: strawberry.Info) -> list[t.ExchangeRule]:
        ctx = info.context
        drafts = ctx.principal is not None and ctx.principal.has(R.REGULATOR.value)
        async with ctx.reading() as session:
            rows = await service.list_exchange_rules(session=session, include_drafts=drafts)
        return [t.ExchangeRule.from_row(r) for r in rows]

    @strawberry.field(extensions=[Allow(R.APP_OPERATOR)], description="This operator's reports and their outcomes, newest first.")
    async def my_reports(self, info: strawberry.Info, first: int | None = None, after: str | None = None,
                         rejected_only: bool = False) -> Connection[t.BehaviourReport]:
        ctx = info.context
        async with ctx.reading() as session:
            page = await service.list_reports(session=session, operator_id=ctx.principal.account_id, first=first,
                                              after=after, outcome="rejected" if rejected_only else None)
        return Connection.from_page(page, t.BehaviourReport.from_row)

    @strawberry.field(extensions=[Allow(R.APP_OPERATOR)], description="This operator's reports per methodology and behaviour day.")
    async def report_aggregates(self, info: strawberry.Info, since: date, until: date) -> list[t.ReportAggregate]:
        ctx = info.context
        async with ctx.reading() as session:
            rows = await service.operator_aggregates(session=session, operator_id=ctx.principal.account_id,
                                                     since=since, until=until)
        return [t.ReportAggregate(day=r.day, methodology_code=r.methodology_code, reports=r.reports,
                                  credited=r.credited, rejected=r.rejected, points=r.points,
                                  reduction_mg=r.reduction_mg, uncredited_reduction_mg=r.uncredited_reduction_mg)
                for r in rows]

    @strawberry.field(extensions=[Allow(R.APP_OPERATOR)],
                      description="Expiry notices of lots this operator's reports earned, by its own user ids.")
    async def operator_expiry_notices(self, info: strawberry.Info) -> list[t.OperatorExpiryNotice]:
        ctx = info.context
        notices: list[t.OperatorExpiryNotice] = []
        after = None
        async with ctx.reading() as session:
            while True:  # every notice, a keyset page at a time
                page = await read.operator_expiry_notices(session=session, operator_id=ctx.principal.account_id,
                                                          first=MAX_PAGE_SIZE, after=after)
                notices += [t.OperatorExpiryNotice(external_user_id=n.external_user_id, points=n.points,
                                                   expires_at=n.expires_at, noticed_at=n.noticed_at)
                            for n in (item.node for item in page.items)]
                if not page.has_next_page:
                    return notices
                after = page.end_cursor

    @strawberry.field(extensions=[Allow(R.REGULATOR)], description="Point totals per reporting app operator.")
    async def point_totals_by_operator(self, info: strawberry.Info) -> list[OperatorPointTotals]:
        async with info.context.reading() as session:
            rows = await service.totals_by_operator(session=session)
        return [OperatorPointTotals(operator_id=strawberry.ID(str(o)), operator_name=name,
                                    totals=PointTotals.from_totals(totals)) for o, name, totals in rows]


@strawberry.type
class ReductionsMutation:
    @strawberry.mutation(extensions=[Allow(R.APP_OPERATOR, scope=S.REPORT_BEHAVIOUR)],
                         description="Report up to 1,000 items of entrusted users' behaviour. Idempotent per report id.")
    async def report_behaviour(self, info: strawberry.Info, input: t.ReportBehaviourInput) -> t.ReportBehaviourPayload:
        ctx = info.context
        items = [service.ReportItem(report_id=i.report_id, external_user_id=i.external_user_id,
                                    methodology_code=i.methodology_code, quantity=i.quantity,
                                    occurred_at=i.occurred_at) for i in input.items]

        async def report(session) -> t.ReportBehaviourPayload:
            results = await service.report_behaviour(session=session, clock=ctx.clock,
                                                     operator_id=ctx.principal.account_id, items=items)
            return t.ReportBehaviourPayload(results=[t.ReportItemResult.from_result(r) for r in results])

        return await run_mutation(ctx, t.ReportBehaviourPayload, report,
                                  retry_on=(service.ConcurrentDuplicate,), attempts=REPORT_ATTEMPTS)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)], description="Draft a methodology (or a new version of one).")
    async def create_methodology(self, info: strawberry.Info, input: t.CreateMethodologyInput) -> t.MethodologyPayload:
        ctx = info.context

        async def create(session) -> t.MethodologyPayload:
            row = await service.create_methodology(
                session=session, clock=ctx.clock, code=input.code, name=input.name,
                behaviour_domain=input.behaviour_domain, activity_unit=input.activity_unit,
                factor_mg_per_unit=input.factor_mg_per_unit, max_quantity=input.max_quantity,
                effective_from=input.effective_from, effective_to=input.effective_to,
                source_reference=input.source_reference, is_example=input.is_example)
            return t.MethodologyPayload(methodology=t.Methodology.from_row(row))

        return await run_mutation(ctx, t.MethodologyPayload, create)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)], description="Publish a draft methodology or retire a published one.")
    async def set_methodology_status(self, info: strawberry.Info, input: t.SetMethodologyStatusInput) -> t.MethodologyPayload:
        ctx = info.context

        async def set_status(session) -> t.MethodologyPayload:
            row = await service.set_methodology_status(session=session, clock=ctx.clock,
                                                       methodology_id=parse_id(input.id),
                                                       status=DomainStatus(input.status.value))
            return t.MethodologyPayload(methodology=t.Methodology.from_row(row))

        return await run_mutation(ctx, t.MethodologyPayload, set_status)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)], description="Draft an exchange rule (validity at most 10 years).")
    async def create_exchange_rule(self, info: strawberry.Info, input: t.CreateExchangeRuleInput) -> t.ExchangeRulePayload:
        ctx = info.context

        async def create(session) -> t.ExchangeRulePayload:
            row = await service.create_exchange_rule(
                session=session, clock=ctx.clock, points=input.points, reduction_mg=input.reduction_mg,
                daily_cap_points=input.daily_cap_points, acceptance_window_days=input.acceptance_window_days,
                effective_from=input.effective_from, validity_years=input.validity_years,
                methodology_code=input.methodology_code, note=input.note)
            return t.ExchangeRulePayload(rule=t.ExchangeRule.from_row(row))

        return await run_mutation(ctx, t.ExchangeRulePayload, create)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)], description="Publish a draft exchange rule; it applies from its effectiveFrom.")
    async def publish_exchange_rule(self, info: strawberry.Info, input: t.PublishExchangeRuleInput) -> t.ExchangeRulePayload:
        ctx = info.context

        async def publish(session) -> t.ExchangeRulePayload:
            row = await service.publish_exchange_rule(session=session, clock=ctx.clock, rule_id=parse_id(input.id))
            return t.ExchangeRulePayload(rule=t.ExchangeRule.from_row(row))

        return await run_mutation(ctx, t.ExchangeRulePayload, publish)
