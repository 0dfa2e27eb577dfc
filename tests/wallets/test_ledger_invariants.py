"""Ledger invariants under random sequences (hypothesis) and under real parallel connections."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from core.errors import DomainError
from reductions.service import ReportItem
from tests.wallets.fixtures import make_world, publish_rule, report
from wallets import post, read, release
from wallets.audit import ledger_audit
from wallets.hold import place_hold
from wallets.jobs import expiry_sweep

# starts: an ordinary day, the eve of a leap day (Shanghai), a 31 December, and an early morning
# in Shanghai whose UTC date is the day before
STARTS = [
    datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc),
    datetime(2028, 2, 28, 15, 30, tzinfo=timezone.utc),  # 23:30 on 28 Feb 2028 in Shanghai
    datetime(2026, 12, 31, 15, 59, tzinfo=timezone.utc),
    datetime(2026, 3, 1, 23, 30, tzinfo=timezone.utc),  # 07:30 on 2 Mar 2026 in Shanghai
]
TEN_YEARS = 3653

ops = st.lists(
    st.one_of(
        st.tuples(st.just("credit"), st.integers(0, 1), st.sampled_from(["0.1", "3", "12.4", "25", "80"])),
        st.tuples(st.just("hold"), st.integers(0, 1), st.integers(1, 400)),
        st.tuples(st.just("release"), st.integers(0, 10)),
        st.tuples(st.just("post"), st.integers(0, 10)),
        st.tuples(st.just("advance"), st.sampled_from([0.02, 1, 2, 30, 364, 365, 366, TEN_YEARS - 1, TEN_YEARS])),
        st.tuples(st.just("sweep")),
    ),
    min_size=1, max_size=25,
)


async def check_invariants(services, wallets, pending: dict, validity: int):
    async with services.session_factory() as session:
        audit = await ledger_audit(session=session)
        assert audit.ok, audit
        for wallet in wallets:
            row = (await session.execute(text(
                "SELECT available_points, held_points FROM wallets WHERE account_id = :w"), {"w": wallet})).first()
            if row is None:
                continue
            lots = (await session.execute(text(
                "SELECT coalesce(sum(points_remaining), 0), coalesce(sum(points_held), 0),"
                " bool_and(points_remaining >= 0 AND points_held >= 0) FROM point_lots WHERE wallet_id = :w"),
                {"w": wallet})).first()
            assert (row[0], row[1]) == (lots[0], lots[1])
            assert lots[2] in (True, None)
            assert row[1] == sum(p for (w, p) in pending.values() if w == wallet)
        # no hold ever drew on a lot that had expired (swept or not) when the hold was placed
        expired_draws = (await session.execute(text(
            "SELECT count(*) FROM wallet_entries e JOIN point_lots l ON l.id = e.lot_id"
            " WHERE e.wallet_id = ANY(:w) AND e.kind = 'hold' AND l.expires_at <= e.at"),
            {"w": list(wallets)})).scalar_one()
        assert expired_draws == 0
        # every lot was issued on the Shanghai date of its credits and expires at 00:00 Shanghai on
        # that date's anniversary, `validity` years on (29 February -> 28 February)
        misdated = (await session.execute(text(
            "SELECT count(*) FROM point_lots l WHERE l.wallet_id = ANY(:w) AND (l.expires_at <>"
            " (l.issue_date + make_interval(years => :v))::timestamp AT TIME ZONE 'Asia/Shanghai'"
            " OR EXISTS (SELECT 1 FROM wallet_entries e WHERE e.lot_id = l.id AND e.kind = 'credit'"
            " AND (e.at AT TIME ZONE 'Asia/Shanghai')::date <> l.issue_date))"),
            {"w": list(wallets), "v": validity})).scalar_one()
        assert misdated == 0


async def check_drawn_from_unexpired(services, hold_id, points: int):
    """The lots this hold drew from (its journal's hold entries) were all unexpired when it was
    placed, swept or not, and they gave exactly the points held."""
    async with services.session_factory() as session:
        draws = (await session.execute(text(
            "SELECT e.lot_id, e.points, e.at, l.expires_at FROM wallet_entries e JOIN point_lots l ON l.id = e.lot_id"
            " WHERE e.hold_id = :h AND e.kind = 'hold'"), {"h": hold_id})).all()
    assert draws and sum(d.points for d in draws) == points, draws
    now = services.clock.now()
    assert all(d.at == now and d.expires_at > now for d in draws), (now, draws)


async def check_soonest_first(services, hold_id):
    """No usable lot expiring before the latest lot a hold drew from was left with points."""
    async with services.session_factory() as session:
        row = (await session.execute(text(
            "SELECT max(l.expires_at), min(l.expires_at) FILTER (WHERE TRUE), d.wallet_id FROM hold_draws d"
            " JOIN point_lots l ON l.id = d.lot_id WHERE d.hold_id = :h GROUP BY d.wallet_id"),
            {"h": hold_id})).first()
        latest, _, wallet = row
        skipped = (await session.execute(text(
            "SELECT count(*) FROM point_lots WHERE wallet_id = :w AND points_remaining > 0"
            " AND expires_at > :now AND expires_at < :latest"),
            {"w": wallet, "now": services.clock.now(), "latest": latest})).scalar_one()
    assert skipped == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(start=st.sampled_from(STARTS), validity=st.sampled_from([1, 10]), steps=ops)
# always run, whatever hypothesis draws: spending from a lot past its expiry that no sweep has
# reached yet (refused), and a sweep of a lot with points held on it (the held points stay held)
@example(start=STARTS[0], validity=1, steps=[("credit", 0, "25"), ("advance", 365), ("hold", 0, 50)])
@example(start=STARTS[0], validity=1,
         steps=[("credit", 0, "25"), ("hold", 0, 50), ("advance", 366), ("sweep",), ("release", 0)])
async def test_random_sequences_keep_the_ledger_exact(services, clock, start, validity, steps):
    clock.set(start)
    world = await make_world(services, people=2, prefix=f"h{uuid.uuid4().hex[:6]}-")
    # the examples share one database: earlier examples' rules retire, so this example's is in force
    async with services.session_factory() as session, session.begin():
        await session.execute(text("UPDATE exchange_rules SET status = 'retired' WHERE status = 'published'"))
    await publish_rule(services, validity_years=validity, daily_cap_points=100_000, days_ago=1)
    users = list(world.people)
    wallets = [world.people[u] for u in users]
    pending: dict[uuid.UUID, tuple] = {}
    settled: list[uuid.UUID] = []
    for n, step in enumerate(steps):
        kind = step[0]
        if kind == "credit":
            await report(services, world.operator_id,
                         [ReportItem(f"r{n}", users[step[1]], "SZ-METRO", step[2], clock.now())])
        elif kind == "hold":
            hold_id = uuid.uuid4()
            try:
                async with services.session_factory() as session:
                    async with session.begin():
                        await place_hold(session=session, clock=clock, wallet_id=wallets[step[1]],
                                         hold_id=hold_id, points=step[2], reference="hypothesis")
                pending[hold_id] = (wallets[step[1]], step[2])
                await check_drawn_from_unexpired(services, hold_id, step[2])
                await check_soonest_first(services, hold_id)
            except DomainError as refused:
                assert refused.code == "INSUFFICIENT_POINTS"
        elif kind in ("release", "post") and pending:
            hold_id = list(pending)[step[1] % len(pending)]
            fn = release.release_hold if kind == "release" else post.post_hold
            async with services.session_factory() as session:
                async with session.begin():
                    await fn(session=session, clock=clock, hold_id=hold_id)
            pending.pop(hold_id)
            settled.append(hold_id)
        elif kind == "advance":
            clock.advance(days=step[1])
        elif kind == "sweep":
            await expiry_sweep(session_factory=services.session_factory, clock=clock, batch_size=3)
        await check_invariants(services, wallets, pending, validity)
    # after a final sweep nothing past expiry keeps points, and no lot outlives 10 years
    await expiry_sweep(session_factory=services.session_factory, clock=clock)
    async with services.session_factory() as session:
        overdue = (await session.execute(text(
            "SELECT count(*) FROM point_lots WHERE wallet_id = ANY(:w) AND points_remaining > 0 AND expires_at <= :now"),
            {"w": wallets, "now": clock.now()})).scalar_one()
        too_long = (await session.execute(text(
            "SELECT count(*) FROM point_lots WHERE wallet_id = ANY(:w)"
            " AND expires_at > (issue_date + interval '10 years')::timestamp AT TIME ZONE 'Asia/Shanghai'"),
            {"w": wallets})).scalar_one()
    assert overdue == 0 and too_long == 0
    await check_invariants(services, wallets, pending, validity)


async def test_credits_holds_releases_and_sweeps_at_once_never_lose_a_point(services, clock):
    """Real parallel connections on one wallet: nothing is lost or invented, nothing overdrawn."""
    world = await make_world(services, people=1, entrusted_at=clock.now() - timedelta(days=400))
    await publish_rule(services, validity_years=1, daily_cap_points=1_000_000, days_ago=400)
    wallet = world.people["u-0"]
    # an old lot that is due for expiry, and a usable one
    clock.advance(days=-366)
    await report(services, world.operator_id, [ReportItem("old", "u-0", "SZ-METRO", "25", clock.now())])
    clock.advance(days=366)
    await report(services, world.operator_id, [ReportItem("seed", "u-0", "SZ-METRO", "25", clock.now())])

    successes: list[int] = []

    async def credit(n: int):
        await report(services, world.operator_id, [ReportItem(f"c{n}", "u-0", "SZ-METRO", "25", clock.now())])

    async def hold_and_maybe_release(n: int):
        hold_id = uuid.uuid4()
        points = random.Random(n).randint(20, 90)
        try:
            async with services.session_factory() as session:
                async with session.begin():
                    await place_hold(session=session, clock=clock, wallet_id=wallet, hold_id=hold_id,
                                     points=points, reference=f"race-{n}")
        except DomainError as refused:
            assert refused.code == "INSUFFICIENT_POINTS"
            return
        fn = release.release_hold if n % 2 else post.post_hold
        async with services.session_factory() as session:
            async with session.begin():
                await fn(session=session, clock=clock, hold_id=hold_id)
        if fn is post.post_hold:
            successes.append(points)

    async def sweep():
        await expiry_sweep(session_factory=services.session_factory, clock=clock, batch_size=1)

    tasks = [credit(n) for n in range(15)] + [hold_and_maybe_release(n) for n in range(30)] + [sweep(), sweep()]
    random.Random(7).shuffle(tasks)
    await asyncio.gather(*tasks)
    await sweep()
    async with services.session_factory() as session:
        audit = await ledger_audit(session=session)
        summary = await read.wallet_summary(session=session, clock=clock, account_id=wallet)
    assert audit.ok, audit
    assert audit.totals.issued == 17 * 117
    assert audit.totals.expired == 117
    assert audit.totals.cancelled == sum(successes)
    assert summary.balance == 16 * 117 - sum(successes) and summary.held == 0


# --- expiry and holds, deterministically (the hypothesis examples above find these only sometimes) --


async def _hold(services, wallet, points: int) -> uuid.UUID:
    hold_id = uuid.uuid4()
    async with services.session_factory() as session, session.begin():
        await place_hold(session=session, clock=services.clock, wallet_id=wallet, hold_id=hold_id,
                         points=points, reference="test")
    return hold_id


async def _lots(services, wallet) -> list[tuple]:
    async with services.session_factory() as session:
        return [tuple(r) for r in (await session.execute(text(
            "SELECT id, issue_date, points_remaining, points_held FROM point_lots WHERE wallet_id = :w"
            " ORDER BY expires_at"), {"w": wallet})).all()]


async def test_a_lot_past_its_expiry_is_never_drawn_on_even_before_the_sweep(services, clock):
    world = await make_world(services, people=1)
    await publish_rule(services, validity_years=1)
    wallet = world.people["u-0"]
    # 117 points on 2 March and 117 on 3 March 2026; on 2 March 2027 the first lot has expired
    await report(services, world.operator_id, [ReportItem("d1", "u-0", "SZ-METRO", "25", clock.now())])
    clock.advance(days=1)
    await report(services, world.operator_id, [ReportItem("d2", "u-0", "SZ-METRO", "25", clock.now())])
    clock.advance(days=364)  # 09:00 on 2 March 2027 in Shanghai; no sweep has run
    (expired, _, _, _), (usable, _, _, _) = await _lots(services, wallet)
    with pytest.raises(DomainError) as refused:
        await _hold(services, wallet, 118)
    assert refused.value.code == "INSUFFICIENT_POINTS" and "117 usable points" in refused.value.message
    hold_id = await _hold(services, wallet, 117)
    async with services.session_factory() as session:
        drawn = (await session.execute(text(
            "SELECT lot_id, points FROM wallet_entries WHERE hold_id = :h AND kind = 'hold'"), {"h": hold_id})).all()
    assert [tuple(d) for d in drawn] == [(usable, 117)]
    assert [(r[2], r[3]) for r in await _lots(services, wallet)] == [(117, 0), (0, 117)]


async def test_a_sweep_leaves_points_held_on_an_expired_lot_held_and_usable_by_their_hold(services, clock):
    """A hold placed before the lot expired keeps its points through the sweep: the sweep expires
    only what is free; the held points are then cancelled after use (or expire at release)."""
    world = await make_world(services, people=1)
    await publish_rule(services, validity_years=1)
    wallet = world.people["u-0"]
    await report(services, world.operator_id, [ReportItem("d1", "u-0", "SZ-METRO", "25", clock.now())])
    hold_id = await _hold(services, wallet, 50)
    clock.advance(days=366)
    run = await expiry_sweep(session_factory=services.session_factory, clock=clock)
    assert (run.lots_expired, run.points_expired) == (1, 67)
    assert [(r[2], r[3]) for r in await _lots(services, wallet)] == [(0, 50)]
    async with services.session_factory() as session:
        summary = await read.wallet_summary(session=session, clock=clock, account_id=wallet)
    assert (summary.balance, summary.held) == (0, 50)
    async with services.session_factory() as session, session.begin():
        _, drawn = await post.post_hold(session=session, clock=clock, hold_id=hold_id)
    assert sum(p for _, p in drawn) == 50
    async with services.session_factory() as session:
        audit = await ledger_audit(session=session)
    assert audit.ok, audit
    assert (audit.totals.issued, audit.totals.expired, audit.totals.cancelled, audit.totals.held) == (117, 67, 50, 0)
