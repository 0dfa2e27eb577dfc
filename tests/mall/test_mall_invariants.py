"""The mall's invariants under random interleavings (hypothesis) of redeem, withdraw, decline,
fulfil, restock, reservation time-outs and lot expiry, on the real PostgreSQL.

After every step:
- each listing's stock is never negative and equals initial + restocks - units reserved and not
  released, which is also the sum of its stock movements;
- each redemption's hold drew exactly its points, and held + cancelled + released == drawn, lot by
  lot: a released hold gave back exactly the lots it drew, a fulfilled one cancelled exactly them
  (and its cancellation record names them);
- wallets hold exactly their pending holds, and ledger_audit recomputes every counter.
Every outcome is also predicted from a model, so a refusal for the wrong reason fails too."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from core.errors import DomainError
from mall.jobs import redemption_timeout_sweep
from wallets.jobs import expiry_sweep
from mall import service as mall
from reductions.service import ReportItem
from tests.wallets.fixtures import make_world, publish_rule, report
from tests.mall.fixtures import assert_ledger_exact, make_listing, make_merchant

PEOPLE = 3
# (price, stock or None for unlimited, per-person limit, channel)
LISTINGS = [(30, 4, 2, "platform"), (50, 2, None, "app"), (20, None, 3, "platform")]

# one step: (kind, a, b, c, e), read by kind (see the loop); kinds weighted by repetition, since
# most interesting interleavings need something held first
KINDS = ["redeem"] * 4 + ["fulfil"] * 2 + ["withdraw", "decline", "restock", "credit", "timeout", "expire"]
CREDITS = ["3", "12.4", "25"]  # person-km by metro: 14, 58 and 117 points
TIMEOUTS = [10, 31, 31]  # minutes, then the time-out sweep
EXPIRIES = [1, 364, 366]  # days, then the expiry sweep (lots are valid for one year)
steps = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 20), st.integers(0, 20), st.integers(1, 3),
                           st.integers(0, 2)), min_size=6, max_size=24)


@dataclass
class Held:
    id: uuid.UUID
    wallet: uuid.UUID
    listing: int
    quantity: int
    points: int
    code: str
    held_until: datetime
    status: str = "held"


class Model:
    def __init__(self, wallets, listings, merchant):
        self.wallets, self.listings, self.merchant = wallets, listings, merchant
        self.stock = {n: LISTINGS[n][1] for n in range(len(LISTINGS))}
        self.initial = dict(self.stock)
        self.restocked = defaultdict(int)
        self.redemptions: list[Held] = []

    def taken(self, wallet, listing: int) -> int:
        return sum(r.quantity for r in self.redemptions
                   if r.wallet == wallet and r.listing == listing and r.status in ("held", "fulfilled"))

    def pick(self, n: int, any_status: bool) -> Held | None:
        """Mostly one still held (the interesting case), sometimes any (settled ones must refuse)."""
        held = [r for r in self.redemptions if r.status == "held"]
        pool = self.redemptions if any_status or not held else held
        return pool[n % len(pool)] if pool else None


async def usable_points(services, wallet) -> int:
    async with services.session_factory() as session:
        return (await session.execute(text(
            "SELECT coalesce(sum(points_remaining), 0) FROM point_lots WHERE wallet_id = :w AND expires_at > :now"),
            {"w": wallet, "now": services.clock.now()})).scalar_one()


async def in_transaction(services, fn, **kwargs):
    async with services.session_factory() as session:
        async with session.begin():
            return await fn(session=session, clock=services.clock, **kwargs)


async def check(services, model: Model) -> None:
    listing_ids = list(model.listings)
    async with services.session_factory() as session:
        # stock: never negative; initial + restocks - reserved-not-released; the sum of its movements
        rows = (await session.execute(text(
            "SELECT l.id, l.stock_available, coalesce((SELECT sum(delta) FROM stock_movements m"
            " WHERE m.listing_id = l.id), 0),"
            " (SELECT coalesce(sum(quantity), 0) FROM redemptions r WHERE r.listing_id = l.id"
            "  AND r.status IN ('held', 'fulfilled'))"
            " FROM listings l WHERE l.id = ANY(:ids)"), {"ids": listing_ids})).all()
        for listing_id, stock, moved, taken in rows:
            n = model.listings.index(listing_id)
            if model.initial[n] is None:
                assert stock is None and moved == 0
                continue
            expected = model.initial[n] + model.restocked[n] - sum(
                r.quantity for r in model.redemptions if r.listing == n and r.status in ("held", "fulfilled"))
            assert stock >= 0 and stock == moved == expected == model.initial[n] + model.restocked[n] - taken, \
                (n, stock, moved, expected, taken)
            assert model.stock[n] == stock

        # redemptions, their holds, draws and journal entries, lot by lot
        rows = (await session.execute(text(
            """
            SELECT r.id, r.status, r.points, h.status AS hold_status, h.points AS hold_points,
                   (SELECT coalesce(jsonb_object_agg(d.lot_id, d.points), '{}') FROM hold_draws d
                    WHERE d.hold_id = h.id) AS drawn,
                   (SELECT coalesce(jsonb_object_agg(lot_id, p), '{}') FROM (SELECT lot_id, sum(points) AS p
                    FROM wallet_entries WHERE hold_id = h.id AND kind = 'hold' GROUP BY lot_id) e) AS holds,
                   (SELECT coalesce(jsonb_object_agg(lot_id, p), '{}') FROM (SELECT lot_id, sum(points) AS p
                    FROM wallet_entries WHERE hold_id = h.id AND kind = 'release' GROUP BY lot_id) e) AS released,
                   (SELECT coalesce(jsonb_object_agg(lot_id, p), '{}') FROM (SELECT lot_id, sum(points) AS p
                    FROM wallet_entries WHERE hold_id = h.id AND kind = 'cancel' GROUP BY lot_id) e) AS cancelled,
                   (SELECT coalesce(sum(points), 0) FROM wallet_entries WHERE hold_id = h.id AND kind = 'expire')
                    AS expired_on_release,
                   c.points AS record_points, c.lots AS record_lots
            FROM redemptions r JOIN point_holds h ON h.id = r.hold_id
            LEFT JOIN point_cancellations c ON c.redemption_id = r.id
            WHERE r.listing_id = ANY(:ids)
            """), {"ids": listing_ids})).mappings().all()
        by_id = {r.id: r for r in model.redemptions}
        assert {row["id"] for row in rows} == set(by_id)
        for row in rows:
            expected = by_id[row["id"]]
            assert row["status"] == expected.status, (row["status"], expected)
            drawn = {k: int(v) for k, v in row["drawn"].items()}
            assert sum(drawn.values()) == row["hold_points"] == row["points"] == expected.points
            assert {k: int(v) for k, v in row["holds"].items()} == drawn
            released = {k: int(v) for k, v in row["released"].items()}
            cancelled = {k: int(v) for k, v in row["cancelled"].items()}
            held = drawn if row["hold_status"] == "pending" else {}
            for lot in drawn:  # held + cancelled + released == drawn, lot by lot
                assert held.get(lot, 0) + cancelled.get(lot, 0) + released.get(lot, 0) == drawn[lot], row
            assert set(released) | set(cancelled) <= set(drawn)
            assert row["expired_on_release"] <= sum(released.values())
            hold_status = {"held": "pending", "fulfilled": "posted"}.get(row["status"], "voided")
            assert row["hold_status"] == hold_status
            if row["status"] == "fulfilled":
                assert cancelled == drawn and not released
                assert row["record_points"] == row["points"]
                assert {lot["lot_id"]: lot["points"] for lot in row["record_lots"]} == drawn
            else:
                assert row["record_points"] is None and not cancelled
                assert released == ({} if row["status"] == "held" else drawn)

        # wallets hold exactly their pending holds
        rows = (await session.execute(text(
            "SELECT w.account_id, w.held_points, w.available_points,"
            " (SELECT coalesce(sum(points), 0) FROM point_holds h WHERE h.wallet_id = w.account_id"
            "  AND h.status = 'pending') FROM wallets w WHERE w.account_id = ANY(:w)"),
            {"w": model.wallets})).all()
        for _, held, available, pending in rows:
            assert held == pending and available >= 0
    await assert_ledger_exact(services)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(plan=steps)
async def test_random_interleavings_keep_stock_and_points_exact(services, clock, plan):
    clock.advance(days=1)
    tag = uuid.uuid4().hex[:6]
    world = await make_world(services, people=PEOPLE, prefix=f"{tag}-")
    await publish_rule(services, validity_years=1, daily_cap_points=100_000, days_ago=1)
    users = list(world.people)
    await report(services, world.operator_id,  # 234 points each
                 [ReportItem(f"{tag}-seed-{u}-{k}", u, "SZ-METRO", "25", clock.now()) for u in users for k in (1, 2)])
    merchant = await make_merchant(services)
    listings = [await make_listing(services, merchant, price=price, stock=stock, per_person_limit=limit,
                                   channel=channel, title=f"{tag}-{n}",
                                   app_operator_id=world.operator_id if channel == "app" else None)
                for n, (price, stock, limit, channel) in enumerate(LISTINGS)]
    model = Model([world.people[u] for u in users], listings, merchant)
    await check(services, model)

    for n, step in enumerate(plan):
        kind, a, b, c, e = step
        now = clock.now()
        if kind == "redeem":
            who, which, quantity = a % PEOPLE, b % len(LISTINGS), c
            wallet = model.wallets[who]
            price, _, limit, _ = LISTINGS[which]
            if limit is not None and model.taken(wallet, which) + quantity > limit:
                predicted = "LIMIT_REACHED"
            elif await usable_points(services, wallet) < price * quantity:
                predicted = "INSUFFICIENT_POINTS"
            elif model.stock[which] is not None and model.stock[which] < quantity:
                predicted = "OUT_OF_STOCK"
            else:
                predicted = "ok"
            try:
                row = await in_transaction(services, mall.redeem, wallet_id=wallet, listing_id=listings[which],
                                           quantity=quantity, expected_price_points=price)
                outcome = "ok"
            except DomainError as refused:
                outcome = refused.code
            assert outcome == predicted, (step, outcome, predicted)
            if outcome == "ok":
                assert row.points == price * quantity and row.held_until == now + timedelta(minutes=30)
                model.redemptions.append(Held(row.id, wallet, which, quantity, row.points, row.voucher_code,
                                              row.held_until))
                if model.stock[which] is not None:
                    model.stock[which] -= quantity
                await check_soonest_first(services, row.hold_id)
        elif kind in ("withdraw", "decline", "fulfil"):
            target = model.pick(a, any_status=b % 3 == 0)
            if target is None:
                continue
            if kind == "fulfil" and target.status == "fulfilled":
                predicted = "ok"  # the merchant's retry replays the fulfilment; nothing moves again
            elif target.status != "held":
                predicted = "NOT_HELD"
            elif kind == "fulfil" and target.held_until <= now:
                predicted = "RESERVATION_EXPIRED"
            else:
                predicted = "ok"
            try:
                if kind == "withdraw":
                    await in_transaction(services, mall.withdraw_redemption, wallet_id=target.wallet,
                                         redemption_id=target.id)
                elif kind == "decline":
                    await in_transaction(services, mall.decline_redemption, merchant_id=merchant,
                                         redemption_id=target.id, reason="sold out at the counter")
                else:
                    await in_transaction(services, mall.fulfil, merchant_id=merchant, code=target.code)
                outcome = "ok"
            except DomainError as refused:
                outcome = refused.code
            assert outcome == predicted, (step, outcome, predicted, target)
            if outcome == "ok":
                target.status = {"withdraw": "cancelled", "decline": "declined", "fulfil": "fulfilled"}[kind]
                if kind != "fulfil" and model.stock[target.listing] is not None:
                    model.stock[target.listing] += target.quantity
        elif kind == "restock":
            which, quantity = a % 2, c
            await in_transaction(services, mall.restock, merchant_id=merchant, listing_id=listings[which],
                                 quantity=quantity)
            model.stock[which] += quantity
            model.restocked[which] += quantity
        elif kind == "credit":
            await report(services, world.operator_id,
                         [ReportItem(f"{tag}-c{n}", users[a % PEOPLE], "SZ-METRO", CREDITS[e], clock.now())])
        elif kind == "timeout":
            clock.advance(minutes=TIMEOUTS[e])
            due = [r for r in model.redemptions if r.status == "held" and r.held_until <= clock.now()]
            expired = await redemption_timeout_sweep(session_factory=services.session_factory, clock=clock)
            assert expired >= len(due)  # other examples' leftovers may time out too
            for r in due:
                r.status = "expired"
                if model.stock[r.listing] is not None:
                    model.stock[r.listing] += r.quantity
        elif kind == "expire":
            clock.advance(days=EXPIRIES[e])
            await expiry_sweep(session_factory=services.session_factory, clock=clock)
        await check(services, model)

    # in the end every reservation settles: time them all out, and nothing is left held
    clock.advance(minutes=31)
    await redemption_timeout_sweep(session_factory=services.session_factory, clock=clock)
    for r in model.redemptions:
        if r.status == "held":
            r.status = "expired"
            if model.stock[r.listing] is not None:
                model.stock[r.listing] += r.quantity
    await check(services, model)
    for n, (_, stock, _, _) in enumerate(LISTINGS):
        if stock is not None:
            sold = sum(r.quantity for r in model.redemptions if r.listing == n and r.status == "fulfilled")
            assert model.stock[n] == stock + model.restocked[n] - sold


async def check_soonest_first(services, hold_id) -> None:
    """No usable lot expiring before the latest lot the hold drew from was left with points."""
    async with services.session_factory() as session:
        latest, wallet = (await session.execute(text(
            "SELECT max(l.expires_at), d.wallet_id FROM hold_draws d JOIN point_lots l ON l.id = d.lot_id"
            " WHERE d.hold_id = :h GROUP BY d.wallet_id"), {"h": hold_id})).one()
        skipped = (await session.execute(text(
            "SELECT count(*) FROM point_lots WHERE wallet_id = :w AND points_remaining > 0"
            " AND expires_at > :now AND expires_at < :latest"),
            {"w": wallet, "now": services.clock.now(), "latest": latest})).scalar_one()
    assert skipped == 0


async def test_a_lot_expiring_while_its_points_are_held(services, clock):
    """The points were validly set aside before the lot expired: fulfilment still cancels them;
    a withdrawal gives them back to their lot, which expires them at once (never silently)."""
    world = await make_world(services, people=1)
    await publish_rule(services, validity_years=1, daily_cap_points=100_000, days_ago=1)
    [(user, wallet)] = world.people.items()
    await report(services, world.operator_id, [ReportItem("seed", user, "SZ-METRO", "25", clock.now())])  # 117
    merchant = await make_merchant(services)
    listing = await make_listing(services, merchant, price=30, stock=5)
    async with services.session_factory() as session:
        [expires_at] = (await session.execute(text("SELECT expires_at FROM point_lots WHERE wallet_id = :w"),
                                              {"w": wallet})).scalars().all()
    clock.set(expires_at - timedelta(minutes=10))
    used = await in_transaction(services, mall.redeem, wallet_id=wallet, listing_id=listing, quantity=1,
                                expected_price_points=30)
    returned = await in_transaction(services, mall.redeem, wallet_id=wallet, listing_id=listing, quantity=1,
                                    expected_price_points=30)
    clock.set(expires_at + timedelta(minutes=5))  # the lot has expired; the reservations have not
    try:
        await in_transaction(services, mall.redeem, wallet_id=wallet, listing_id=listing, quantity=1,
                             expected_price_points=30)
        raise AssertionError("redeemed from an expired lot")
    except DomainError as refused:
        assert refused.code == "INSUFFICIENT_POINTS"
    _, cancellation = await in_transaction(services, mall.fulfil, merchant_id=merchant, code=used.voucher_code)
    assert cancellation.points == 30
    await in_transaction(services, mall.withdraw_redemption, wallet_id=wallet, redemption_id=returned.id)
    async with services.session_factory() as session:
        kinds = dict((await session.execute(text(
            "SELECT kind, sum(points) FROM wallet_entries WHERE hold_id = :h GROUP BY kind"),
            {"h": returned.hold_id})).all())
        assert kinds == {"hold": 30, "release": 30, "expire": 30}
        row = (await session.execute(text(
            "SELECT available_points, held_points FROM wallets WHERE account_id = :w"), {"w": wallet})).one()
        assert tuple(row) == (57, 0)  # 57 still awaiting the sweep; the released 30 expired at once
    await expiry_sweep(session_factory=services.session_factory, clock=clock)
    audit = await assert_ledger_exact(services)
    assert (audit.totals.issued, audit.totals.cancelled, audit.totals.expired, audit.totals.outstanding) == \
        (117, 30, 87, 0)
    async with services.session_factory() as session:
        stock = (await session.execute(text("SELECT stock_available FROM listings WHERE id = :l"),
                                       {"l": listing})).scalar_one()
    assert stock == 4
