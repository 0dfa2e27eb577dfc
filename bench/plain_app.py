"""The baselines of the read benchmarks: plain Starlette JSON routes reading the same database with
SQLAlchemy on asyncpg, with no GraphQL, no authentication, no rate limit and no cache.

- /wallet: what `myWallet { balance held lifetimePoints lifetimeReductionGrams lots(first: 20) { ... } }`
  returns (the wallet row with its stale-points sum, then 20 lots);
- /mall: a page of the public catalog as frontend_contracts/consumer/Mall.graphql asks for it
  (active listings open now, the same filters and sorts, keyset order, a cursor per row)."""

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

from core.keyset import encode_cursor

WALLET = text(
    "SELECT w.available_points, w.held_points, w.lifetime_points, w.lifetime_reduction_mg,"
    " (SELECT coalesce(sum(points_remaining), 0)::bigint FROM point_lots l WHERE l.wallet_id = w.account_id"
    "  AND l.points_remaining > 0 AND l.expires_at <= :now) AS stale"
    " FROM wallets w WHERE w.account_id = :id")
LOTS = text(
    "SELECT expires_at, points_remaining FROM point_lots WHERE wallet_id = :id ORDER BY expires_at, id LIMIT 20")


MALL_COLUMNS = ("SELECT id, merchant_id, kind, title, category, image_urls, price_points, stock_available,"
                " per_person_limit, channel, app_operator_id, revision, published_at FROM listings"
                " WHERE status = 'active' AND (available_from IS NULL OR available_from <= :now)"
                " AND (available_until IS NULL OR available_until > :now)")
MALL_FILTERS = {  # query parameter -> (condition, how the value is read)
    "channel": ("channel = :channel", str.lower),  # PLATFORM | APP, as the GraphQL enum
    "appOperatorId": ("app_operator_id = :appOperatorId", uuid.UUID),
    "category": ("category = :category", str),
    "merchantId": ("merchant_id = :merchantId", uuid.UUID),
    "minPrice": ("price_points >= :minPrice", int),
    "maxPrice": ("price_points <= :maxPrice", int),
    "text": ("(title ILIKE :text OR description ILIKE :text)", str),
}
MALL_ORDER = {"NEWEST": ("published_at", " ORDER BY published_at DESC, id DESC"),
              "PRICE_ASC": ("price_points", " ORDER BY price_points, id"),
              "PRICE_DESC": ("price_points", " ORDER BY price_points DESC, id DESC")}


def _mall_statement(params) -> tuple[str, dict]:
    sql, values = MALL_COLUMNS, {"now": datetime.now(timezone.utc)}
    for name, (condition, read) in MALL_FILTERS.items():
        if name in params:
            sql += " AND " + condition
            value = read(params[name])
            if name == "text":
                value = "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            values[name] = value
    key, order = MALL_ORDER[params.get("sort", "NEWEST")]
    values["limit"] = int(params.get("first", 20)) + 1
    return sql + order + " LIMIT :limit", values


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

    async def mall(request: Request) -> JSONResponse:
        sql, values = _mall_statement(request.query_params)
        key = MALL_ORDER[request.query_params.get("sort", "NEWEST")][0]
        async with engine.connect() as conn:
            rows = (await conn.execute(text(sql), values)).all()
        first = values["limit"] - 1
        edges = [{"cursor": encode_cursor([getattr(r, key), r.id]), "node": {
            "id": str(r.id), "merchantId": str(r.merchant_id), "kind": r.kind.upper(), "title": r.title,
            "category": r.category, "imageUrls": list(r.image_urls), "pricePoints": r.price_points,
            "stockAvailable": r.stock_available, "perPersonLimit": r.per_person_limit, "channel": r.channel.upper(),
            "appOperatorId": str(r.app_operator_id) if r.app_operator_id else None, "revision": r.revision}}
            for r in rows[:first]]
        page_info = {"hasNextPage": len(rows) > first, "endCursor": edges[-1]["cursor"] if edges else None}
        return JSONResponse({"data": {"mall": {"edges": edges, "pageInfo": page_info}}})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(app):
        yield
        await engine.dispose()

    return Starlette(routes=[Route("/wallet", wallet), Route("/mall", mall), Route("/healthz", healthz)], lifespan=lifespan)
