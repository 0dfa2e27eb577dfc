"""The CER market: browsing offers (anyone), offering and withdrawing (CER holders), buying through
Stripe (organisations and individuals, art. 19), and each side's view of the orders."""

from __future__ import annotations

from contextlib import asynccontextmanager

import strawberry

from accounts.models import ApiKeyScope as S
from accounts.models import Role as R
from core.errors import DomainError
from neutrality.market import offers, purchases, reads
from neutrality.market.models import Offer, PurchaseOrder
from neutrality.market.payments import PaymentProviderUnavailable, PaymentRefused
from resolvers.common import parse_id, parse_optional_id
from resolvers.runner import Idempotency, run_mutation
from schema import market as t
from schema.context import Context
from schema.errors import domain_errors
from schema.pagination import Connection
from schema.permissions import CER_HOLDERS as HOLDERS
from schema.permissions import Allow

BUYERS = (R.ORGANISATION, R.INDIVIDUAL)


def _viewer(ctx: Context):
    return ctx.principal.account_id if ctx.principal else None


async def _offers(session, rows, viewer) -> list[t.CerOffer]:
    projects = await reads.projects_by_id(session=session, ids=[r.project_id for r in rows])
    return [t.CerOffer.from_row(r, projects.get(r.project_id), viewer) for r in rows]


async def _buyer_orders(session, rows) -> list[t.CerPurchaseOrder]:
    projects = await reads.projects_by_id(session=session, ids=[r.project_id for r in rows])
    serials = await reads.delivered_serials(session=session, order_ids=[r.id for r in rows])
    return [t.CerPurchaseOrder.from_row(r, projects.get(r.project_id), serials.get(r.id)) for r in rows]


async def _offer_connection(session, page, viewer) -> Connection[t.CerOffer]:
    converted = dict(zip([i.node.id for i in page.items], await _offers(session, [i.node for i in page.items], viewer)))
    return Connection.from_page(page, lambda row: converted[row.id])


def _payment_mode(ctx: Context):
    payments = ctx.services.payments
    return payments.mode if payments is not None else None


@strawberry.type
class MarketQuery:
    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="How CER purchases are paid here: LIVE, TEST or TEST_EMULATOR (no real money).")
    def cer_market_info(self, info: strawberry.Info) -> t.CerMarketInfo:
        ctx: Context = info.context
        mode = _payment_mode(ctx)
        return t.CerMarketInfo(payment_mode=mode, test_mode=mode is None or mode.value != "live",
                               currency=purchases.CURRENCY.upper(),
                               reservation_minutes=ctx.settings.cer_reservation_minutes)

    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="CERs on sale, cheapest first by default, without signing in.")
    async def cer_offers(self, info: strawberry.Info, filter: t.CerOfferFilter | None = None,
                         sort: t.CerOfferSort = t.CerOfferSort.PRICE_ASC, first: int | None = None,
                         after: str | None = None) -> Connection[t.CerOffer]:
        ctx: Context = info.context
        f = filter or t.CerOfferFilter()
        filters = reads.OfferFilter(project_id=parse_optional_id(f.project_id),
                                    vintage=f.vintage, max_price_per_tonne_fen=f.max_price_per_tonne_fen,
                                    sort=sort.value)
        async with ctx.reading() as session:
            page = await reads.browse_offers(session=session, filters=filters, first=first, after=after)
            return await _offer_connection(session, page, _viewer(ctx))

    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="One offer on sale (sellers also see their own withdrawn offers).")
    async def cer_offer(self, info: strawberry.Info, id: strawberry.ID) -> t.CerOffer | None:
        ctx: Context = info.context
        try:
            async with ctx.reading() as session:
                row = await reads.get_offer(session=session, offer_id=parse_id(id), viewer_id=_viewer(ctx))
                return (await _offers(session, [row], _viewer(ctx)))[0]
        except DomainError:
            return None

    @strawberry.field(extensions=[Allow(*HOLDERS)], description="The caller's own offers, every status.")
    async def my_cer_offers(self, info: strawberry.Info, status: t.CerOfferStatus | None = None,
                            first: int | None = None, after: str | None = None) -> Connection[t.CerOffer]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await reads.seller_offers(session=session, seller_id=ctx.principal.account_id,
                                             status=status.value if status else None, first=first, after=after)
            return await _offer_connection(session, page, _viewer(ctx))

    @strawberry.field(extensions=[Allow(*BUYERS)], description="One of the caller's purchase orders, with its status.")
    async def purchase_order(self, info: strawberry.Info, id: strawberry.ID) -> t.CerPurchaseOrder | None:
        ctx: Context = info.context
        try:
            async with ctx.reading() as session:
                row = await reads.get_order(session=session, order_id=parse_id(id), buyer_id=ctx.principal.account_id)
                return (await _buyer_orders(session, [row]))[0]
        except DomainError:
            return None

    @strawberry.field(extensions=[Allow(*BUYERS)], description="The caller's purchase orders, newest first.")
    async def my_purchase_orders(self, info: strawberry.Info, status: t.CerOrderStatus | None = None,
                                 first: int | None = None, after: str | None = None) -> Connection[t.CerPurchaseOrder]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await reads.buyer_orders(session=session, buyer_id=ctx.principal.account_id,
                                            status=status.value if status else None, first=first, after=after)
            converted = dict(zip([i.node.id for i in page.items], await _buyer_orders(session, [i.node for i in page.items])))
        return Connection.from_page(page, lambda row: converted[row.id])

    @strawberry.field(extensions=[Allow(*HOLDERS)],
                      description="Orders placed on the caller's offers, newest first; buyers are not shown.")
    async def seller_orders(self, info: strawberry.Info, status: t.CerOrderStatus | None = None,
                            first: int | None = None, after: str | None = None) -> Connection[t.CerSellerOrder]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await reads.seller_orders(session=session, seller_id=ctx.principal.account_id,
                                             status=status.value if status else None, first=first, after=after)
            projects = await reads.projects_by_id(session=session, ids=[i.node.project_id for i in page.items])
        return Connection.from_page(page, lambda row: t.CerSellerOrder.from_row(row, projects.get(row.project_id)))


