"""A suspension recorded while people redeem, on real parallel connections: whatever the
interleaving, no point is lost or made, the stock is its movements, and nothing of the suspended
merchant is fulfilled or stays held once its reservations are released or time out."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import text

from core.documents import Document
from core.errors import DomainError
from mall import service as mall
from mall.jobs import redemption_timeout_sweep
from supervision import violations
from tests.mall.fixtures import (assert_ledger_exact, assert_stock_is_its_movements, make_listing, make_merchant,
                                 scalar)
from tests.mall.test_mall_races import attempt, funded_world
from tests.neutrality.fixtures import accounts


async def test_redemptions_racing_a_suspension(services, clock):
    world = await funded_world(services, 40)
    people = list(world.people.values())
    merchant = await make_merchant(services)
    goods = await make_listing(services, merchant, price=10, stock=100)
    service = await make_listing(services, merchant, price=5, stock=None, title="洗车服务")
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    for wallet in people[:10]:  # held before the suspension
        await attempt(services, wallet, goods)

    async def suspend() -> None:
        async with services.session_factory() as session:
            async with session.begin():
                await violations.record_violation(
                    session=session, clock=clock, regulator_id=regulator_id, organisation_id=merchant,
                    role="merchant", article=24, finding="虚假宣传", documents=[Document("a.pdf", "ee" * 32, 5)],
                    sanction="suspension", suspended_until=clock.now() + timedelta(days=3))
        await violations.release_held_redemptions(session_factory=services.session_factory, clock=clock,
                                                  whose={"merchant_id": merchant}, until=None)

    outcomes = await asyncio.gather(suspend(), *[attempt(services, w, goods if i % 2 else service)
                                                 for i, w in enumerate(people[10:])])
    refused = [o for o in outcomes[1:] if o == "NOT_AVAILABLE"]
    assert all(o == "NOT_AVAILABLE" or uuid.UUID(o) for o in outcomes[1:])  # a refusal, or a redemption
    async with services.session_factory() as session:
        held = list((await session.execute(text(
            "SELECT voucher_code FROM redemptions WHERE merchant_id = :m AND status = 'held'"), {"m": merchant})
        ).scalars())
        released = (await session.execute(text(
            "SELECT count(*) FROM redemptions WHERE merchant_id = :m AND status = 'released'"), {"m": merchant})
        ).scalar_one()
    assert released >= 10 and released + len(held) + len(refused) == 40
    # a redemption that raced the suspension and is still held cannot be fulfilled while it runs
    for code in held:
        async with services.session_factory() as session:
            async with session.begin():
                try:
                    await mall.fulfil(session=session, clock=clock, merchant_id=merchant, code=code)
                except DomainError as refusal:
                    assert refusal.code == "NOT_AVAILABLE"
                else:
                    raise AssertionError("a suspended merchant fulfilled a redemption")
    clock.advance(hours=1)  # reservations time out; the sweep releases what is left
    await redemption_timeout_sweep(session_factory=services.session_factory, clock=clock)
    async with services.session_factory() as session:
        assert (await session.execute(text(
            "SELECT count(*) FROM redemptions WHERE merchant_id = :m AND status IN ('held', 'fulfilled')"),
            {"m": merchant})).scalar_one() == 0
    await assert_ledger_exact(services)
    await assert_stock_is_its_movements(services)
    assert await scalar(services, "SELECT stock_available FROM listings WHERE id = :l", l=goods) == 100
