"""Domain-level set-up for mall tests: a merchant seeded through accounts/seeding.py, listings
created and activated through mall.service, and the checks every mall test shares."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from accounts.models import Role
from accounts.seeding import seed_organisations
from core.bulk import driver
from mall import service as mall
from wallets.audit import Audit, ledger_audit


async def make_merchant(services) -> uuid.UUID:
    merchant_id = uuid.uuid4()
    now = services.clock.now()
    async with services.session_factory() as session:
        async with session.begin():
            await seed_organisations(await driver(session), ids=[merchant_id], roles=[Role.MERCHANT.value],
                                     when=now, name="Merchant")
    return merchant_id


async def make_listing(services, merchant_id: uuid.UUID, *, price: int, stock: int | None,
                       per_person_limit: int | None = None, title: str = "竹制牙刷", channel: str = "platform",
                       app_operator_id: uuid.UUID | None = None) -> uuid.UUID:
    async with services.session_factory() as session:
        async with session.begin():
            listing = await mall.create_listing(
                session=session, clock=services.clock, merchant_id=merchant_id,
                kind="goods" if stock is not None else "service",
                terms=mall.ListingTerms(title=title, category="daily", price_points=price,
                                        per_person_limit=per_person_limit),
                stock=stock, channel=channel, app_operator_id=app_operator_id)
            await mall.set_listing_status(session=session, clock=services.clock, merchant_id=merchant_id,
                                          listing_id=listing.id, status="active")
            return listing.id


async def redeem(services, wallet_id, listing_id, quantity: int = 1, **kwargs):
    """Redeem as a person shown the listing's price now (unless the caller states a price or revision)."""
    async with services.session_factory() as session:
        async with session.begin():
            if "expected_price_points" not in kwargs and "expected_revision" not in kwargs:
                kwargs["expected_price_points"] = await price_now(session, listing_id)
            return await mall.redeem(session=session, clock=services.clock, wallet_id=wallet_id,
                                     listing_id=listing_id, quantity=quantity, **kwargs)


async def price_now(session, listing_id) -> int:
    """The listing's unit price as a front-end shows it before the person redeems."""
    return (await session.execute(text("SELECT price_points FROM listings WHERE id = :l"),
                                  {"l": listing_id})).scalar_one()


async def scalar(services, sql: str, **params):
    async with services.session_factory() as session:
        return (await session.execute(text(sql), params)).scalar_one()


async def assert_ledger_exact(services) -> Audit:
    async with services.session_factory() as session:
        audit = await ledger_audit(session=session)
    assert audit.ok, audit
    return audit


async def assert_stock_is_its_movements(services) -> None:
    """Every listing's stock is the sum of its movements, and never negative."""
    async with services.session_factory() as session:
        rows = (await session.execute(text(
            "SELECT l.id, l.stock_available, coalesce(sum(m.delta), 0) FROM listings l"
            " LEFT JOIN stock_movements m ON m.listing_id = l.id GROUP BY l.id, l.stock_available"))).all()
    for listing_id, stock, moved in rows:
        if stock is None:
            assert moved == 0, listing_id
        else:
            assert stock >= 0 and stock == moved, (listing_id, stock, moved)
