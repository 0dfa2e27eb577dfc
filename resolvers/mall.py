"""The points mall: browsing (anyone), redeeming (the wallet's owner only), merchants' listings
and fulfilment, and the cancellation figures for the regulator and app operators."""

from __future__ import annotations

from datetime import date

import strawberry

from accounts.models import ApiKeyScope as S
from accounts.models import Role as R
from core.errors import DomainError
from core.keyset import Page, PageItem
from mall import catalog_cache, service
from mall.models import ListingStatus as DomainListingStatus
from mall.models import Redemption
from resolvers.common import parse_id, parse_optional_id
from resolvers.runner import Idempotency, run_mutation
from schema import mall as t
from schema.context import Context
from schema.pagination import Connection
from schema.permissions import Allow


def _terms(input) -> service.ListingTerms:
    return service.ListingTerms(
        title=input.title, description=input.description, category=input.category, image_urls=input.image_urls,
        price_points=input.price_points, per_person_limit=input.per_person_limit,
        available_from=input.available_from, available_until=input.available_until)


def _figures(rows) -> list[t.CancelledPoints]:
    return [t.CancelledPoints(day=r.day, channel=r.channel, redemptions=r.redemptions, points=r.points,
                              app_operator_id=strawberry.ID(str(r.app_operator_id)) if r.app_operator_id else None,
                              merchant_id=strawberry.ID(str(r.merchant_id))) for r in rows]


@strawberry.type
class MallQuery:
    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="Browse the mall without signing in. Popular pages come from a short-lived cache.")
    async def mall(self, info: strawberry.Info, filter: t.MallFilter | None = None,
                   sort: t.ListingSort = t.ListingSort.NEWEST, first: int | None = None,
                   after: str | None = None) -> Connection[t.Listing]:
        ctx: Context = info.context
        f = filter or t.MallFilter()
        filters = service.BrowseFilter(
            channel=f.channel.value if f.channel else None, app_operator_id=parse_optional_id(f.app_operator_id),
            category=f.category, merchant_id=parse_optional_id(f.merchant_id), min_price=f.min_price,
            max_price=f.max_price, text=f.text, sort=sort.value)

        async def load() -> dict:
            async with ctx.reading() as session:
                page = await service.browse(session=session, clock=ctx.clock, filters=filters, first=first, after=after)
            return {"items": [{"cursor": i.cursor, "node": t.listing_dict(i.node)} for i in page.items],
                    "next": page.has_next_page, "previous": page.has_previous_page}

        params = {"f": [str(v) if v is not None else None for v in filters.__dict__.values()], "first": first,
                  "after": after}
        data = await catalog_cache.cached_page(ctx.redis, params, load)
        page = Page(items=[PageItem(cursor=i["cursor"], node=i["node"]) for i in data["items"]],
                    has_next_page=data["next"], has_previous_page=data["previous"])
        return Connection.from_page(page, t.Listing.from_dict)

    @strawberry.field(extensions=[Allow(anyone=True)], description="One listing on sale (merchants also see their own drafts).")
    async def listing(self, info: strawberry.Info, id: strawberry.ID) -> t.Listing | None:
        ctx: Context = info.context
        merchant = ctx.principal.account_id if ctx.principal and ctx.principal.has(R.MERCHANT.value) else None
        try:
            async with ctx.reading() as session:
                return t.Listing.from_row(await service.get_listing(session=session, clock=ctx.clock,
                                                                    listing_id=parse_id(id), merchant_id=merchant))
        except DomainError:
            return None

    @strawberry.field(extensions=[Allow(R.INDIVIDUAL)], description="The caller's redemptions and their voucher codes.")
    async def my_redemptions(self, info: strawberry.Info, status: t.RedemptionStatus | None = None,
                             first: int | None = None, after: str | None = None) -> Connection[t.Redemption]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await service.my_redemptions(session=session, wallet_id=ctx.principal.account_id,
                                                status=status.value if status else None, first=first, after=after)
        return Connection.from_page(page, t.Redemption.from_row)

    @strawberry.field(extensions=[Allow(R.MERCHANT)], description="The merchant's own listings, every status.")
    async def my_listings(self, info: strawberry.Info, status: t.ListingStatus | None = None, first: int | None = None,
                          after: str | None = None) -> Connection[t.Listing]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await service.merchant_listings(session=session, merchant_id=ctx.principal.account_id,
                                                   status=status.value if status else None, first=first, after=after)
        return Connection.from_page(page, t.Listing.from_row)

    @strawberry.field(extensions=[Allow(R.MERCHANT)], description="Redemptions of the merchant's listings.")
    async def merchant_redemptions(self, info: strawberry.Info, status: t.RedemptionStatus | None = None,
                                   first: int | None = None, after: str | None = None) -> Connection[t.MerchantRedemption]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await service.merchant_redemptions(session=session, merchant_id=ctx.principal.account_id,
                                                      status=status.value if status else None, first=first, after=after)
        return Connection.from_page(page, t.MerchantRedemption.from_row)

    @strawberry.field(extensions=[Allow(R.MERCHANT)], description="Check a voucher code the owner presents.")
    async def verify_voucher(self, info: strawberry.Info, code: str) -> t.MerchantRedemption | None:
        ctx: Context = info.context
        try:
            async with ctx.reading() as session:
                return t.MerchantRedemption.from_row(
                    await service.find_voucher(session=session, merchant_id=ctx.principal.account_id, code=code))
        except DomainError:
            return None

    @strawberry.field(extensions=[Allow(R.REGULATOR)], description="Points cancelled after use per day, channel, app and merchant.")
    async def cancelled_points(self, info: strawberry.Info, since: date, until: date) -> list[t.CancelledPoints]:
        async with info.context.reading() as session:
            return _figures(await service.cancellation_figures(session=session, since=since, until=until))

    @strawberry.field(extensions=[Allow(R.APP_OPERATOR)], description="Points cancelled after use in this operator's app mall.")
    async def app_mall_cancelled_points(self, info: strawberry.Info, since: date, until: date) -> list[t.CancelledPoints]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            return _figures(await service.cancellation_figures(session=session, since=since, until=until,
                                                               app_operator_id=ctx.principal.account_id))

    @strawberry.field(extensions=[Allow(R.MERCHANT)], description="Points cancelled after use for this merchant's sales.")
    async def merchant_cancelled_points(self, info: strawberry.Info, since: date, until: date) -> list[t.CancelledPoints]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            return _figures(await service.cancellation_figures(session=session, since=since, until=until,
                                                               merchant_id=ctx.principal.account_id))


