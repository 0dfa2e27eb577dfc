"""Benchmark 4: the expiry sweep.

`lots` due lots (10 per wallet, all expired before `as_of`, each wallet's 10 on 10 different days),
with their wallets and credit journal entries, bulk-generated in SQL so the ledger reconciles.
The database is then cloned (CREATE DATABASE ... TEMPLATE) so both sides start from identical data:
  - figure: wallets.jobs.expiry_sweep (wallets.expire.expire_due, batches of 5,000);
  - baseline: one transaction of raw SQL: INSERT the expire entries, UPDATE the wallets' balances,
    UPDATE point_lots SET points_remaining = 0 for the same lots.
Both are checked afterwards: every lot emptied, the ledger audit clean.
"""

from __future__ import annotations

import time
import uuid

from bench import env as E
from bench.common import Result, scaled

LOTS_PER_WALLET = 10
SOURCE, SWEPT, RAW = "expiry_source", "expiry_sweep", "expiry_raw"


async def generate(env: E.Embedded, lots: int) -> int:
    wallets = max(1, lots // LOTS_PER_WALLET)
    await env.clone(SOURCE)
    conn = await env.connect(SOURCE)
    try:
        operator = uuid.uuid4()
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO accounts (id, kind, display_name, email, password_hash, created_at)"
                " VALUES ($1, 'organisation', 'Operator', 'op@example.org', 'x', '2014-01-01')", operator)
            await conn.execute(
                "CREATE TEMP TABLE bw ON COMMIT DROP AS"
                " SELECT i, gen_random_uuid() AS id FROM generate_series(0, $1 - 1) i", wallets)
            await conn.execute(
                "INSERT INTO accounts (id, kind, display_name, email, password_hash, created_at)"
                " SELECT id, 'person', 'Person', 'p' || i || '@example.org', 'x', '2014-01-01' FROM bw")
            # lot j of wallet i: issued 2015-01-01 + j days, expired ten years on (all before now)
            await conn.execute(
                "INSERT INTO point_lots (id, wallet_id, issue_date, expires_at, operator_account_id, points_credited,"
                " points_remaining, points_held, reduction_mg, created_at)"
                " SELECT gen_random_uuid(), bw.id, date '2015-01-01' + j,"
                " (date '2025-01-01' + j)::timestamp AT TIME ZONE 'Asia/Shanghai', $1,"
                " 1 + (i * 7 + j) % 40, 1 + (i * 7 + j) % 40, 0, (1 + (i * 7 + j) % 40) * 10000,"
                " (date '2015-01-01' + j)::timestamptz"
                " FROM bw, generate_series(0, $2 - 1) j WHERE i * $2 + j < $3", operator, LOTS_PER_WALLET, lots)
            await conn.execute(
                "INSERT INTO wallet_entries (id, wallet_id, lot_id, kind, points, reduction_mg, at)"
                " SELECT gen_random_uuid(), wallet_id, id, 'credit', points_credited, reduction_mg, created_at"
                " FROM point_lots")
            await conn.execute(
                "INSERT INTO wallets (account_id, available_points, held_points, lifetime_points,"
                " lifetime_reduction_mg, remainder_num, remainder_den, created_at)"
                " SELECT wallet_id, sum(points_remaining), 0, sum(points_credited), sum(reduction_mg), 0, 1,"
                " min(created_at) FROM point_lots GROUP BY wallet_id")
        await conn.execute("VACUUM ANALYZE")
        count = await conn.fetchval("SELECT count(*) FROM point_lots WHERE points_remaining > 0")
    finally:
        await conn.close()
    await env.admin("CHECKPOINT")
    await env.clone(SWEPT, SOURCE)
    await env.clone(RAW, SOURCE)
    await env.admin(f"DROP DATABASE {SOURCE}", "CHECKPOINT")
    return count


RAW_SQL = [
    "INSERT INTO wallet_entries (id, wallet_id, lot_id, kind, points, reduction_mg, at, expiry_run_id)"
    " SELECT gen_random_uuid(), wallet_id, id, 'expire', points_remaining, 0, $2, $3 FROM point_lots"
    " WHERE points_remaining > 0 AND expires_at <= $1",
    "UPDATE wallets w SET available_points = w.available_points - s.pts FROM ("
    " SELECT wallet_id, sum(points_remaining) AS pts FROM point_lots WHERE points_remaining > 0 AND expires_at <= $1"
    " GROUP BY wallet_id) s WHERE w.account_id = s.wallet_id",
    "UPDATE point_lots SET points_remaining = 0 WHERE points_remaining > 0 AND expires_at <= $1",
]


async def check(env: E.Embedded, db: str, lots: int) -> None:
    from wallets.audit import ledger_audit

    services = E.services(env, env.url(db))
    try:
        async with services.session_factory() as session:
            audit = await ledger_audit(session=session)
            left = (await (await session.connection()).exec_driver_sql(
                "SELECT count(*) FROM point_lots WHERE points_remaining > 0")).scalar_one()
    finally:
        await services.redis.aclose()
        await services.engine.dispose()
    if not audit.ok or left or audit.totals.expired <= 0:
        raise RuntimeError(f"{db}: {left} lots left, audit {audit}")


async def expiry(env: E.Embedded, scale: float) -> list[Result]:
    from wallets.jobs import expiry_sweep

    wanted = scaled(1_000_000, scale, 1_000)
    started = time.perf_counter()
    lots = await generate(env, wanted)
    print(f"  {lots:,} due lots generated and cloned in {time.perf_counter() - started:.0f} s", flush=True)
    as_of = E.now()

    conn = await env.connect(RAW)
    try:
        started = time.perf_counter()
        async with conn.transaction():
            run_id = uuid.uuid4()
            await conn.execute("INSERT INTO expiry_runs (id, as_of, started_at, lots_expired, points_expired)"
                               " VALUES ($1, $2, $2, 0, 0)", run_id, as_of)
            for sql in RAW_SQL:
                await conn.execute(sql, as_of, *((E.now(), run_id) if sql.startswith("INSERT") else ()))
        raw = time.perf_counter() - started
    finally:
        await conn.close()
    print(f"  raw SQL, one transaction: {raw:.1f} s", flush=True)

    services = E.services(env, env.url(SWEPT))
    try:
        async with services.session_factory() as session:
            await session.connection()
        started = time.perf_counter()
        report = await expiry_sweep(session_factory=services.session_factory, clock=services.clock, as_of=as_of)
        swept = time.perf_counter() - started
    finally:
        await services.redis.aclose()
        await services.engine.dispose()
    print(f"  expiry_sweep: {swept:.1f} s ({report.lots_expired:,} lots)", flush=True)
    if report.lots_expired != lots:
        raise RuntimeError(f"the sweep expired {report.lots_expired} of {lots} lots")
    await check(env, SWEPT, lots)
    await check(env, RAW, lots)
    note = (f"{lots:,} due lots, {LOTS_PER_WALLET} per wallet; sweep {swept:.0f} s, raw {raw:.0f} s")
    return [Result("expiry", lots / swept, "lots/s", lots / raw, "raw UPDATE + INSERT, one transaction", 0.5, note)]
