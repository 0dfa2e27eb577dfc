"""Helpers shared by the tests/api/test_conventions_*.py modules (not collected by itself)."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from migrations.metadata import target_metadata
from server.app import create_app

# Text that must never reach a client: stack traces, driver and ORM names, SQL.
LEAKS = ("Traceback", "sqlalchemy", "SQLAlchemy", "asyncpg", "SELECT", "psycopg", "File \"")


async def table_counts(services) -> dict[str, int]:
    """Rows in every application table: a failed request must leave these unchanged."""
    counts = {}
    async with services.session_factory() as session:
        for table in target_metadata.sorted_tables:
            counts[table.name] = (await session.execute(select(func.count()).select_from(table))).scalar_one()
    return counts


def assert_no_leak(response: httpx.Response) -> None:
    text = response.text
    for marker in LEAKS:
        assert marker not in text, (marker, text[:500])


def codes(body: dict) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors", [])]


def client_for(services, host: str = "127.0.0.1", app=None) -> httpx.AsyncClient:
    """An extra HTTP client into the real app, calling from `host`."""
    app = app or create_app(services, dispose_on_shutdown=False)
    transport = httpx.ASGITransport(app=app, client=(host, 41000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")