def _listing_changed(ctx: Context):
    """After commit: the cached mall pages may show the listing as it was; drop them."""
    async def then(row) -> t.ListingPayload:
        await catalog_cache.invalidate(ctx.redis)
        return t.ListingPayload(listing=t.Listing.from_row(row))

    return then


@strawberry.type
class MallMutation:
    @strawberry.mutation(extensions=[Allow(R.MERCHANT, scope=S.MANAGE_LISTINGS)], description="Draft a listing.")
    async def create_listing(self, info: strawberry.Info, input: t.CreateListingInput) -> t.ListingPayload:
        ctx: Context = info.context

        async def create(session) -> t.ListingPayload:
            row = await service.create_listing(
                session=session, clock=ctx.clock, merchant_id=ctx.principal.account_id, kind=input.kind.value,
                terms=_terms(input), stock=input.stock, channel=input.channel.value,
                app_operator_id=parse_id(input.app_operator_id, "appOperatorId") if input.app_operator_id else None)
            return t.ListingPayload(listing=t.Listing.from_row(row))

        return await run_mutation(ctx, t.ListingPayload, create)

    @strawberry.mutation(extensions=[Allow(R.MERCHANT, scope=S.MANAGE_LISTINGS)], description="Edit a listing; orders already placed keep their price.")
    async def update_listing(self, info: strawberry.Info, input: t.UpdateListingInput) -> t.ListingPayload:
        ctx: Context = info.context

        async def update(session):
            return await service.update_listing(session=session, clock=ctx.clock, merchant_id=ctx.principal.account_id,
                                                listing_id=parse_id(input.id), terms=_terms(input))

        return await run_mutation(ctx, t.ListingPayload, update, then=_listing_changed(ctx))

    @strawberry.mutation(extensions=[Allow(R.MERCHANT, scope=S.MANAGE_LISTINGS)], description="draft -> active -> paused -> active; archived for good.")
    async def set_listing_status(self, info: strawberry.Info, input: t.SetListingStatusInput) -> t.ListingPayload:
        ctx: Context = info.context

        async def set_status(session):
            return await service.set_listing_status(session=session, clock=ctx.clock,
                                                    merchant_id=ctx.principal.account_id,
                                                    listing_id=parse_id(input.id),
                                                    status=DomainListingStatus(input.status.value).value)

        return await run_mutation(ctx, t.ListingPayload, set_status, then=_listing_changed(ctx))

    @strawberry.mutation(extensions=[Allow(R.MERCHANT, scope=S.MANAGE_LISTINGS)], description="Add stock (a restock movement). Idempotent per key.")
    async def restock_listing(self, info: strawberry.Info, input: t.RestockListingInput) -> t.ListingPayload:
        ctx: Context = info.context

        async def restock(session) -> dict:
            row = await service.restock(session=session, clock=ctx.clock, merchant_id=ctx.principal.account_id,
                                        listing_id=parse_id(input.id), quantity=input.quantity)
            return {"listing_id": str(row.id)}

        async def answer(session, result: dict):
            return await service.get_listing(session=session, clock=ctx.clock,
                                             listing_id=parse_id(result["listing_id"]),
                                             merchant_id=ctx.principal.account_id)

        return await run_mutation(
            ctx, t.ListingPayload, restock, answer=answer, then=_listing_changed(ctx),
            idempotency=Idempotency("restockListing", input.idempotency_key,
                                    {"id": str(input.id), "quantity": input.quantity}))

    @strawberry.mutation(extensions=[Allow(R.INDIVIDUAL, password_session=True)],
                         description="Redeem points for a listing: holds the points and issues a voucher only you can see.")
    async def redeem(self, info: strawberry.Info, input: t.RedeemInput) -> t.RedeemPayload:
        ctx: Context = info.context

        async def redeem(session) -> dict:
            row = await service.redeem(session=session, clock=ctx.clock, wallet_id=ctx.principal.account_id,
                                       listing_id=parse_id(input.listing_id, "listingId"), quantity=input.quantity,
                                       expected_price_points=input.expected_price_points,
                                       expected_revision=input.expected_revision,
                                       hold_minutes=ctx.settings.redemption_hold_minutes)
            return {"redemption_id": str(row.id)}

        async def answer(session, result: dict) -> t.RedeemPayload:
            # the first time, the redemption is the session's own already: no query
            redemption = await session.get(Redemption, parse_id(result["redemption_id"]))
            return t.RedeemPayload(redemption=t.Redemption.from_row(redemption))

        def idempotency() -> Idempotency:
            # a malformed listing id is NOT_FOUND before the key is looked at (nothing stored)
            return Idempotency("redeem", input.idempotency_key,
                               {"listingId": str(parse_id(input.listing_id, "listingId")), "quantity": input.quantity,
                                "expectedPricePoints": input.expected_price_points,
                                "expectedRevision": input.expected_revision})

        return await run_mutation(ctx, t.RedeemPayload, redeem, answer=answer, idempotency=idempotency)

    @strawberry.mutation(extensions=[Allow(R.INDIVIDUAL, password_session=True)],
                         description="Cancel your redemption before fulfilment: points and stock come back.")
    async def cancel_redemption(self, info: strawberry.Info, input: t.CancelRedemptionInput) -> t.CancelRedemptionPayload:
        ctx: Context = info.context

        async def cancel(session) -> t.CancelRedemptionPayload:
            row = await service.withdraw_redemption(session=session, clock=ctx.clock,
                                                    wallet_id=ctx.principal.account_id, redemption_id=parse_id(input.id))
            return t.CancelRedemptionPayload(redemption=t.Redemption.from_row(row))

        return await run_mutation(ctx, t.CancelRedemptionPayload, cancel)

    @strawberry.mutation(extensions=[Allow(R.MERCHANT, scope=S.FULFIL_REDEMPTIONS)], description="Decline a redemption: the person's points and the stock come back.")
    async def decline_redemption(self, info: strawberry.Info, input: t.DeclineRedemptionInput) -> t.DeclineRedemptionPayload:
        ctx: Context = info.context

        async def decline(session) -> t.DeclineRedemptionPayload:
            row = await service.decline_redemption(session=session, clock=ctx.clock,
                                                   merchant_id=ctx.principal.account_id,
                                                   redemption_id=parse_id(input.id), reason=input.reason)
            return t.DeclineRedemptionPayload(redemption=t.MerchantRedemption.from_row(row))

        return await run_mutation(ctx, t.DeclineRedemptionPayload, decline)

    @strawberry.mutation(extensions=[Allow(R.MERCHANT, scope=S.FULFIL_REDEMPTIONS)],
                         description="Confirm fulfilment of the voucher the owner presents; the points are cancelled (注销) for good.")
    async def fulfil_redemption(self, info: strawberry.Info, input: t.FulfilRedemptionInput) -> t.FulfilRedemptionPayload:
        ctx: Context = info.context

        async def fulfil(session) -> t.FulfilRedemptionPayload:
            row, cancellation = await service.fulfil(session=session, clock=ctx.clock,
                                                     merchant_id=ctx.principal.account_id, code=input.code)
            return t.FulfilRedemptionPayload(
                redemption=t.MerchantRedemption.from_row(row),
                cancellation=t.PointCancellation(
                    id=strawberry.ID(str(cancellation.id)), points=cancellation.points,
                    channel=cancellation.channel, at=cancellation.at,
                    lots=[t.CancelledLot(lot_id=strawberry.ID(lot["lot_id"]), points=lot["points"])
                          for lot in cancellation.lots]))

        return await run_mutation(ctx, t.FulfilRedemptionPayload, fulfil)
