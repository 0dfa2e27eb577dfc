"""Ledger invariants under random sequences (hypothesis) and under real parallel connections."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from accounts import ledger
from core.errors import DomainError
from expiry_jobs.sweeps import expiry_sweep
from reductions.service import ReportItem
from tests.ledger_fixtures import make_world, publish_rule, report

# starts: an ordinary day, the eve of a leap day (Shanghai), and a 31 December
STARTS = [
    datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc),
    datetime(2028, 2, 28, 15, 30, tzinfo=timezone.utc),  # 23:30 on 28 Feb 2028 in Shanghai
    datetime(2026, 12, 31, 15, 59, tzinfo=timezone.utc),
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


async def check_invariants(services, wallets, pending: dict):
    async with services.session_factory() as session:
        audit = await ledger.ledger_audit(session=session)
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


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(start=st.sampled_from(STARTS), steps=ops)
async def test_random_sequences_keep_the_ledger_exact(services, clock, start, steps):
    clock.set(start)
    world = await make_world(services, people=2, prefix=f"h{uuid.uuid4().hex[:6]}-")
    await publish_rule(services, validity_years=10, daily_cap_points=100_000, days_ago=1)
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
                        await ledger.place_hold(session=session, clock=clock, wallet_id=wallets[step[1]],
                                                hold_id=hold_id, points=step[2], reference="hypothesis")
                pending[hold_id] = (wallets[step[1]], step[2])
                await check_soonest_first(services, hold_id)
            except DomainError as refused:
                assert refused.code == "INSUFFICIENT_POINTS"
        elif kind in ("release", "post") and pending:
            hold_id = list(pending)[step[1] % len(pending)]
            fn = ledger.release_hold if kind == "release" else ledger.post_hold
            async with services.session_factory() as session:
                async with session.begin():
                    await fn(session=session, clock=clock, hold_id=hold_id)
            pending.pop(hold_id)
            settled.append(hold_id)
        elif kind == "advance":
            clock.advance(days=step[1])
        elif kind == "sweep":
            await expiry_sweep(session_factory=services.session_factory, clock=clock, batch_size=3)
        await check_invariants(services, wallets, pending)
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
    await check_invariants(services, wallets, pending)


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
                    await ledger.place_hold(session=session, clock=clock, wallet_id=wallet, hold_id=hold_id,
                                            points=points, reference=f"race-{n}")
        except DomainError as refused:
            assert refused.code == "INSUFFICIENT_POINTS"
            return
        fn = ledger.release_hold if n % 2 else ledger.post_hold
        async with services.session_factory() as session:
            async with session.begin():
                await fn(session=session, clock=clock, hold_id=hold_id)
        if fn is ledger.post_hold:
            successes.append(points)

    async def sweep():
        await expiry_sweep(session_factory=services.session_factory, clock=clock, batch_size=1)

    tasks = [credit(n) for n in range(15)] + [hold_and_maybe_release(n) for n in range(30)] + [sweep(), sweep()]
    random.Random(7).shuffle(tasks)
    await asyncio.gather(*tasks)
    await sweep()
    async with services.session_factory() as session:
        audit = await ledger.ledger_audit(session=session)
        summary = await ledger.wallet_summary(session=session, clock=clock, account_id=wallet)
    assert audit.ok, audit
    assert audit.totals.issued == 17 * 117
    assert audit.totals.expired == 117
    assert audit.totals.cancelled == sum(successes)
    assert summary.balance == 16 * 117 - sum(successes) and summary.held == 0
