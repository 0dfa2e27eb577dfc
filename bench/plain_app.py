"""The wallet-read baseline: a plain Starlette JSON route returning what `myWallet { balance held
lifetimePoints lifetimeReductionGrams lots(first: 20) { ... } }` returns, read from the same
database with SQLAlchemy on asyncpg (the wallet row with its stale-points sum, then 20 lots), with
no GraphQL, no authentication and no rate limit."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timezone

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

WALLET = text(
    "SELECT w.available_points, w.held_points, w.lifetime_points, w.lifetime_reduction_mg,"
    " (SELECT coalesce(sum(points_remaining), 0)::bigint FROM point_lots l WHERE l.wallet_id = w.account_id"
    "  AND l.points_remaining > 0 AND l.expires_at <= :now) AS stale"
    " FROM wallets w WHERE w.account_id = :id")
LOTS = text(
    "SELECT expires_at, points_remaining FROM point_lots WHERE wallet_id = :id ORDER BY expires_at, id LIMIT 20")


def create_plain_app(database_url: str, pool_size: int = 20) -> Starlette:
    engine = create_async_engine(database_url, pool_size=pool_size, max_overflow=pool_size,
                                 connect_args={"server_settings": {"application_name": "bench-plain",
                                                                   "timezone": "UTC"}})

    async def wallet(request: Request) -> JSONResponse:
        account_id = uuid.UUID(request.query_params["account"])
        async with engine.connect() as conn:
            row = (await conn.execute(WALLET, {"id": account_id, "now": datetime.now(timezone.utc)})).first()
            lots = (await conn.execute(LOTS, {"id": account_id})).all()
        if row is None:
            body = {"balance": 0, "held": 0, "lifetimePoints": 0, "lifetimeReductionGrams": 0}
        else:
            body = {"balance": row.available_points - row.stale, "held": row.held_points,
                    "lifetimePoints": row.lifetime_points, "lifetimeReductionGrams": row.lifetime_reduction_mg // 1000}
        body["lots"] = [{"expiresAt": lot.expires_at.isoformat(), "pointsRemaining": lot.points_remaining}
                        for lot in lots]
        return JSONResponse({"data": {"myWallet": body}})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(app):
        yield
        await engine.dispose()

    return Starlette(routes=[Route("/wallet", wallet), Route("/healthz", healthz)], lifespan=lifespan)
