"""Migrations (migrations/, server/migrate.py) match the models and run both ways."""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from migrations.metadata import target_metadata
from server.migrate import downgrade, upgrade
from tests.conftest import database_url


def _diff(connection) -> list:
    context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                           "compare_server_default": True})
    return compare_metadata(context, target_metadata)


async def _drift(url: str) -> list:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_diff)
    finally:
        await engine.dispose()


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"))
            return {row[0] for row in rows}
    finally:
        await engine.dispose()


async def test_the_models_match_the_migrated_database(services):
    async with services.engine.connect() as connection:
        differences = await connection.run_sync(_diff)
    assert differences == [], differences


async def test_a_fresh_database_migrates_up_down_and_up_again(embedded):
    name = f"mig_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host=embedded.pg_host, user="postgres", database="postgres")
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        url = database_url(embedded, name)
        app_tables = {table.name for table in target_metadata.sorted_tables}

        await asyncio.to_thread(upgrade, url)
        assert await _tables(url) == app_tables | {"alembic_version"}
        assert await _drift(url) == []

        await asyncio.to_thread(downgrade, url, "base")
        assert await _tables(url) == {"alembic_version"}

        await asyncio.to_thread(upgrade, url)
        assert await _tables(url) == app_tables | {"alembic_version"}
        assert await _drift(url) == []
        # migrating an up-to-date database again is a no-op
        await asyncio.to_thread(upgrade, url)
        assert await _drift(url) == []
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


async def test_the_drift_check_sees_drift(services):
    """The comparison is not vacuous: a hand-made change to the database is reported."""
    async with services.engine.begin() as connection:
        await connection.execute(text("DROP INDEX ix_audit_events_at"))
        await connection.execute(text("ALTER TABLE accounts ADD COLUMN nickname text"))
        await connection.execute(text("ALTER TABLE api_keys ALTER COLUMN name TYPE varchar(50)"))
    async with services.engine.connect() as connection:
        differences = await connection.run_sync(_diff)
    kinds = {(d[0] if isinstance(d, tuple) else d[0][0]) for d in differences}
    assert {"add_index", "remove_column", "modify_type"} <= kinds, differences
