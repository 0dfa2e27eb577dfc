"""Benchmark 6: browsing the mall's catalog over HTTP (issue 4).

`listings` (2,000) listings of `merchants` (20) merchants: goods and services in 8 categories,
prices of 100 to 9,900 points, a tenth in an app operator's mall, a few paused, drafts, not yet
open or already closed. 32 concurrent aiohttp clients ask for the public `mall` query of
frontend_contracts/consumer/Mall.graphql (anonymous, first 20) in 7 filter and sort variants:
newest; a category by price; a price range by price, descending; one merchant's; a text search;
the platform mall by price; an app mall. Each variant is asked with 32 price bounds that select
the very same rows (every price is a multiple of 100; the bounds differ by less), so that the
224 requests a client cycles through have 224 different cache keys.

  - `catalog-cached`: the app (uvicorn, in a subprocess) with its Redis catalog cache as it
    runs (pages kept for mall.catalog_cache.TTL_SECONDS), warmed before each timed round by asking
    for every page once, so nearly every request is a hit;
  - `catalog-cold`: the same requests, each preceded by the catalog cache's own invalidation
    (`INCR mall:catalog-version`, what every listing change does), so every page is read from
    PostgreSQL; with 224 keys in rotation no two requests in flight can share a page;
  - baseline: the plain Starlette route /mall of bench/plain_app.py, the same filters, order
    and columns as raw SQL on SQLAlchemy + asyncpg, served by uvicorn the same way.
Before timing, every variant's page from the app (cache cold and warm) and from the plain route
is checked to be the same rows. Figure: requests/s; the three run in ROUNDS alternating rounds.
The cache's hit rate in each phase is read from Redis' keyspace counters and printed.
"""

from __future__ import annotations

import asyncio
import urllib.parse
import uuid

from bench import env as E
from bench.common import Result, scaled
from bench.load import CLIENTS, load

DB = "catalog"
ROUNDS = 5
CATEGORIES = ["daily", "food", "transport", "books", "home", "outdoor", "kitchen", "mobility"]
TITLES = ["竹制牙刷", "帆布购物袋", "公交月卡", "二手图书", "节能灯泡", "户外水壶", "不锈钢吸管", "共享单车骑行券"]
MALL = (E.ROOT / "frontend_contracts" / "consumer" / "Mall.graphql").read_text()


async def seed(env: E.Embedded, listings: int, merchants: int) -> tuple[list[uuid.UUID], uuid.UUID]:
    await env.clone(DB)
    conn = await env.connect(DB)
    try:
        operator = await E.make_organisation(conn, "app_operator", "Bench app operator")
        merchant_ids = [await E.make_organisation(conn, "merchant", f"Bench merchant {n}") for n in range(merchants)]
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO listings (id, merchant_id, kind, title, description, category, image_urls, price_points,"
                " stock_available, per_person_limit, available_from, available_until, channel, app_operator_id, status,"
                " revision, created_at, updated_at, published_at)"
                " SELECT gen_random_uuid(), ($1::uuid[])[1 + i % cardinality($1::uuid[])],"
                "  CASE WHEN i % 5 = 0 THEN 'service' ELSE 'goods' END,"
                "  ($2::text[])[1 + i % 8] || ' ' || i, '低碳生活好物，第 ' || i || ' 号。', ($3::text[])[1 + i % 8],"
                "  ARRAY['https://img.example.org/listing/' || i || '.jpg'], 100 * (1 + (i * 37) % 99),"
                "  CASE WHEN i % 5 = 0 THEN NULL ELSE 50 + i % 200 END, CASE WHEN i % 3 = 0 THEN 2 END,"
                "  CASE WHEN i % 50 = 7 THEN now() + interval '3 days' END,"
                "  CASE WHEN i % 50 = 8 THEN now() - interval '1 day' END,"
                "  CASE WHEN i % 10 = 9 THEN 'app' ELSE 'platform' END, CASE WHEN i % 10 = 9 THEN $4::uuid END,"
                "  CASE WHEN i % 40 = 1 THEN 'paused' WHEN i % 40 = 2 THEN 'draft' ELSE 'active' END, 1,"
                "  now() - i * interval '1 hour', now() - i * interval '1 hour',"
                "  CASE WHEN i % 40 <> 2 THEN now() - i * interval '1 hour' + interval '5 minutes' END"
                " FROM generate_series(1, $5) i", merchant_ids, TITLES, CATEGORIES, operator, listings)
            await conn.execute(
                "INSERT INTO stock_movements (id, listing_id, kind, delta, quantity, at)"
                " SELECT gen_random_uuid(), id, 'restock', stock_available, stock_available, created_at FROM listings"
                " WHERE stock_available IS NOT NULL")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return merchant_ids, operator


