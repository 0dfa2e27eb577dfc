"""The point ledger at the domain level: validity, day lots, holds, release, cancel, expiry, audit."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text

from core.clock import BUSINESS_TZ
from core.errors import DomainError
from reductions.service import ItemStatus, ReportItem
from tests.wallets.fixtures import make_world, publish_rule, report
from wallets import post, read, release, validity
from wallets.audit import ledger_audit
from wallets.hold import place_hold
from wallets.jobs import expiry_sweep
from wallets.models import ExpiryRun, WalletEntry


def ride(report_id: str, user: str, km: str, at: datetime, code: str = "SZ-METRO") -> ReportItem:
    return ReportItem(report_id, user, code, km, at)


async def summary(services, wallet_id):
    async with services.session_factory() as session:
        return await read.wallet_summary(session=session, clock=services.clock, account_id=wallet_id)


async def audit_ok(services):
    async with services.session_factory() as session:
        audit = await ledger_audit(session=session)
    assert audit.ok, audit
    return audit


# --- validity ----------------------------------------------------------------------------------


def test_expiry_is_local_midnight_on_the_anniversary():
    expires = validity.lot_expiry(date(2026, 3, 2), 10)
    assert expires == datetime(2036, 3, 2, 0, 0, tzinfo=BUSINESS_TZ)
    assert expires.tzinfo is timezone.utc or expires.utcoffset() == timedelta(0)
    assert expires == datetime(2036, 3, 1, 16, 0, tzinfo=timezone.utc)


def test_leap_day_credits_expire_on_28_february():
    assert validity.lot_expiry(date(2028, 2, 29), 10) == datetime(2038, 2, 28, 0, 0, tzinfo=BUSINESS_TZ)
    assert validity.lot_expiry(date(2028, 2, 29), 3) == datetime(2031, 2, 28, 0, 0, tzinfo=BUSINESS_TZ)
    assert validity.lot_expiry(date(2028, 2, 29), 4) == datetime(2032, 2, 29, 0, 0, tzinfo=BUSINESS_TZ)


def test_validity_is_never_more_than_ten_years():
    with pytest.raises(DomainError):
        validity.lot_expiry(date(2026, 1, 1), 11)
    for day in (date(2026, 1, 1), date(2028, 2, 29), date(2027, 12, 31)):
        issued_local = datetime.combine(day, datetime.min.time(), tzinfo=BUSINESS_TZ)
        assert validity.lot_expiry(day, 10) - issued_local <= timedelta(days=3653)


# --- credits -----------------------------------------------------------------------------------


async def test_fractions_carry_over_and_become_points(services, clock):
    world = await make_world(services)
    await publish_rule(services)
    # 0.1 km x 46.8 g = 4.68 g = 0.468 points each time; three rides make 1.404 points
    results = []
    for n in range(3):
        results += await report(services, world.operator_id, [ride(f"r{n}", "u-0", "0.1", clock.now())])
    assert [r.points for r in results] == [0, 0, 1]
    s = await summary(services, world.people["u-0"])
    assert s.balance == 1
    assert (s.remainder.num, s.remainder.den) == (101, 250)  # 0.404 exactly
    assert s.lifetime_reduction_mg == 3 * 4_680
    await audit_ok(services)


async def test_one_lot_per_day_however_many_reports(services, clock):
    world = await make_world(services)
    await publish_rule(services, daily_cap_points=10_000)
    items = [ride(f"r{n}", "u-0", "5", clock.now() - timedelta(minutes=n)) for n in range(50)]
    results = await report(services, world.operator_id, items)
    assert {r.lot_id for r in results} == {results[0].lot_id}
    clock.advance(days=1)
    [next_day] = await report(services, world.operator_id, [ride("r-next", "u-0", "5", clock.now())])
    assert next_day.lot_id != results[0].lot_id
    async with services.session_factory() as session:
        page = await read.list_lots(session=session, account_id=world.people["u-0"], first=10, after=None)
    assert [lot.node.points_credited for lot in page.items] == [1170, 23]  # 50 x 23.4, then 23.4


async def test_daily_cap_credits_up_to_the_cap_and_records_the_rest(services, clock):
    world = await make_world(services)
    await publish_rule(services, daily_cap_points=100)
    # 30 km = 1,404 g = 140 points; capped at 100
    [first] = await report(services, world.operator_id, [ride("a", "u-0", "30", clock.now())])
    assert first.points == 100 and first.uncredited_reason == "DAILY_CAP_REACHED"
    assert first.uncredited_reduction_mg == 1_404_000 - 100 * 10_000  # what the 100 points were not for
    [second] = await report(services, world.operator_id, [ride("b", "u-0", "1", clock.now())])
    assert second.points == 0 and second.uncredited_reason == "DAILY_CAP_REACHED"
    # the cap is per methodology: the bus still earns
    [bus] = await report(services, world.operator_id, [ride("c", "u-0", "10", clock.now(), "SZ-EBUS")])
    assert bus.points == 26
    # and per business day: after midnight in Shanghai it starts again
    clock.set(datetime(2026, 3, 2, 16, 30, tzinfo=timezone.utc))  # 00:30 on 3 March in Shanghai
    [next_day] = await report(services, world.operator_id, [ride("d", "u-0", "30", clock.now())])
    assert next_day.points == 100
    await audit_ok(services)


async def test_a_capped_report_never_moves_the_carried_fraction(services, clock):
    """Issue 8: after the daily cap, a 1 km metro report answered 0 points, DAILY_CAP_REACHED, yet
    moved the carry from 8/125 to 93/125, and the next report credited a point too many."""
    world = await make_world(services)
    await publish_rule(services, daily_cap_points=116)
    wallet = world.people["u-0"]
    # 24.8 km x 46.8 g = 1,160.64 g = 116 + 8/125 points: exactly the cap, 8/125 carried
    [full] = await report(services, world.operator_id, [ride("a", "u-0", "24.8", clock.now())])
    assert (full.points, full.uncredited_reason) == (116, None)
    s = await summary(services, wallet)
    assert (s.remainder.num, s.remainder.den) == (8, 125)

    # the cap is reached: 1 km (4 + 85/125 points) earns nothing and leaves the carry alone
    [capped] = await report(services, world.operator_id, [ride("b", "u-0", "1", clock.now())])
    assert (capped.points, capped.uncredited_reason) == (0, "DAILY_CAP_REACHED")
    assert (capped.reduction_mg, capped.uncredited_reduction_mg) == (46_800, 46_800)
    s = await summary(services, wallet)
    assert (s.remainder.num, s.remainder.den) == (8, 125)
    assert (s.balance, s.lifetime_points) == (116, 116)
    # both lifetime figures: what points were credited for, and everything reported
    assert (s.lifetime_reduction_mg, s.lifetime_reported_reduction_mg) == (1_160_640, 1_207_440)

    # the next day: 8/125 + 4 + 85/125 = 4 + 93/125, so 4 points (not 5)
    clock.set(datetime(2026, 3, 2, 16, 30, tzinfo=timezone.utc))  # 00:30 on 3 March in Shanghai
    [next_day] = await report(services, world.operator_id, [ride("c", "u-0", "1", clock.now())])
    assert (next_day.points, next_day.uncredited_reason) == (4, None)
    s = await summary(services, wallet)
    assert (s.remainder.num, s.remainder.den) == (93, 125)

    # partly capped: 112 points left today; 24.8 km would make 116 + 101/125 with the carry. The 112
    # come from the report's own 116.064 (1,120 g of its 1,160.64 g); the rest is uncredited, the carry untouched
    [partial] = await report(services, world.operator_id, [ride("d", "u-0", "24.8", clock.now())])
    assert (partial.points, partial.uncredited_reason) == (112, "DAILY_CAP_REACHED")
    assert (partial.reduction_mg, partial.uncredited_reduction_mg) == (1_160_640, 40_640)
    s = await summary(services, wallet)
    assert (s.remainder.num, s.remainder.den) == (93, 125)
    assert (s.balance, s.lifetime_points) == (116 + 4 + 112, 116 + 4 + 112)
    assert s.lifetime_reduction_mg == 1_160_640 + 46_800 + 1_120_000
    assert s.lifetime_reported_reduction_mg == 1_160_640 + 46_800 + 46_800 + 1_160_640
    await audit_ok(services)


async def test_rejections_credit_nothing(services, clock):
    world = await make_world(services, people=2)
    await publish_rule(services, acceptance_window_days=7)
    now = clock.now()
    items = [
        ride("future", "u-0", "3", now + timedelta(hours=1)),
        ride("late", "u-0", "3", now - timedelta(days=8)),
        ride("zero", "u-0", "0", now),
        ride("negative", "u-0", "-2", now),
        ride("absurd", "u-0", "5000", now),
        ride("garbage", "u-0", "12,4", now),
        ride("decimals", "u-0", "1.2345", now),
        ride("unknown", "u-0", "3", now, "SZ-TELEPORT"),
        ride("stranger", "nobody", "3", now),
        ride("ok", "u-1", "3", now),
        ride("ok", "u-1", "3", now),
    ]
    results = await report(services, world.operator_id, items)
    codes = {r.report_id: (r.status, r.reject_code) for r in results}
    assert codes["future"] == (ItemStatus.REJECTED, "OCCURRED_IN_FUTURE")
    assert codes["late"] == (ItemStatus.REJECTED, "OUTSIDE_ACCEPTANCE_WINDOW")
    assert codes["zero"][1] == codes["negative"][1] == codes["garbage"][1] == codes["decimals"][1] == "INVALID_QUANTITY"
    assert codes["absurd"] == (ItemStatus.REJECTED, "QUANTITY_TOO_LARGE")
    assert codes["unknown"] == (ItemStatus.REJECTED, "UNKNOWN_METHODOLOGY")
    assert codes["stranger"] == (ItemStatus.REJECTED, "NO_ACTIVE_ENTRUSTMENT")
    assert [r.status for r in results[-2:]] == [ItemStatus.CREDITED, ItemStatus.DUPLICATE]
    assert (await summary(services, world.people["u-0"])).balance == 0
    assert (await summary(services, world.people["u-1"])).balance == 14
    # a retried batch returns the same outcomes and credits nothing twice
    again = await report(services, world.operator_id, items)
    assert all(r.status == ItemStatus.DUPLICATE for r in again)
    assert [r.reject_code for r in again] == [r.reject_code for r in results]
    assert (await summary(services, world.people["u-1"])).balance == 14


async def test_rule_in_force_at_behaviour_time_applies(services, clock):
    world = await make_world(services)
    await publish_rule(services, reduction_mg=10_000, days_ago=30)
    changeover = clock.now() - timedelta(days=2)
    await publish_rule(services, reduction_mg=5_000, effective_from=changeover)  # doubles points
    before, after = await report(services, world.operator_id, [
        ride("before", "u-0", "10", changeover - timedelta(hours=1)),
        ride("after", "u-0", "10", changeover + timedelta(hours=1)),
    ])
    assert (before.points, after.points) == (46, 94)  # 46.8 -> 46 (0.8 carried), 93.6 + 0.8 -> 94


async def test_revoked_entrustment_stops_reports(services, clock):
    world = await make_world(services)
    await publish_rule(services)
    async with services.session_factory() as session:
        async with session.begin():
            from sqlalchemy import text
            await session.execute(text("UPDATE entrustments SET status = 'revoked', revoked_at = now()"))
    [r] = await report(services, world.operator_id, [ride("x", "u-0", "3", clock.now())])
    assert r.reject_code == "NO_ACTIVE_ENTRUSTMENT"


# --- holds -------------------------------------------------------------------------------------


async def credit_days(services, world, clock, user="u-0", days=3, km="25"):
    """One credit on each of `days` consecutive days, ending today; returns the clock to now.
    25 km of metro = 1,170 g = exactly 117 points: no fraction carried."""
    end = clock.now()
    for n in range(days, 0, -1):
        clock.set(end - timedelta(days=n - 1))
        await report(services, world.operator_id, [ride(f"d{n}-{user}", user, km, clock.now())])
    clock.set(end)


async def hold(services, wallet_id, points, hold_id=None, reference="test"):
    async with services.session_factory() as session:
        async with session.begin():
            return await place_hold(session=session, clock=services.clock, wallet_id=wallet_id,
                                    hold_id=hold_id or uuid.uuid4(), points=points, reference=reference)


async def settle(services, fn, hold_id):
    async with services.session_factory() as session:
        async with session.begin():
            return await fn(session=session, clock=services.clock, hold_id=hold_id)


async def test_hold_draws_soonest_expiring_lots_first_and_release_returns_them(services, clock):
    world = await make_world(services)
    await publish_rule(services)
    await credit_days(services, world, clock)  # three lots of 117 points
    wallet = world.people["u-0"]
    placed = await hold(services, wallet, 150)
    async with services.session_factory() as session:
        lots = (await read.list_lots(session=session, account_id=wallet, first=10, after=None)).items
    assert [(l.node.points_remaining, l.node.points_held) for l in lots] == [(0, 117), (84, 33), (117, 0)]
    assert (await summary(services, wallet)).balance == 201
    await settle(services, release.release_hold, placed.id)
    async with services.session_factory() as session:
        lots = (await read.list_lots(session=session, account_id=wallet, first=10, after=None)).items
    assert [(l.node.points_remaining, l.node.points_held) for l in lots] == [(117, 0), (117, 0), (117, 0)]
    # releasing again changes nothing
    await settle(services, release.release_hold, placed.id)
    assert (await summary(services, wallet)).balance == 351
    await audit_ok(services)


async def test_posted_hold_is_cancelled_for_good(services, clock):
    world = await make_world(services)
    await publish_rule(services)
    await credit_days(services, world, clock, days=2)
    wallet = world.people["u-0"]
    placed = await hold(services, wallet, 50)
    _, drawn = await settle(services, post.post_hold, placed.id)
    assert sum(p for _, p in drawn) == 50
    with pytest.raises(DomainError) as refused:
        await settle(services, release.release_hold, placed.id)
    assert refused.value.code == "HOLD_SETTLED"
    s = await summary(services, wallet)
    assert (s.balance, s.held) == (184, 0)
    audit = await audit_ok(services)
    assert (audit.totals.issued, audit.totals.cancelled, audit.totals.outstanding) == (234, 50, 184)


async def test_hold_refuses_more_than_usable_points_and_same_id_is_recognised(services, clock):
    world = await make_world(services)
    await publish_rule(services)
    await credit_days(services, world, clock, days=1)
    wallet = world.people["u-0"]
    with pytest.raises(DomainError) as refused:
        await hold(services, wallet, 118)
    assert refused.value.code == "INSUFFICIENT_POINTS"
    hold_id = uuid.uuid4()
    first = await hold(services, wallet, 40, hold_id)
    again = await hold(services, wallet, 40, hold_id)
    assert first.id == again.id and (await summary(services, wallet)).held == 40
    with pytest.raises(DomainError) as conflict:
        await hold(services, wallet, 41, hold_id)
    assert conflict.value.code == "HOLD_ID_CONFLICT"


async def test_expired_points_are_not_usable_and_a_lot_expired_while_held_expires_at_release(services, clock):
    world = await make_world(services)
    await publish_rule(services, validity_years=1)
    await credit_days(services, world, clock, days=2)
    wallet = world.people["u-0"]
    placed = await hold(services, wallet, 150)  # 117 from the older lot, 33 from the newer
    clock.advance(days=364)  # the older lot has expired, the newer expires tomorrow
    s = await summary(services, wallet)
    assert (s.balance, s.awaiting_expiry, s.held) == (84, 0, 150)
    await settle(services, release.release_hold, placed.id)
    s = await summary(services, wallet)
    assert (s.balance, s.held) == (117, 0)  # the 117 released to the expired lot were expired at once
    audit = await audit_ok(services)
    assert audit.totals.expired == 117


# --- expiry sweeps -----------------------------------------------------------------------------


async def test_sweep_expires_due_lots_once_and_notices_come_30_days_before(services, clock):
    world = await make_world(services, people=3)
    await publish_rule(services, validity_years=1)
    for user in world.people:
        await credit_days(services, world, clock, user=user, days=2)
    start = clock.now()
    clock.set(start + timedelta(days=340))
    first = await expiry_sweep(session_factory=services.session_factory, clock=clock)
    assert (first.lots_expired, first.notices_issued) == (0, 6)
    again = await expiry_sweep(session_factory=services.session_factory, clock=clock)
    assert again.notices_issued == 0  # one notice per lot
    clock.set(start + timedelta(days=364))  # the lots issued the day before start are due
    due = await expiry_sweep(session_factory=services.session_factory, clock=clock, batch_size=2)
    assert (due.lots_expired, due.points_expired) == (3, 3 * 117)
    rerun = await expiry_sweep(session_factory=services.session_factory, clock=clock)
    assert rerun.lots_expired == 0
    async with services.session_factory() as session:
        expire_entries = (await session.execute(
            select(func.count()).select_from(WalletEntry).where(WalletEntry.kind == "expire"))).scalar_one()
        runs = (await session.execute(select(func.count()).select_from(ExpiryRun))).scalar_one()
    assert expire_entries == 3 and runs == 4
    for wallet in world.people.values():
        assert (await summary(services, wallet)).balance == 117
    await audit_ok(services)


async def test_a_sweep_as_of_a_time_notices_as_of_that_time(services, clock):
    """`tanpuhui expire --as-of T` runs expiry_sweep(as_of=T): its notices are those due as of T,
    not as of the wall clock, however far from T the clock is."""
    world = await make_world(services, people=3)
    await publish_rule(services, validity_years=1)
    for user in world.people:
        await credit_days(services, world, clock, user=user, days=2)
    start = clock.now()
    as_of = start + timedelta(days=340)  # the 6 lots expire 24 and 25 days later; the clock stays at start
    swept = await expiry_sweep(session_factory=services.session_factory, clock=clock, as_of=as_of)
    assert (swept.as_of, swept.lots_expired, swept.notices_issued) == (as_of, 0, 6)
    async with services.session_factory() as session:
        notices = [n for wallet in world.people.values()
                   for n in await read.notices_for(session=session, account_id=wallet)]
    assert len(notices) == 6 and all(n.created_at == start for n in notices)  # noticed when the sweep ran
    assert all(as_of < n.expires_at <= as_of + timedelta(days=30) for n in notices)
    # as of a time long past the lots' expiry, they are expired, and nothing due is left to notice
    later = await expiry_sweep(session_factory=services.session_factory, clock=clock,
                               as_of=start + timedelta(days=400))
    assert (later.lots_expired, later.notices_issued) == (6, 0)
    await audit_ok(services)


async def test_an_operator_reads_its_users_notices_page_by_page_none_dropped(services, clock):
    """operator_expiry_notices: keyset pages by (expiry, lot), by the operator's own user ids, only
    of lots its reports earned; walking the pages yields every notice once."""
    world = await make_world(services, people=3)
    other = await make_world(services, people=1, prefix="o-")
    await publish_rule(services, validity_years=1)
    for user in world.people:
        await credit_days(services, world, clock, user=user, days=2)
    await report(services, other.operator_id, [ride("o-r", "o-0", "10", clock.now())])
    await expiry_sweep(session_factory=services.session_factory, clock=clock, as_of=clock.now() + timedelta(days=340))
    seen, after = [], None
    async with services.session_factory() as session:
        while True:
            page = await read.operator_expiry_notices(session=session, operator_id=world.operator_id, first=4,
                                                      after=after)
            seen += [item.node for item in page.items]
            if not page.has_next_page:
                break
            after = page.end_cursor
        with pytest.raises(DomainError):  # pages are at most 100 notices
            await read.operator_expiry_notices(session=session, operator_id=world.operator_id, first=101, after=None)
    assert len(seen) == 6 and sorted({n.external_user_id for n in seen}) == sorted(world.people)
    assert [n.expires_at for n in seen] == sorted(n.expires_at for n in seen)


async def test_two_sweeps_at_once_expire_nothing_twice(services, clock):
    world = await make_world(services, people=40)
    await publish_rule(services, validity_years=1)
    items = [ride(f"r-{u}", u, "10", clock.now()) for u in world.people]
    await report(services, world.operator_id, items)
    clock.advance(days=366)
    a, b = await asyncio.gather(
        expiry_sweep(session_factory=services.session_factory, clock=clock, batch_size=7),
        expiry_sweep(session_factory=services.session_factory, clock=clock, batch_size=7),
    )
    assert a.lots_expired + b.lots_expired == 40
    assert a.points_expired + b.points_expired == 40 * 46
    audit = await audit_ok(services)
    assert audit.totals.expired == 40 * 46 and audit.totals.outstanding == 0


# --- audit -------------------------------------------------------------------------------------


async def test_the_audit_names_every_counter_the_journal_does_not_explain(services, clock):
    world = await make_world(services, people=2)
    await publish_rule(services)
    await credit_days(services, world, clock, user="u-0", days=1)
    await credit_days(services, world, clock, user="u-1", days=1)
    wallet, lot = world.people["u-0"], None
    async with services.session_factory() as session:
        async with session.begin():
            lot = (await read.list_lots(session=session, account_id=wallet, first=1, after=None)).items[0].node.id
            # a tampered copy of the counters: the journal stays as it was
            await session.execute(text("UPDATE wallets SET lifetime_points = lifetime_points + 5,"
                                       " held_points = 2 WHERE account_id = :w"), {"w": wallet})
            await session.execute(text("UPDATE point_lots SET points_remaining = points_remaining - 3"
                                       " WHERE id = :l"), {"l": lot})
    async with services.session_factory() as session:
        audit = await ledger_audit(session=session)
    assert not audit.ok
    assert {(m.subject, m.id, m.field, m.recorded, m.recomputed) for m in audit.mismatches} == {
        ("wallet", str(wallet), "held", 2, 0), ("wallet", str(wallet), "issued", 122, 117),
        ("lot", str(lot), "remaining", 114, 117),
        ("totals", "platform", "issued", 239, 234), ("totals", "platform", "held", 2, 0),
    }
