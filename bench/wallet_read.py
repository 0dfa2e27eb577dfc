"""Benchmark 3: the consumer's wallet over HTTP.

`people` signed-in individuals, each with a wallet of 25 lots (so `lots(first: 20)` is a full
page), read by 32 concurrent aiohttp clients for `seconds` per phase, person after person:
  - graphql: the `myWallet` query with a bearer access token (issued with the app's secret,
    no password sign-in), to a uvicorn server of the app in a subprocess;
  - baseline: a plain Starlette JSON route (bench/plain_app.py) returning the same data from the
    same database with SQLAlchemy on asyncpg, served by uvicorn the same way.
Figure: requests/s. The two run in alternating rounds (5 of each), after a short warm-up.
"""

from __future__ import annotations

import uuid

from bench import env as E
from bench.common import Result, scaled
from bench.load import CLIENTS, load

LOTS_PER_WALLET = 25
QUERY = """query MyWallet {
  myWallet {
    balance held lifetimePoints lifetimeReductionGrams
    lots(first: 20) { edges { node { expiresAt pointsRemaining } } }
  }
}"""
DB = "wallet_read"
ROUNDS = 5


async def seed(env: E.Embedded, people: int) -> E.World:
    url = await env.clone(DB)
    conn = await env.connect(DB)
    try:
        world = await E.make_world(conn, people)
        await E.fund_wallets(url, world, LOTS_PER_WALLET)  # 25 day lots each, issued over the last 25 days
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return world


async def wallet_read(env: E.Embedded, scale: float) -> list[Result]:
    import orjson

    from accounts.security import issue_access_token

    people = scaled(2_000, scale, 64)
    seconds = max(2.0, 10.0 * scale) if scale < 1 else 10.0
    world = await seed(env, people)
    url = env.url(DB)
    note = f"{people:,} people with {LOTS_PER_WALLET} lots each, {CLIENTS} clients, {seconds:g} s per phase"
    print(f"  wallet-read: {note}", flush=True)

    issued = E.now()
    tokens = [issue_access_token(secret=E.SECRET_KEY, account_id=p, kind="person", roles=frozenset({"individual"}),
                                 family_id=uuid.uuid4(), now=issued, ttl_seconds=3600)[0] for p in world.people]
    body = {"query": QUERY, "operationName": "MyWallet"}
    gql_requests = [("/graphql", {"Authorization": f"Bearer {t}"}, body) for t in tokens]
    plain_requests = [(f"/wallet?account={p}", {}, None) for p in world.people]

    def check_gql(payload: bytes) -> None:
        data = orjson.loads(payload)
        if "errors" in data or len(data["data"]["myWallet"]["lots"]["edges"]) != 20:
            raise RuntimeError(f"myWallet failed: {payload[:300]!r}")

    def check_plain(payload: bytes) -> None:
        if len(orjson.loads(payload)["data"]["myWallet"]["lots"]) != 20:
            raise RuntimeError(f"the plain route failed: {payload[:300]!r}")

    import aiohttp

    totals = {"plain": [0, 0.0], "graphql": [0, 0.0]}
    async with E.http_server(env, "plain", url) as plain_base, \
            E.http_server(env, "tanpuhui", url, rate_limit_per_minute=1_000_000_000) as gql_base:
        async with aiohttp.ClientSession(base_url=plain_base, connector=aiohttp.TCPConnector(limit=CLIENTS)) as plain, \
                aiohttp.ClientSession(base_url=gql_base, connector=aiohttp.TCPConnector(limit=CLIENTS)) as gql:
            warmup = min(2.0, seconds / 3)
            for round_ in range(ROUNDS):  # alternately, so a change in the machine's load hits both alike
                for name, client, requests, check in (("plain", plain, plain_requests, check_plain),
                                                      ("graphql", gql, gql_requests, check_gql)):
                    done, spent = await load(client, requests, seconds / ROUNDS, check, warmup if round_ == 0 else 0)
                    totals[name][0] += done
                    totals[name][1] += spent
    plain_rps, graphql_rps = (totals[n][0] / totals[n][1] for n in ("plain", "graphql"))
    print(f"  plain Starlette route {plain_rps:,.0f} requests/s, myWallet over GraphQL {graphql_rps:,.0f} requests/s",
          flush=True)
    return [Result("wallet-read", graphql_rps, "requests/s", plain_rps, "plain Starlette route", 0.5,
                   note + f", in {ROUNDS} alternating rounds")]
