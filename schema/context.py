"""What every resolver gets as `info.context`: the process's services and this request's caller."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import AsyncIterator

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accounts.principal import Principal
from accounts.security import PasswordHashing
from core.clock import Clock


@dataclass
class Services:
    """Long-lived handles, one set per process."""

    settings: "object"  # server.settings.Settings; typed loosely so schema does not import server
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    redis: aioredis.Redis
    clock: Clock
    hashing: PasswordHashing
    payments: "object | None" = None  # neutrality.market.payments.Payments (Stripe or the test-mode emulator)

    @cached_property
    def autocommit_engine(self) -> AsyncEngine:
        """The same engine and pool, without BEGIN/ROLLBACK around what runs on it."""
        return self.engine.execution_options(isolation_level="AUTOCOMMIT")


@dataclass
class Context:
    services: Services
    principal: Principal | None
    request_id: str
    client_ip: str
    extensions: dict = field(default_factory=dict)

    @property
    def clock(self) -> Clock:
        return self.services.clock

    @property
    def settings(self):
        return self.services.settings

    @property
    def redis(self) -> aioredis.Redis:
        return self.services.redis

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction that commits on success and rolls back on any error.
        Each resolver takes its own: root fields may run concurrently."""
        async with self.services.session_factory() as session:
            async with session.begin():
                yield session

    @asynccontextmanager
    async def reading(self, *, autocommit: bool = False) -> AsyncIterator[AsyncSession]:
        """A session for reads. Closing it returns the connection (the pool rolls back) and
        detaches the loaded rows without expiring them, so they can be mapped afterwards.

        `autocommit=True` for reads of one statement each (each sees its own snapshot anyway under
        READ COMMITTED): no BEGIN and ROLLBACK round trips around them. Never for writes."""
        if autocommit:
            async with self.services.session_factory(bind=self.services.autocommit_engine) as session:
                yield session
        else:
            async with self.services.session_factory() as session:
                yield session
