"""Benchmarks 1 and 2: issuing points for behaviour reports.

The workload: `reports` SZ-METRO reports over `wallets` entrusted people of one approved operator,
in 1,000-item batches; batch b holds the people (b*1000 + i) mod wallets, so a full-size batch
touches 1,000 different wallets and every wallet is credited once per 10 batches. Every batch is
its own transaction.

1. `issuance`: reductions.service.report_behaviour, batch after batch (and `issuance-4x`: four
   batches at a time over disjoint quarters of the wallets). Baseline: asyncpg
   copy_records_to_table of the rows the issuance wrote (its behaviour_reports and credit
   wallet_entries rows, one point_lots row and one wallets row per wallet credited in a batch, as
   PostgreSQL writes a row version for each lot upsert and wallet update) into scratch copies of
   those tables (LIKE ... INCLUDING ALL), batch after batch, one transaction per batch.
2. `graphql-issuance`: the same batches as `reportBehaviour` mutations over HTTP with an API key,
   to a uvicorn server of the app in a subprocess; its baseline is the domain-layer figure above,
   measured again in the same run.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import date, datetime, timedelta

from bench import env as E
from bench.common import Result, scaled

BATCH = 1000
QUANTITIES = ["3.2", "12.4", "7.5", "18.9", "1.6", "25.0"]
WORLD = "issuance_world"

REPORT = """
mutation Report($input: ReportBehaviourInput!) {
  reportBehaviour(input: $input) {
    results { reportId status rejectCode points reductionMg lotId expiresAt uncreditedReductionMg uncreditedReason }
    errors { code field message }
  }
}"""


def make_batches(world: E.World, reports: int, groups: int = 1, tag: str = "r") -> list[list[list]]:
    """`groups` lists of batches of ReportItem; group g only reports for its own slice of the wallets."""
    from reductions.service import ReportItem

    t0 = E.now()
    wallets = len(world.externals)
    per_group = reports // groups
    out = []
    for g in range(groups):
        lo, hi = g * wallets // groups, (g + 1) * wallets // groups
        span = hi - lo
        batches = []
        for start in range(0, per_group, BATCH):
            batch = []
            for k in range(start, min(start + BATCH, per_group)):
                external = world.externals[lo + k % span]
                batch.append(ReportItem(report_id=f"{tag}-{g}-{k}", external_user_id=external,
                                        methodology_code="SZ-METRO", quantity=QUANTITIES[k % len(QUANTITIES)],
                                        occurred_at=t0 - timedelta(minutes=5 + k % 1440)))
            batches.append(batch)
        out.append(batches)
    return out


async def prepare_world(env: E.Embedded, wallets: int) -> E.World:
    await env.clone(WORLD)
    conn = await env.connect(WORLD)
    try:
        world = await E.make_world(conn, wallets)
        await E.publish_rule(conn)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return world


class DomainSide:
    """report_behaviour on its own clone of the world; a round is a few batches run at once,
    each in its own transaction."""

    def __init__(self, env: E.Embedded, db: str, world: E.World):
        self.env, self.db, self.world = env, db, world

    async def open(self) -> "DomainSide":
        url = await self.env.clone(self.db, WORLD)
        self.services = E.services(self.env, url)
        async with self.services.session_factory() as session:  # a first connection, outside the timing
            await session.connection()
        return self

    async def round(self, batches: list[list]) -> float:
        from reductions.service import ItemStatus, report_behaviour

        services = self.services

        async def one(batch) -> int:
            async with services.session_factory() as session:
                async with session.begin():
                    results = await report_behaviour(session=session, clock=services.clock,
                                                     operator_id=self.world.operator_id, items=batch)
            return sum(1 for r in results if r.status == ItemStatus.CREDITED)

        started = time.perf_counter()
        credited = sum(await asyncio.gather(*(one(b) for b in batches)))
        elapsed = time.perf_counter() - started
        if credited != sum(len(b) for b in batches):
            raise RuntimeError(f"report_behaviour credited {credited} of {sum(len(b) for b in batches)} reports")
        return elapsed

    async def close(self, audit: bool = True) -> None:
        from wallets.audit import ledger_audit

        try:
            if audit:
                async with self.services.session_factory() as session:
                    result = await ledger_audit(session=session)
                if not result.ok:
                    raise RuntimeError(f"the ledger does not reconcile after issuance: {result}")
        finally:
            await self.services.redis.aclose()
            await self.services.engine.dispose()


class CopySide:
    """The baseline: COPY the rows a domain round wrote into scratch copies of the four tables,
    one transaction per batch (batches of a round on as many connections at once)."""

    TABLES = ("behaviour_reports", "wallet_entries", "point_lots", "wallets")

    def __init__(self, env: E.Embedded, source_db: str, db: str, world: E.World, connections: int):
        self.env, self.source_db, self.db, self.world, self.n = env, source_db, db, world, connections
        self.serial = 0

    async def open(self) -> "CopySide":
        await self.env.clone(self.db, WORLD)
        self.source = await self.env.connect(self.source_db)
        self.conns = [await self.env.connect(self.db) for _ in range(self.n)]
        for table in self.TABLES:
            await self.conns[0].execute(f"CREATE TABLE x_{table} (LIKE {table} INCLUDING ALL)")
        return self

    async def rows_of(self, batch: list) -> tuple[list, ...]:
        """What the issuance wrote for this batch (read back, untimed): its reports and credit
        entries, and a row per lot and per wallet it wrote (fresh keys: the copies keep their
        unique indexes)."""
        reports = await self.source.fetch(
            "SELECT b.* FROM unnest($2::text[]) r(id) CROSS JOIN LATERAL (SELECT * FROM behaviour_reports x"
            " WHERE x.operator_account_id = $1 AND x.report_id = r.id LIMIT 1) b",
            self.world.operator_id, [i.report_id for i in batch])
        lot_ids = list({r["lot_id"] for r in reports})
        entries = await self.source.fetch(
            "SELECT * FROM wallet_entries WHERE lot_id = ANY($1::uuid[]) AND kind = 'credit'"
            " AND report_id = ANY($2::uuid[])", lot_ids, [r["id"] for r in reports])
        lots = await self.source.fetch("SELECT * FROM point_lots WHERE id = ANY($1::uuid[])", lot_ids)
        wallets = await self.source.fetch("SELECT * FROM wallets WHERE account_id = ANY($1::uuid[])",
                                          list({r["wallet_id"] for r in reports}))
        if len(entries) != len(reports):
            raise RuntimeError("the issuance wrote a credit entry per report; found otherwise")
        lot_rows = []
        for lot in lots:
            self.serial += 1
            lot = dict(lot)
            lot["id"], lot["issue_date"] = uuid.uuid4(), date(2000, 1, 1) + timedelta(days=self.serial)
            lot_rows.append(lot)
        wallet_rows = [dict(w, account_id=uuid.uuid4()) for w in wallets]
        return reports, entries, lot_rows, wallet_rows

    async def round(self, batches: list[list]) -> float:
        rows = [await self.rows_of(b) for b in batches]

        async def copy(conn, written) -> None:
            async with conn.transaction():
                for table, records in zip(self.TABLES, written):
                    columns = list(records[0].keys())
                    await conn.copy_records_to_table(f"x_{table}", columns=columns,
                                                     records=[tuple(r.values()) for r in records])

        started = time.perf_counter()
        await asyncio.gather(*(copy(conn, written) for conn, written in zip(self.conns, rows)))
        return time.perf_counter() - started

    async def close(self) -> None:
        await self.source.close()
        for conn in self.conns:
            await conn.close()


class GraphQLSide:
    """reportBehaviour mutations with an operator API key, over HTTP to a uvicorn server of the
    app in a subprocess; a round is a few requests at once."""

    def __init__(self, env: E.Embedded, db: str, world: E.World):
        self.env, self.db, self.world = env, db, world

    async def open(self) -> "GraphQLSide":
        import aiohttp

        url = await self.env.clone(self.db, WORLD)
        conn = await self.env.connect(self.db)
        try:
            key = await E.make_api_key(conn, self.world.operator_id)
        finally:
            await conn.close()
        self._server = E.http_server(self.env, "tanpuhui", url, rate_limit_per_minute=1_000_000_000,
                                     max_body_bytes=64_000_000)
        base = await self._server.__aenter__()
        self.client = aiohttp.ClientSession(base_url=base, headers={"X-API-Key": key})
        async with self.client.post("/graphql", json={"query": "{ exchangeRules { version } }"}) as warm:
            if warm.status != 200:
                raise RuntimeError(await warm.text())
        return self

    async def round(self, batches: list[list]) -> float:
        import orjson

        bodies = [orjson.dumps({"query": REPORT, "operationName": "Report", "variables": {"input": {"items": [
            {"reportId": i.report_id, "externalUserId": i.external_user_id, "methodologyCode": i.methodology_code,
             "quantity": i.quantity, "occurredAt": i.occurred_at.isoformat()} for i in batch]}}}) for batch in batches]

        async def one(body: bytes) -> int:
            async with self.client.post("/graphql", data=body, headers={"Content-Type": "application/json"}) as response:
                payload = await response.read()
            data = orjson.loads(payload)
            if response.status != 200 or data.get("errors") or data["data"]["reportBehaviour"]["errors"]:
                raise RuntimeError(f"reportBehaviour failed: {response.status} {payload[:500]!r}")
            return sum(1 for r in data["data"]["reportBehaviour"]["results"] if r["status"] == "CREDITED")

        started = time.perf_counter()
        credited = sum(await asyncio.gather(*(one(b) for b in bodies)))
        elapsed = time.perf_counter() - started
        if credited != sum(len(b) for b in batches):
            raise RuntimeError(f"reportBehaviour credited {credited} of {sum(len(b) for b in batches)} reports")
        return elapsed

    async def close(self) -> None:
        try:
            await self.client.close()
        finally:
            await self._server.__aexit__(None, None, None)


async def paired(rounds: list[list[list]], figure_side, baseline_side) -> tuple[float, float]:
    """Run the rounds through both sides alternately (so a change in the machine's load affects
    both alike); returns the seconds each side spent."""
    figure = baseline = 0.0
    for batches in rounds:
        figure += await figure_side.round(batches)
        baseline += await baseline_side.round(batches)
    return figure, baseline


def rounds_of(groups: list[list[list]]) -> list[list[list]]:
    """Round r holds batch r of every group."""
    return [list(batches) for batches in zip(*groups)]

async def _issuance(env: E.Embedded, scale: float, graphql: bool) -> list[Result]:
    reports = scaled(100_000, scale, BATCH)
    wallets = scaled(10_000, scale, 100)
    world = await prepare_world(env, wallets)
    sequential = rounds_of(make_batches(world, reports, 1, "s"))
    concurrent = rounds_of(make_batches(world, reports, 4, "c"))
    n_seq = sum(len(b) for r in sequential for b in r)
    n_con = sum(len(b) for r in concurrent for b in r)
    note = (f"{n_seq:,} reports over {wallets:,} wallets in {BATCH}-item batches, each its own transaction; "
            "run alternately with its baseline, batch by batch")
    print(f"  {n_seq:,} reports, {wallets:,} wallets", flush=True)
    results = []
    for label, rounds, n, suffix in (("", sequential, n_seq, "seq"), ("-4x", concurrent, n_con, "con")):
        domain = await DomainSide(env, f"issuance_{suffix}", world).open()
        if graphql:
            other = await GraphQLSide(env, f"issuance_gql_{suffix}", world).open()
        else:
            other = await CopySide(env, f"issuance_{suffix}", f"issuance_copy_{suffix}", world,
                                   len(rounds[0])).open()
        try:
            domain_s, other_s = await paired(rounds, domain, other)
        finally:
            await other.close()
            await domain.close()
        extra = "" if not label else "; 4 batches at a time over disjoint quarters of the wallets"
        if graphql:
            print(f"  {'sequential' if not label else '4 at a time'}: reportBehaviour over HTTP {other_s:.1f} s, "
                  f"report_behaviour {domain_s:.1f} s", flush=True)
            results.append(Result(f"graphql-issuance{label}", n / other_s, "reports/s", n / domain_s,
                                  "report_behaviour in-process", 0.5, note + extra))
        else:
            print(f"  {'sequential' if not label else '4 at a time'}: report_behaviour {domain_s:.1f} s, "
                  f"COPY of its rows {other_s:.1f} s", flush=True)
            results.append(Result(f"issuance{label}", n / domain_s, "reports/s", n / other_s,
                                  "COPY of the same rows", 0.25, note + extra))
    return results


async def issuance(env: E.Embedded, scale: float) -> list[Result]:
    return await _issuance(env, scale, graphql=False)


async def graphql_issuance(env: E.Embedded, scale: float) -> list[Result]:
    return await _issuance(env, scale, graphql=True)