@strawberry.type
class MarketMutation:
    @strawberry.mutation(extensions=[Allow(*HOLDERS, scope=S.SELL_CERS)],
                         description="Offer whole tonnes of one project and vintage you hold, at a price per tonne in fen.")
    async def create_cer_offer(self, info: strawberry.Info, input: t.CreateCerOfferInput) -> t.CreateCerOfferPayload:
        ctx: Context = info.context

        async def offer(session) -> dict:
            row = await offers.create_offer(
                session=session, clock=ctx.clock, seller_id=ctx.principal.account_id,
                project_id=parse_id(input.project_id, "projectId"), vintage=input.vintage, quantity=input.quantity,
                price_per_tonne_fen=input.price_per_tonne_fen, min_purchase=input.min_purchase)
            return {"offer_id": str(row.id)}

        async def answer(session, result: dict) -> t.CreateCerOfferPayload:
            row = await session.get(Offer, parse_id(result["offer_id"]))
            return t.CreateCerOfferPayload(offer=(await _offers(session, [row], ctx.principal.account_id))[0])

        def idempotency() -> Idempotency:
            return Idempotency("createCerOffer", input.idempotency_key,
                               {"projectId": str(parse_id(input.project_id, "projectId")), "vintage": input.vintage,
                                "quantity": input.quantity, "pricePerTonneFen": input.price_per_tonne_fen,
                                "minPurchase": input.min_purchase})

        return await run_mutation(ctx, t.CreateCerOfferPayload, offer, answer=answer, idempotency=idempotency)

    @strawberry.mutation(extensions=[Allow(*HOLDERS, scope=S.SELL_CERS)],
                         description="Take your offer off the market; orders already reserved still settle.")
    async def withdraw_cer_offer(self, info: strawberry.Info, input: t.WithdrawCerOfferInput) -> t.WithdrawCerOfferPayload:
        ctx: Context = info.context

        async def withdraw(session) -> t.WithdrawCerOfferPayload:
            row = await offers.withdraw_offer(session=session, clock=ctx.clock,
                                              seller_id=ctx.principal.account_id, offer_id=parse_id(input.id))
            return t.WithdrawCerOfferPayload(offer=(await _offers(session, [row], ctx.principal.account_id))[0])

        return await run_mutation(ctx, t.WithdrawCerOfferPayload, withdraw)

    @strawberry.mutation(extensions=[Allow(*BUYERS, password_session=True)],
                         description="Buy tonnes from an offer: they are reserved for you, and a Stripe PaymentIntent "
                                     "is created; confirm it with the client secret before reservedUntil. The tonnes "
                                     "reach your CER account when Stripe reports the payment.")
    async def buy_cers(self, info: strawberry.Info, input: t.BuyCersInput) -> t.BuyCersPayload:
        ctx: Context = info.context
        payments = ctx.services.payments
        mode = _payment_mode(ctx)

        @asynccontextmanager
        async def configured():
            if payments is None:
                raise PaymentProviderUnavailable(message="No payment provider is configured on this deployment.")
            yield

        async def reserve(session) -> dict:
            row = await purchases.reserve_purchase(
                session=session, clock=ctx.clock, buyer_id=ctx.principal.account_id,
                offer_id=parse_id(input.offer_id, "offerId"), quantity=input.quantity,
                reservation_minutes=ctx.settings.cer_reservation_minutes)
            return {"order_id": str(row.id)}

        async def answer(session, result: dict):
            return parse_id(result["order_id"])

        async def pay(order_id) -> t.BuyCersPayload:
            try:
                row, secret = await purchases.ensure_payment(session_factory=ctx.services.session_factory,
                                                             clock=ctx.clock, payments=payments, order_id=order_id,
                                                             buyer_id=ctx.principal.account_id)
            except (PaymentProviderUnavailable, PaymentRefused) as exc:
                # the order exists (reserved, or released if refused): show it with the error
                async with ctx.reading() as session:
                    row = await session.get(PurchaseOrder, order_id)
                    order = (await _buyer_orders(session, [row]))[0]
                return t.BuyCersPayload(order=order, payment_mode=mode, errors=domain_errors(t.BuyCersError, exc))
            async with ctx.reading() as session:
                order = (await _buyer_orders(session, [row]))[0]
            return t.BuyCersPayload(order=order, client_secret=secret, payment_mode=mode)

        def idempotency() -> Idempotency:
            return Idempotency("buyCers", input.idempotency_key,
                               {"offerId": str(parse_id(input.offer_id, "offerId")), "quantity": input.quantity})

        return await run_mutation(ctx, t.BuyCersPayload, reserve, answer=answer, then=pay, guard=configured,
                                  idempotency=idempotency)