def variants(merchants: list[uuid.UUID], operator: uuid.UUID) -> list[tuple[str, dict]]:
    return [("NEWEST", {}),
            ("PRICE_ASC", {"category": "daily"}),
            ("PRICE_DESC", {"minPrice": 1000, "maxPrice": 3000}),
            ("NEWEST", {"merchantId": str(merchants[3 % len(merchants)])}),
            ("NEWEST", {"text": "竹"}),
            ("PRICE_ASC", {"channel": "PLATFORM"}),
            ("NEWEST", {"channel": "APP", "appOperatorId": str(operator)})]


def requests_for(variant_list: list[tuple[str, dict]], copy: int) -> tuple[tuple, tuple]:
    """(GraphQL request, plain request) of every variant, with price bounds of `copy` (0..99) that
    select the same rows as the variant's own."""
    gql, plain = [], []
    for sort, filter_ in variant_list:
        bounded = dict(filter_)
        if "maxPrice" in bounded:
            bounded["maxPrice"] += copy
        else:
            bounded["maxPrice"] = 1_000_000 + copy
        gql.append(("/graphql", {}, {"query": MALL, "operationName": "Mall",
                                     "variables": {"filter": bounded, "sort": sort, "first": 20}}))
        plain.append(("/mall?" + urllib.parse.urlencode({**bounded, "sort": sort, "first": 20}), {}, None))
    return gql, plain


