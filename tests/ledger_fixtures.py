"""Domain-level set-up for wallet and issuance tests: accounts, an approved operator, entrustments
and an exchange rule, written straight into the real database (no password hashing)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from accounts.models import AccountKind, Role, RoleStatus
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
            await conn.execute(
                "INSERT INTO accounts (id, kind, display_name, email, password_hash, created_at)"
                " VALUES ($1, $2, 'Operator', $3, 'x', $4)",
                operator_id, AccountKind.ORGANISATION.value, f"op-{operator_id.hex[:8]}@example.org", when)
            await conn.execute(
                "INSERT INTO account_roles (id, account_id, role, status, created_at) VALUES ($1, $2, $3, $4, $5)",
                uuid.uuid4(), operator_id, Role.APP_OPERATOR.value, RoleStatus.ACTIVE.value, when)
            await conn.execute(
                "INSERT INTO accounts (id, kind, display_name, email, password_hash, created_at)"
                " SELECT id, 'person', 'Person', 'p-' || id::text || '@example.org', 'x', $2 FROM unnest($1::uuid[]) id",
                ids, when)
            await conn.execute(
                "INSERT INTO account_roles (id, account_id, role, status, created_at)"
                " SELECT gen_random_uuid(), id, 'individual', 'active', $2 FROM unnest($1::uuid[]) id", ids, when)
            await conn.execute(
                "INSERT INTO entrustments (id, individual_account_id, operator_account_id, external_user_id, status,"
                " agreement_version, created_at)"
                " SELECT gen_random_uuid(), i, $2, e, 'active', 'v1', $3 FROM unnest($1::uuid[], $4::text[]) AS t(i, e)",
                ids, operator_id, when, externals)
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
