"""Accounts in bulk for tests, benchmarks and load drills: the one place that writes account,
role, entrustment and API-key rows without the sign-up flow.

Seeded accounts have approved roles (as after the regulator's decision, art. 9-10) and no
password (the hash `x` matches none), so nobody can sign in as them. Rows are written set-wise
(one statement per table) so a benchmark can seed thousands of people in one round trip. The
running service never calls these: people sign up and organisations apply through accounts.service."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Sequence

import asyncpg

from accounts.models import AccountKind, RoleStatus
from accounts.security import keyed_hash, random_token
from accounts.service import API_KEY_PREFIX

NO_PASSWORD = "x"


async def seed_organisations(conn: asyncpg.Connection, *, ids: Sequence[uuid.UUID], roles: Sequence[str],
                             when: datetime, name: str | None = None,
                             kind: str = AccountKind.ORGANISATION.value) -> None:
    """Organisation accounts, each holding every role of `roles`, active since `when`."""
    await conn.execute(
        "INSERT INTO accounts (id, kind, display_name, email, password_hash, created_at)"
        " SELECT id, $2, coalesce($3, 'Org ' || left(id::text, 8)), 'o-' || id::text || '@example.org', $4, $5"
        " FROM unnest($1::uuid[]) id", list(ids), kind, name, NO_PASSWORD, when)
    await conn.execute(
        "INSERT INTO account_roles (id, account_id, role, status, created_at)"
        " SELECT gen_random_uuid(), id, role, $3, $4 FROM unnest($1::uuid[]) id, unnest($2::text[]) role",
        list(ids), list(roles), RoleStatus.ACTIVE.value, when)


async def seed_people(conn: asyncpg.Connection, *, ids: Sequence[uuid.UUID], when: datetime) -> None:
    """Individuals (art. 2) with the INDIVIDUAL role."""
    await conn.execute(
        "INSERT INTO accounts (id, kind, display_name, email, password_hash, created_at)"
        " SELECT id, $2, 'Person', 'p-' || id::text || '@example.org', $3, $4 FROM unnest($1::uuid[]) id",
        list(ids), AccountKind.PERSON.value, NO_PASSWORD, when)
    await conn.execute(
        "INSERT INTO account_roles (id, account_id, role, status, created_at)"
        " SELECT gen_random_uuid(), id, 'individual', $2, $3 FROM unnest($1::uuid[]) id",
        list(ids), RoleStatus.ACTIVE.value, when)


async def seed_entrustments(conn: asyncpg.Connection, *, operator_id: uuid.UUID, people: Sequence[uuid.UUID],
                            external_ids: Sequence[str], when: datetime) -> None:
    """Active entrustments (art. 6): person i is `external_ids[i]` in the operator's app."""
    await conn.execute(
        "INSERT INTO entrustments (id, individual_account_id, operator_account_id, external_user_id, status,"
        " agreement_version, created_at)"
        " SELECT gen_random_uuid(), i, $2, e, 'active', 'v1', $3 FROM unnest($1::uuid[], $4::text[]) AS t(i, e)",
        list(people), operator_id, when, list(external_ids))


async def seed_api_key(conn: asyncpg.Connection, *, account_id: uuid.UUID, secret_key: str,
                       scopes: Sequence[str], when: datetime) -> str:
    """An API key as accounts.service.create_api_key stores it (hashed); returns the plaintext."""
    prefix = secrets.token_hex(6)
    plaintext = f"{API_KEY_PREFIX}_{prefix}_{random_token(32)}"
    await conn.execute(
        "INSERT INTO api_keys (id, account_id, name, prefix, secret_hash, scopes, created_by, created_at)"
        " VALUES ($1, $2, 'seeded', $3, $4, $5, $2, $6)",
        uuid.uuid4(), account_id, prefix, keyed_hash(secret_key, plaintext), list(scopes), when)
    return plaintext