async def catalog(env: E.Embedded, scale: float) -> list[Result]:
    import aiohttp
    import orjson
    import redis.asyncio as aioredis

    from mall.catalog_cache import VERSION_KEY

    listings = scaled(2_000, scale, 200)
    merchants = 20
    seconds = max(2.0, 10.0 * scale) if scale < 1 else 10.0
    merchant_ids, operator = await seed(env, listings, merchants)
    url = env.url(DB)
    variant_list = variants(merchant_ids, operator)
    gql_requests, plain_requests = [], []
    for copy in range(CLIENTS):
        gql, plain = requests_for(variant_list, copy)
        gql_requests += gql
        plain_requests += plain

    def nodes_gql(payload: bytes) -> tuple[list, bool]:
        data = orjson.loads(payload)
        if "errors" in data or not data["data"]["mall"]["edges"]:
            raise RuntimeError(f"mall failed: {payload[:300]!r}")
        page = data["data"]["mall"]
        return [e["node"] for e in page["edges"]], page["pageInfo"]["hasNextPage"]

    def nodes_plain(payload: bytes) -> tuple[list, bool]:
        page = orjson.loads(payload)["data"]["mall"]
        if not page["edges"]:
            raise RuntimeError(f"the plain route found nothing: {payload[:300]!r}")
        return [e["node"] for e in page["edges"]], page["pageInfo"]["hasNextPage"]

    redis = aioredis.from_url(env.redis_url)

    async def invalidate() -> None:
        await redis.incr(VERSION_KEY)

    async def misses() -> tuple[int, int]:
        stats = await redis.info("stats")
        return stats["keyspace_hits"], stats["keyspace_misses"]

    async def warm(client, requests) -> None:
        pending = list(requests)

        async def worker() -> None:
            while pending:
                path, _, body = pending.pop()
                async with client.post(path, json=body) as response:
                    nodes_gql(await response.read())

        await asyncio.gather(*(worker() for _ in range(CLIENTS)))

    totals = {name: [0, 0.0] for name in ("plain", "cached", "cold")}
    page_hits = {"cached": [0, 0], "cold": [0, 0]}  # [page misses, requests]
    try:
        async with E.http_server(env, "plain", url) as plain_base, \
                E.http_server(env, "tanpuhui", url, anonymous_rate_limit_per_minute=1_000_000_000) as gql_base:
            async with aiohttp.ClientSession(base_url=plain_base, connector=aiohttp.TCPConnector(limit=CLIENTS)) as plain, \
                    aiohttp.ClientSession(base_url=gql_base, connector=aiohttp.TCPConnector(limit=CLIENTS)) as gql:
                # the same rows, whichever way they are read
                for (path, _, body), (plain_path, _, _) in zip(gql_requests[:len(variant_list)], plain_requests):
                    await invalidate()
                    pages = []
                    for _ in range(2):  # cold, then from the cache
                        async with gql.post(path, json=body) as response:
                            pages.append(nodes_gql(await response.read()))
                    async with plain.get(plain_path) as response:
                        pages.append(nodes_plain(await response.read()))
                    if not pages[0] == pages[1] == pages[2]:
                        raise RuntimeError(f"the app and the plain route disagree on {body['variables']}")

                def check_gql(payload: bytes) -> None:
                    if b'"errors"' in payload or b'"edges":[]' in payload:
                        nodes_gql(payload)  # raises with the payload

                def check_plain(payload: bytes) -> None:
                    if b'"edges":[]' in payload:
                        nodes_plain(payload)

                warmup = min(2.0, seconds / 3)
                for round_ in range(ROUNDS):
                    for name, client, requests, check, before in (
                            ("plain", plain, plain_requests, check_plain, None),
                            ("cached", gql, gql_requests, check_gql, None),
                            ("cold", gql, gql_requests, check_gql, invalidate)):
                        if name == "cached":  # every page once, so the timed requests find them cached
                            await warm(gql, gql_requests)
                        hits0, misses0 = await misses()
                        done, spent = await load(client, requests, seconds / ROUNDS, check,
                                                 warmup if round_ == 0 else 0, before=before)
                        hits1, misses1 = await misses()
                        totals[name][0] += done
                        totals[name][1] += spent
                        if name in page_hits and not (warmup and round_ == 0):
                            page_hits[name][0] += misses1 - misses0
                            page_hits[name][1] += done
    finally:
        await redis.aclose()
    plain_rps, cached_rps, cold_rps = (totals[n][0] / totals[n][1] for n in ("plain", "cached", "cold"))
    miss_rate = {n: (m / r if r else 0.0) for n, (m, r) in page_hits.items()}
    print(f"  plain route {plain_rps:,.0f} requests/s, mall cached {cached_rps:,.0f} requests/s "
          f"(page cache misses {miss_rate['cached']:.1%}), cold {cold_rps:,.0f} requests/s "
          f"(misses {miss_rate['cold']:.1%})", flush=True)
    note = (f"{listings:,} listings of {merchants} merchants, 7 filter/sort variants, pages of 20, {CLIENTS} clients, "
            f"{seconds:g} s per phase in {ROUNDS} alternating rounds")
    label = "plain Starlette route, raw SQL"
    return [Result("catalog-cached", cached_rps, "requests/s", plain_rps, label, 0.5,
                   note + f"; page cache misses {miss_rate['cached']:.1%}"),
            Result("catalog-cold", cold_rps, "requests/s", plain_rps, label, 0.5,
                   note + f"; the catalog version bumped before every request, page cache misses "
                          f"{miss_rate['cold']:.1%}")]
