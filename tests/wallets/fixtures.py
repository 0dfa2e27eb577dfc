"""Domain-level set-up for wallet and issuance tests: accounts, an approved operator, entrustments
and an exchange rule, seeded in bulk through accounts/seeding.py (no password hashing)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from accounts.models import Role
from accounts.seeding import seed_entrustments, seed_organisations, seed_people
from core.bulk import driver
from reductions import service as reductions


@dataclass
class World:
    operator_id: uuid.UUID
    people: dict[str, uuid.UUID]  # external user id -> individual account id


async def make_world(services, people: int = 3, entrusted_at: datetime | None = None,
                     prefix: str = "u-") -> World:
    clock = services.clock
    when = entrusted_at or clock.now() - timedelta(days=30)
    operator_id = uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(people)]
    externals = [f"{prefix}{i}" for i in range(people)]
    async with services.session_factory() as session:
        async with session.begin():
            conn = await driver(session)
            await seed_organisations(conn, ids=[operator_id], roles=[Role.APP_OPERATOR.value], when=when,
                                     name="Operator")
            await seed_people(conn, ids=ids, when=when)
            await seed_entrustments(conn, operator_id=operator_id, people=ids, external_ids=externals, when=when)
    return World(operator_id=operator_id, people=dict(zip(externals, ids)))


async def publish_rule(services, *, points: int = 1, reduction_mg: int = 10_000, daily_cap_points: int = 1000,
                       acceptance_window_days: int = 7, validity_years: int = 10,
                       methodology_code: str | None = None, effective_from: datetime | None = None,
                       days_ago: int = 30):
    """Default: 1 point per 10 g, as the issue's example; published `days_ago` (the clock is moved
    back for the publication, since a rule cannot take effect before it is published)."""
    now = services.clock.now()
    services.clock.set(effective_from or now - timedelta(days=days_ago))
    try:
        return await _publish(services, points, reduction_mg, daily_cap_points, acceptance_window_days,
                              validity_years, methodology_code)
    finally:
        services.clock.set(now)


async def _publish(services, points, reduction_mg, daily_cap_points, acceptance_window_days, validity_years,
                   methodology_code):
    async with services.session_factory() as session:
        async with session.begin():
            rule = await reductions.create_exchange_rule(
                session=session, clock=services.clock, points=points, reduction_mg=reduction_mg,
                daily_cap_points=daily_cap_points, acceptance_window_days=acceptance_window_days,
                validity_years=validity_years, methodology_code=methodology_code,
                effective_from=services.clock.now())
            return await reductions.publish_exchange_rule(session=session, clock=services.clock, rule_id=rule.id)


async def report(services, operator_id, items):
    async with services.session_factory() as session:
        async with session.begin():
            return await reductions.report_behaviour(session=session, clock=services.clock,
                                                     operator_id=operator_id, items=items)
