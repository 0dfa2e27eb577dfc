"""The mall under real parallel connections: every task runs in its own session and transaction
on the real PostgreSQL, so only the database's locks and guards keep things exact."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text

from core.errors import DomainError
from core.idempotency import ReplayedRefusal, idempotent_transaction, run_idempotent
from mall.jobs import redemption_timeout_sweep
from mall import service as mall
from reductions.service import ReportItem
from tests.wallets.fixtures import make_world, publish_rule, report
from tests.mall.fixtures import (
    assert_ledger_exact,
    assert_stock_is_its_movements,
    make_listing,
    make_merchant,
    redeem,
    scalar,
)


async def funded_world(services, people: int, quantity: str = "25"):
    """`people` entrusted individuals, each credited 117 points (25 person-km by metro) in one batch."""
    world = await make_world(services, people=people)
    await publish_rule(services, daily_cap_points=100_000, days_ago=1)
    results = await report(services, world.operator_id,
                           [ReportItem(f"r-{u}", u, "SZ-METRO", quantity, services.clock.now()) for u in world.people])
    assert all(r.status.value == "credited" for r in results), results[:3]
    return world


async def attempt(services, wallet_id, listing_id, quantity: int = 1) -> str:
    try:
        redemption = await redeem(services, wallet_id, listing_id, quantity)
    except DomainError as refused:
        return refused.code
    return str(redemption.id)


async def test_two_hundred_people_race_for_the_last_fifty_units(services, clock):
    world = await funded_world(services, 200)
    people = list(world.people.values())
    merchant = await make_merchant(services)
    listing = await make_listing(services, merchant, price=10, stock=80)
    for wallet in people[:30]:  # 30 units already gone: 50 left
        await redeem(services, wallet, listing)
    assert await scalar(services, "SELECT stock_available FROM listings WHERE id = :l", l=listing) == 50

    observed: list[int] = []
    racing = True

    async def watch():
        """Another connection reading the stock throughout: it never goes below zero or back up."""
        while racing:
            observed.append(await scalar(services, "SELECT stock_available FROM listings WHERE id = :l", l=listing))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    outcomes = await asyncio.gather(*(attempt(services, wallet, listing) for wallet in people))
    racing = False
    await watcher

    won = [o for o in outcomes if o not in ("OUT_OF_STOCK",)]
    assert len(won) == 50 and len(set(won)) == 50
    assert all(uuid.UUID(o) for o in won)
    assert outcomes.count("OUT_OF_STOCK") == 150
    assert observed and min(observed) >= 0 and observed == sorted(observed, reverse=True)
    assert await scalar(services, "SELECT stock_available FROM listings WHERE id = :l", l=listing) == 0
    assert await scalar(services, "SELECT sum(delta) FROM stock_movements WHERE listing_id = :l", l=listing) == 0
    assert await scalar(services, "SELECT count(*) FROM stock_movements WHERE listing_id = :l AND kind = 'reserve'",
                        l=listing) == 80
    assert await scalar(services, "SELECT count(*) FROM redemptions WHERE listing_id = :l", l=listing) == 80
    # the losers' holds rolled back with them: one hold per redemption, 10 points each
    assert await scalar(services, "SELECT count(*) FROM point_holds") == 80
    assert await scalar(services, "SELECT sum(held_points) FROM wallets") == 800
    assert await scalar(services, "SELECT count(*) FROM wallets w WHERE held_points <>"
                        " 10 * (SELECT count(*) FROM redemptions r WHERE r.wallet_id = w.account_id)") == 0
    await assert_stock_is_its_movements(services)
    await assert_ledger_exact(services)


async def test_one_key_fired_twenty_times_at_once_redeems_once(services, clock):
    world = await funded_world(services, 1)
    [wallet] = world.people.values()
    merchant = await make_merchant(services)
    listing = await make_listing(services, merchant, price=10, stock=100)
    request = {"listingId": str(listing), "quantity": 2, "expectedPricePoints": 10, "expectedRevision": None}

    async def fire() -> tuple[dict, bool]:
        async with services.session_factory() as session:
            async with session.begin():
                async def act() -> dict:
                    row = await mall.redeem(session=session, clock=clock, wallet_id=wallet, listing_id=listing,
                                            quantity=2, expected_price_points=10)
                    return {"redemption_id": str(row.id)}

                return await run_idempotent(session=session, clock=clock, principal=f"acct:{wallet}",
                                            operation="redeem", key="same-key", request=request, action=act)

    results = await asyncio.gather(*(fire() for _ in range(20)))
    ids = {result["redemption_id"] for result, _ in results}
    assert len(ids) == 1
    assert sorted(replayed for _, replayed in results) == [False] + [True] * 19
    assert await scalar(services, "SELECT count(*) FROM redemptions WHERE wallet_id = :w", w=wallet) == 1
    assert await scalar(services, "SELECT count(*) FROM point_holds WHERE wallet_id = :w", w=wallet) == 1
    assert await scalar(services, "SELECT count(*) FROM idempotency_records") == 1
    assert await scalar(services, "SELECT held_points FROM wallets WHERE account_id = :w", w=wallet) == 20
    assert await scalar(services, "SELECT stock_available FROM listings WHERE id = :l", l=listing) == 98
    await assert_stock_is_its_movements(services)
    await assert_ledger_exact(services)


async def test_redemptions_racing_for_one_wallets_points_never_overdraw_it(services, clock):
    world = await funded_world(services, 1)  # 117 points
    [wallet] = world.people.values()
    merchant = await make_merchant(services)
    listings = [await make_listing(services, merchant, price=100, stock=5, title=f"商品{n}") for n in range(2)]

    outcomes = await asyncio.gather(*(attempt(services, wallet, listing) for listing in listings))
    assert sorted(o == "INSUFFICIENT_POINTS" for o in outcomes) == [False, True]
    available, held = (await scalar(services, "SELECT available_points FROM wallets WHERE account_id = :w", w=wallet),
                       await scalar(services, "SELECT held_points FROM wallets WHERE account_id = :w", w=wallet))
    assert (available, held) == (17, 100)
    assert await scalar(services, "SELECT sum(stock_available) FROM listings") == 9

    # many more at once, with withdrawals giving points back in between: never below zero
    for n in range(8):
        listings.append(await make_listing(services, merchant, price=30, stock=3, title=f"小商品{n}"))
    [first] = [o for o in outcomes if o != "INSUFFICIENT_POINTS"]

    async def withdraw_first():
        async with services.session_factory() as session:
            async with session.begin():
                await mall.withdraw_redemption(session=session, clock=clock, wallet_id=wallet,
                                               redemption_id=uuid.UUID(first))

    results = await asyncio.gather(withdraw_first(), *(attempt(services, wallet, listing) for listing in listings[2:]),
                                   *(attempt(services, wallet, listing) for listing in listings[2:]))
    won = [o for o in results[1:] if o != "INSUFFICIENT_POINTS"]
    assert all(o != "OUT_OF_STOCK" for o in results[1:])
    # 17 points before the withdrawal lands, 117 after: at most three 30-point redemptions
    assert 0 <= len(won) <= 3
    available = await scalar(services, "SELECT available_points FROM wallets WHERE account_id = :w", w=wallet)
    held = await scalar(services, "SELECT held_points FROM wallets WHERE account_id = :w", w=wallet)
    assert available >= 0 and held == 30 * len(won) and available + held == 117
    await assert_stock_is_its_movements(services)
    await assert_ledger_exact(services)


async def test_one_person_racing_past_the_per_person_limit_gets_only_the_limit(services, clock):
    world = await funded_world(services, 1)  # 117 points
    [wallet] = world.people.values()
    merchant = await make_merchant(services)
    listing = await make_listing(services, merchant, price=5, stock=50, per_person_limit=3)
    outcomes = await asyncio.gather(*(attempt(services, wallet, listing) for _ in range(12)),
                                    attempt(services, wallet, listing, quantity=2))
    won = [o for o in outcomes if o != "LIMIT_REACHED"]
    assert all(uuid.UUID(o) for o in won)
    taken = await scalar(services, "SELECT sum(quantity) FROM redemptions WHERE wallet_id = :w", w=wallet)
    assert taken == 3 and len(won) in (2, 3)
    assert await scalar(services, "SELECT stock_available FROM listings WHERE id = :l", l=listing) == 47
    assert await scalar(services, "SELECT held_points FROM wallets WHERE account_id = :w", w=wallet) == 15
    await assert_stock_is_its_movements(services)
    await assert_ledger_exact(services)


async def test_fulfil_withdraw_decline_and_timeout_racing_on_one_redemption_settle_it_once(services, clock):
    world = await funded_world(services, 10)
    people = list(world.people.values())
    merchant = await make_merchant(services)
    listing = await make_listing(services, merchant, price=50, stock=10)
    redemptions = [await redeem(services, wallet, listing) for wallet in people]
    clock.advance(minutes=30)  # exactly at held_until: due for the sweep, too late to fulfil

    async def settle(kind: str, redemption) -> str:
        try:
            async with services.session_factory() as session:
                async with session.begin():
                    if kind == "fulfil":
                        await mall.fulfil(session=session, clock=clock, merchant_id=merchant,
                                          code=redemption.voucher_code)
                    elif kind == "withdraw":
                        await mall.withdraw_redemption(session=session, clock=clock, wallet_id=redemption.wallet_id,
                                                       redemption_id=redemption.id)
                    else:
                        await mall.decline_redemption(session=session, clock=clock, merchant_id=merchant,
                                                      redemption_id=redemption.id, reason="closed today")
            return kind
        except DomainError as refused:
            return refused.code

    # half of them before their time is up (fulfil can win), the other half after
    clock.advance(minutes=-1)
    early = await asyncio.gather(*(settle(kind, r) for r in redemptions[:5] for kind in ("fulfil", "withdraw", "decline")))
    clock.advance(minutes=1)
    late = await asyncio.gather(redemption_timeout_sweep(session_factory=services.session_factory, clock=clock),
                                *(settle(kind, r) for r in redemptions[5:] for kind in ("fulfil", "withdraw", "decline")))
    for n in range(5):
        trio = early[3 * n:3 * n + 3]
        assert sum(o in ("fulfil", "withdraw", "decline") for o in trio) == 1, trio
        assert all(o in ("fulfil", "withdraw", "decline", "NOT_HELD") for o in trio), trio
    swept, late = late[0], late[1:]
    for n in range(5):
        trio = late[3 * n:3 * n + 3]
        assert trio[0] in ("RESERVATION_EXPIRED", "NOT_HELD"), trio
        assert all(o in ("withdraw", "decline", "RESERVATION_EXPIRED", "NOT_HELD") for o in trio), trio
        assert sum(o in ("withdraw", "decline") for o in trio) <= 1, trio
    assert swept == 5 - sum(o in ("withdraw", "decline") for o in late)

    statuses = dict((await _all(services, "SELECT status, count(*) FROM redemptions GROUP BY status")))
    fulfilled = statuses.get("fulfilled", 0)
    assert fulfilled == early.count("fulfil")
    assert sum(statuses.values()) == 10 and "held" not in statuses
    assert await scalar(services, "SELECT count(*) FROM point_cancellations") == fulfilled
    assert await scalar(services, "SELECT count(*) FROM point_holds WHERE status = 'pending'") == 0
    assert await scalar(services, "SELECT coalesce(sum(points), 0) FROM point_cancellations") == 50 * fulfilled
    assert await scalar(services, "SELECT stock_available FROM listings WHERE id = :l", l=listing) == 10 - fulfilled
    audit = await assert_ledger_exact(services)
    assert audit.totals.cancelled == 50 * fulfilled and audit.totals.held == 0
    await assert_stock_is_its_movements(services)


async def _all(services, sql: str):
    async with services.session_factory() as session:
        return (await session.execute(text(sql))).all()


async def test_losing_the_last_unit_at_commit_is_out_of_stock_and_leaves_nothing(services):
    """Two redemptions both see the last unit; the stock is taken when each commits. The second
    commit finds none left: it fails as OUT_OF_STOCK and rolls back its hold and voucher."""
    world = await funded_world(services, 2)
    first, second = world.people.values()
    merchant = await make_merchant(services)
    listing = await make_listing(services, merchant, price=10, stock=1)
    before = await scalar(services, "SELECT available_points FROM wallets WHERE account_id = :w", w=second)

    async with services.session_factory() as winner, services.session_factory() as loser:
        await winner.begin()
        await loser.begin()
        await mall.redeem(session=winner, clock=services.clock, wallet_id=first, listing_id=listing, quantity=1,
                          expected_price_points=10)
        await mall.redeem(session=loser, clock=services.clock, wallet_id=second, listing_id=listing, quantity=1,
                          expected_price_points=10)
        await winner.commit()
        try:
            await loser.commit()
        except DomainError as refused:
            outcome = (refused.code, refused.field)
        else:
            outcome = "committed"
    assert outcome == ("OUT_OF_STOCK", "quantity")
    assert await scalar(services, "SELECT stock_available FROM listings WHERE id = :l", l=listing) == 0
    assert await scalar(services, "SELECT count(*) FROM redemptions WHERE wallet_id = :w", w=second) == 0
    assert await scalar(services, "SELECT count(*) FROM point_holds WHERE wallet_id = :w", w=second) == 0
    assert await scalar(services, "SELECT available_points FROM wallets WHERE account_id = :w", w=second) == before
    await assert_stock_is_its_movements(services)
    await assert_ledger_exact(services)


async def test_a_key_refused_out_of_stock_at_commit_stays_refused_after_restock(services):
    """Issue 8, under mixed load: a key refused OUT_OF_STOCK when its commit lost the last unit
    later got a redemption, after a restock. The refusal is the key's answer (stored in a
    transaction of its own, the refused one being gone), so the retry gets it again."""
    world = await funded_world(services, 2)
    first, second = world.people.values()
    merchant = await make_merchant(services)
    listing = await make_listing(services, merchant, price=10, stock=1)
    saw_the_last_unit, winner_committed = asyncio.Event(), asyncio.Event()

    def redeeming(wallet, *, then: asyncio.Event | None = None, wait: asyncio.Event | None = None):
        async def action(session) -> dict:
            row = await mall.redeem(session=session, clock=services.clock, wallet_id=wallet, listing_id=listing,
                                    quantity=1, expected_price_points=10)
            if then is not None:
                then.set()
            if wait is not None:
                await wait.wait()  # commit only after the other redemption took the unit
            return {"redemption_id": str(row.id)}
        return action

    async def answer(session, result: dict) -> str:
        return result["redemption_id"]

    async def attempt(wallet, key: str, action) -> str:
        return await idempotent_transaction(
            session_factory=services.session_factory, clock=services.clock, principal=f"acct:{wallet}",
            operation="redeem", key=key, request={"listingId": str(listing), "quantity": 1}, action=action,
            answer=answer)

    loser = asyncio.create_task(attempt(second, "lost-at-commit",
                                        redeeming(second, then=saw_the_last_unit, wait=winner_committed)))
    await saw_the_last_unit.wait()
    await attempt(first, "won", redeeming(first))
    winner_committed.set()
    try:
        await loser
    except DomainError as refused:
        outcome = (refused.code, refused.field)
    else:
        outcome = "committed"
    assert outcome == ("OUT_OF_STOCK", "quantity")

    async with services.session_factory() as session:
        async with session.begin():
            await mall.restock(session=session, clock=services.clock, merchant_id=merchant, listing_id=listing,
                               quantity=5)
    try:
        await attempt(second, "lost-at-commit", redeeming(second))
    except ReplayedRefusal as replayed:
        retried = (replayed.code, replayed.field)
    else:
        retried = "redeemed"
    assert retried == ("OUT_OF_STOCK", "quantity")
    assert await scalar(services, "SELECT count(*) FROM redemptions WHERE wallet_id = :w", w=second) == 0
    assert await scalar(services, "SELECT stock_available FROM listings WHERE id = :l", l=listing) == 5
    # asking again, with a new key, is a new request
    assert await attempt(second, "asked-again", redeeming(second))
    assert await scalar(services, "SELECT stock_available FROM listings WHERE id = :l", l=listing) == 4
    await assert_stock_is_its_movements(services)
    await assert_ledger_exact(services)
