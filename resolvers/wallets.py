"""The consumer's wallet and the regulator's ledger views. Nothing here moves a point: there is
no transfer and no debit an operator or merchant can call (art. 22-23)."""

from __future__ import annotations

import uuid

import strawberry

from accounts.models import Role as R
from schema import wallets as t
from schema.pagination import Connection
from schema.permissions import Allow
from schema.scenarios import ScenarioEarnings
from scenarios import service as scenarios
from wallets import read
from wallets.audit import ledger_audit, totals


@strawberry.type(description="A person's carbon-point wallet.")
class Wallet:
    balance: int = strawberry.field(description="Points usable now.")
    held: int = strawberry.field(description="Points set aside for redemptions not yet fulfilled.")
    awaiting_expiry: int = strawberry.field(description="Points past their expiry, about to be cancelled; not usable.")
    lifetime_points: int
    lifetime_credited_reduction_grams: int = strawberry.field(
        description="CO2e of the reported behaviour points were credited for (fractions carried over included).")
    lifetime_reported_reduction_grams: int = strawberry.field(
        description="All CO2e this person's reported behaviour avoided, including what a daily cap left uncredited.")
    lifetime_reduction_grams: int = strawberry.field(
        description="CO2e of the reported behaviour points were credited for.",
        deprecation_reason="It leaves out reductions over a daily cap, though it was described as all CO2e avoided; "
                           "use lifetimeCreditedReductionGrams (the same figure) or lifetimeReportedReductionGrams.")
    carried_fraction: str = strawberry.field(description="The fraction of a point carried over to the next credit, exactly (e.g. '4/125').")
    _account_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="Lots with their points left and expiry, soonest expiry first by default.")
    async def lots(self, info: strawberry.Info, first: int | None = None, after: str | None = None,
                   order: t.LotOrder = t.LotOrder.EXPIRY_ASC, usable_only: bool = False) -> Connection[t.PointLotType]:
        ctx = info.context
        async with ctx.reading(autocommit=True) as session:
            page = await read.list_lots(session=session, account_id=self._account_id, first=first, after=after,
                                        descending=order == t.LotOrder.EXPIRY_DESC, usable_only=usable_only,
                                        clock=ctx.clock)
        return Connection.from_page(page, t.PointLotType.from_row)

    @strawberry.field(description="Usable points expiring within the next N days, grouped by day.")
    async def expiring_soon(self, info: strawberry.Info, within_days: int = 30) -> list[t.ExpiringDay]:
        ctx = info.context
        async with ctx.reading(autocommit=True) as session:
            days = await read.expiring_soon(session=session, clock=ctx.clock, account_id=self._account_id,
                                            within_days=within_days)
        return [t.ExpiringDay(expires_on=d.expires_on, points=d.points, lots=d.lots) for d in days]

    @strawberry.field(description="Every credit, hold, release, cancellation and expiry, newest first.")
    async def history(self, info: strawberry.Info, first: int | None = None, after: str | None = None,
                      kinds: list[t.EntryKind] | None = None) -> Connection[t.WalletEntryType]:
        async with info.context.reading(autocommit=True) as session:
            page = await read.history(session=session, account_id=self._account_id, first=first, after=after,
                                      kinds=[k.value for k in kinds] if kinds else None)
            # the credits' scenarios, one query for the page (none when it holds no credit)
            named = await scenarios.scenarios_of_reports(
                session=session, report_ids=[i.node.report_id for i in page.items if i.node.report_id])
        return Connection.from_page(page, lambda row: t.WalletEntryType.from_row(row, named))

    @strawberry.field(description="Credited reports, points and reduction per scenario where the behaviour happened "
                                  "(art. 25-27), most points first; scenario null for behaviour reported without one.")
    async def scenario_breakdown(self, info: strawberry.Info) -> list[ScenarioEarnings]:
        async with info.context.reading(autocommit=True) as session:
            rows = await scenarios.wallet_breakdown(session=session, wallet_id=self._account_id)
        return [ScenarioEarnings.from_earnings(r) for r in rows]

    @strawberry.field(description="Notices of lots expiring within 30 days.")
    async def expiry_notices(self, info: strawberry.Info) -> list[t.ExpiryNoticeType]:
        async with info.context.reading(autocommit=True) as session:
            notices = await read.notices_for(session=session, account_id=self._account_id)
        return [t.ExpiryNoticeType(lot_id=strawberry.ID(str(n.lot_id)), points=n.points, expires_at=n.expires_at,
                                   noticed_at=n.created_at) for n in notices]


@strawberry.type
class WalletsQuery:
    @strawberry.field(extensions=[Allow(R.INDIVIDUAL)], description="The caller's own wallet.")
    async def my_wallet(self, info: strawberry.Info) -> Wallet:
        ctx = info.context
        async with ctx.reading(autocommit=True) as session:
            s = await read.wallet_summary(session=session, clock=ctx.clock, account_id=ctx.principal.account_id)
        return Wallet(balance=s.balance, held=s.held, awaiting_expiry=s.awaiting_expiry,
                      lifetime_points=s.lifetime_points, lifetime_reduction_grams=s.lifetime_reduction_mg // 1000,
                      lifetime_credited_reduction_grams=s.lifetime_reduction_mg // 1000,
                      lifetime_reported_reduction_grams=s.lifetime_reported_reduction_mg // 1000,
                      carried_fraction=f"{s.remainder.num}/{s.remainder.den}", _account_id=s.account_id)

    @strawberry.field(extensions=[Allow(R.REGULATOR)], description="Platform point totals, in all.")
    async def point_totals(self, info: strawberry.Info) -> t.PointTotals:
        async with info.context.reading() as session:
            return t.PointTotals.from_totals(await totals(session=session))

    @strawberry.field(extensions=[Allow(R.REGULATOR)],
                      description="Recompute every wallet and lot from the journal and list any mismatch.")
    async def ledger_audit(self, info: strawberry.Info) -> t.LedgerAudit:
        async with info.context.reading() as session:
            audit = await ledger_audit(session=session)
        return t.LedgerAudit(ok=audit.ok, totals=t.PointTotals.from_totals(audit.totals),
                             mismatches=[t.LedgerMismatch(subject=m.subject, id=m.id, field=m.field,
                                                          recorded=m.recorded, recomputed=m.recomputed)
                                         for m in audit.mismatches])
