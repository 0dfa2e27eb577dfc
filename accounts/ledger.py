"""The point ledger: credits into day lots, holds drawn soonest-expiry first, release, cancel
after use, expiry, and the audit that recomputes everything from the journal.

Lock order everywhere: wallet row first (ascending id when several), then its lots. That is
what keeps credits, holds, releases and sweeps running at once on one wallet from deadlocking
or losing a point."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from math import gcd

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.wallets import EntryKind, ExpiryNotice, ExpiryRun, HoldStatus, PointHold, PointLot, WalletEntry
from core.bulk import driver, read_driver
from core.clock import BUSINESS_TZ, Clock, business_date
from core.errors import DomainError, NotFound
from core.keyset import Page, PageItem, check_page_size, decode_cursor, encode_cursor, keyset_page

MAX_VALIDITY_YEARS = 10
NOTICE_DAYS = 30


# --- validity ----------------------------------------------------------------------------------


def anniversary(day: date, years: int) -> date:
    """The same calendar day `years` later; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def lot_expiry(issue_date: date, validity_years: int) -> datetime:
    """Credits issued on local day D expire at 00:00 Asia/Shanghai on D's anniversary
    `validity_years` later: usable through the day before, never longer than 10 years."""
    if not 1 <= validity_years <= MAX_VALIDITY_YEARS:
        raise DomainError("INVALID_VALIDITY", "Validity is 1 to 10 years.", "validityYears")
    local = datetime.combine(anniversary(issue_date, validity_years), time(0, 0), tzinfo=BUSINESS_TZ)
    return local.astimezone(timezone.utc)


# --- exact fractions of a point ----------------------------------------------------------------


@dataclass(frozen=True)
class Fraction:
    """A non-negative fraction of a point, kept exact (no floats)."""

    num: int
    den: int

    def plus(self, num: int, den: int) -> "Fraction":
        n, d = self.num * den + num * self.den, self.den * den
        g = gcd(n, d) or 1
        return Fraction(n // g, d // g)

    def split(self) -> tuple[int, "Fraction"]:
        whole, rest = divmod(self.num, self.den)
        return whole, Fraction(rest, self.den if rest else 1)


# --- wallets -----------------------------------------------------------------------------------


@dataclass
class WalletState:
    account_id: uuid.UUID
    available_points: int
    held_points: int
    remainder: Fraction


async def ensure_wallets(*, session: AsyncSession, clock: Clock, account_ids: list[uuid.UUID]) -> None:
    """One wallet per individual, created on first need (sign-up or first credit)."""
    if not account_ids:
        return
    conn = await driver(session)
    await conn.execute(
        "INSERT INTO wallets (account_id, available_points, held_points, lifetime_points, lifetime_reduction_mg,"
        " remainder_num, remainder_den, created_at)"
        " SELECT id, 0, 0, 0, 0, 0, 1, $2 FROM unnest($1::uuid[]) AS id ON CONFLICT DO NOTHING",
        sorted(set(account_ids)), clock.now(),
    )


async def lock_wallets(*, session: AsyncSession, account_ids: list[uuid.UUID]) -> dict[uuid.UUID, WalletState]:
    """Lock wallets in ascending id order (no deadlocks between batches) and read their state."""
    conn = await driver(session)
    rows = await conn.fetch(
        "SELECT account_id, available_points, held_points, remainder_num, remainder_den FROM wallets"
        " WHERE account_id = ANY($1::uuid[]) ORDER BY account_id FOR UPDATE",
        sorted(set(account_ids)),
    )
    return {
        r["account_id"]: WalletState(r["account_id"], r["available_points"], r["held_points"],
                                     Fraction(r["remainder_num"], r["remainder_den"]))
        for r in rows
    }


@dataclass(frozen=True)
class Credit:
    wallet_id: uuid.UUID
    points: int
    reduction_mg: int
    issue_date: date
    expires_at: datetime
    report_row_id: uuid.UUID
    rule_id: uuid.UUID
    operator_id: uuid.UUID


async def apply_credits(
    *, session: AsyncSession, clock: Clock, credits: list[Credit], remainders: dict[uuid.UUID, Fraction],
    reduction_without_points: dict[uuid.UUID, int] | None = None,
    uncredited_reduction: dict[uuid.UUID, int] | None = None,
) -> dict[uuid.UUID, uuid.UUID]:
    """Write credits set-based: upsert the day lots, append one credit entry per report, update
    the wallets (balance, lifetime totals, carried remainder). Wallets must be locked by the
    caller (lock_wallets). Returns report row id -> lot id.

    A credit of 0 points (a fraction carried over) still records its reduction on the wallet.
    Two lifetime reductions: credited (what the points were earned for, with those fractions) and
    reported (all the CO2e the reports avoided: credited plus `uncredited_reduction`, the part
    over a daily cap)."""
    now = clock.now()
    conn = await driver(session)
    lot_totals: dict[tuple, list[int]] = {}
    for c in credits:
        if c.points <= 0:
            continue
        key = (c.wallet_id, c.issue_date, c.expires_at, c.operator_id)
        totals = lot_totals.setdefault(key, [0, 0])
        totals[0] += c.points
        totals[1] += c.reduction_mg
    lot_ids: dict[tuple, uuid.UUID] = {}
    if lot_totals:
        keys = sorted(lot_totals)
        rows = await conn.fetch(
            "INSERT INTO point_lots AS l (id, wallet_id, issue_date, expires_at, operator_account_id, points_credited,"
            " points_remaining, points_held, reduction_mg, created_at)"
            " SELECT gen_random_uuid(), w, d, e, o, p, p, 0, r, $7"
            " FROM unnest($1::uuid[], $2::date[], $3::timestamptz[], $4::uuid[], $5::bigint[], $6::bigint[])"
            " AS t(w, d, e, o, p, r)"
            " ON CONFLICT (wallet_id, issue_date, expires_at, operator_account_id) DO UPDATE SET"
            " points_credited = l.points_credited + EXCLUDED.points_credited,"
            " points_remaining = l.points_remaining + EXCLUDED.points_remaining,"
            " reduction_mg = l.reduction_mg + EXCLUDED.reduction_mg"
            " RETURNING id, wallet_id, issue_date, expires_at, operator_account_id",
            [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], [k[3] for k in keys],
            [lot_totals[k][0] for k in keys], [lot_totals[k][1] for k in keys], now,
        )
        lot_ids = {(r["wallet_id"], r["issue_date"], r["expires_at"], r["operator_account_id"]): r["id"] for r in rows}

    by_report: dict[uuid.UUID, uuid.UUID] = {}
    entries = []
    for c in credits:
        if c.points <= 0:
            continue
        lot_id = lot_ids[(c.wallet_id, c.issue_date, c.expires_at, c.operator_id)]
        by_report[c.report_row_id] = lot_id
        entries.append((c.wallet_id, lot_id, c.points, c.reduction_mg, c.report_row_id, c.rule_id))
    if entries:
        columns = list(zip(*entries))
        await conn.execute(
            "INSERT INTO wallet_entries (id, wallet_id, lot_id, kind, points, reduction_mg, at, report_id, rule_id)"
            " SELECT gen_random_uuid(), w, l, 'credit', p, r, $7, rep, rul"
            " FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::bigint[], $5::uuid[], $6::uuid[])"
            " AS t(w, l, p, r, rep, rul)",
            list(columns[0]), list(columns[1]), list(columns[2]), list(columns[3]), list(columns[4]),
            list(columns[5]), now,
        )

    # per wallet: points, credited mg, uncredited mg
    wallet_points: dict[uuid.UUID, list[int]] = {w: [0, 0, 0] for w in remainders}
    for c in credits:
        totals = wallet_points.setdefault(c.wallet_id, [0, 0, 0])
        totals[0] += c.points
        totals[1] += c.reduction_mg
    for wallet_id, mg in (reduction_without_points or {}).items():
        wallet_points.setdefault(wallet_id, [0, 0, 0])[1] += mg
    for wallet_id, mg in (uncredited_reduction or {}).items():
        wallet_points.setdefault(wallet_id, [0, 0, 0])[2] += mg
    if wallet_points:
        ids = sorted(wallet_points)
        await conn.execute(
            "UPDATE wallets SET available_points = available_points + t.p, lifetime_points = lifetime_points + t.p,"
            " lifetime_reduction_mg = lifetime_reduction_mg + t.r,"
            " lifetime_reported_reduction_mg = lifetime_reported_reduction_mg + t.r + t.u,"
            " remainder_num = t.n, remainder_den = t.d"
            " FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])"
            " AS t(w, p, r, n, d, u)"
            " WHERE wallets.account_id = t.w",
            ids, [wallet_points[i][0] for i in ids], [wallet_points[i][1] for i in ids],
            [remainders[i].num for i in ids], [remainders[i].den for i in ids], [wallet_points[i][2] for i in ids],
        )
    return by_report


# --- holds -------------------------------------------------------------------------------------


class InsufficientPoints(DomainError):
    code = "INSUFFICIENT_POINTS"


async def place_hold(
    *, session: AsyncSession, clock: Clock, wallet_id: uuid.UUID, hold_id: uuid.UUID, points: int,
    reference: str,
) -> PointHold:
    """Set `points` aside, drawn from the soonest-expiring usable lots first. The hold id is the
    caller's: placing the same hold again returns it; another hold under that id is refused."""
    if points <= 0:
        raise DomainError("INVALID", "A hold is for a positive number of points.", "points")
    conn = await driver(session)
    # the steps run inside PostgreSQL (wallets/sql/wallet_place_hold.sql), one round trip
    outcome = await conn.fetchrow("SELECT code, usable FROM wallet_place_hold($1, $2, $3, $4, $5)",
                                  wallet_id, hold_id, points, reference, clock.now())
    if outcome["code"] == "no_wallet":
        raise InsufficientPoints(message="This wallet has no points.", field="points")
    if outcome["code"] == "conflict":
        raise DomainError("HOLD_ID_CONFLICT", "This hold id is already used for another hold.", "holdId")
    if outcome["code"] == "insufficient":
        raise InsufficientPoints(message=insufficient_message(outcome["usable"], points), field="points")
    return await session.get(PointHold, hold_id)


def insufficient_message(usable: int, needed: int) -> str:
    return f"The wallet has {usable} usable points; {needed} are needed."


async def _journal(conn, wallet_id: uuid.UUID, lot_ids: list, amounts: list, kind: EntryKind, at: datetime,
                   *, hold_id: uuid.UUID | None = None, expiry_run_id: uuid.UUID | None = None) -> None:
    await conn.execute(
        "INSERT INTO wallet_entries (id, wallet_id, lot_id, kind, points, reduction_mg, at, hold_id, expiry_run_id)"
        " SELECT gen_random_uuid(), $1, l, $2, p, 0, $3, $4, $5 FROM unnest($6::uuid[], $7::bigint[]) AS t(l, p)",
        wallet_id, kind.value, at, hold_id, expiry_run_id, lot_ids, amounts,
    )


async def _settle(session: AsyncSession, hold_id: uuid.UUID, wallet_id: uuid.UUID | None) -> tuple[PointHold, list]:
    hold = await session.get(PointHold, hold_id)
    if hold is None or (wallet_id is not None and hold.wallet_id != wallet_id):
        raise NotFound(message="No such hold.", field="holdId")
    conn = await driver(session)
    await conn.execute("SELECT 1 FROM wallets WHERE account_id = $1 FOR UPDATE", hold.wallet_id)
    await session.refresh(hold, with_for_update=True)
    draws = await conn.fetch(
        "SELECT d.lot_id, d.points, l.expires_at FROM hold_draws d JOIN point_lots l ON l.id = d.lot_id"
        " WHERE d.hold_id = $1 ORDER BY l.expires_at, d.lot_id FOR UPDATE OF l", hold_id,
    )
    return hold, list(draws)


async def release_hold(*, session: AsyncSession, clock: Clock, hold_id: uuid.UUID,
                       wallet_id: uuid.UUID | None = None) -> PointHold:
    """Give held points back to the very lots they came from, with their original expiry. Points
    of a lot that expired meanwhile are expired at once. Releasing twice changes nothing."""
    hold, draws = await _settle(session, hold_id, wallet_id)
    if hold.status == HoldStatus.VOIDED.value:
        return hold
    if hold.status != HoldStatus.PENDING.value:
        raise DomainError("HOLD_SETTLED", f"This hold was already {hold.status}.", "holdId")
    now = clock.now()
    conn = await driver(session)
    lot_ids, amounts = [d["lot_id"] for d in draws], [d["points"] for d in draws]
    expired = [(d["lot_id"], d["points"]) for d in draws if d["expires_at"] <= now]
    await conn.execute(
        "UPDATE point_lots SET points_held = points_held - t.p, points_remaining = points_remaining + t.p"
        " FROM unnest($1::uuid[], $2::bigint[]) AS t(l, p) WHERE point_lots.id = t.l", lot_ids, amounts,
    )
    await _journal(conn, hold.wallet_id, lot_ids, amounts, EntryKind.RELEASE, now, hold_id=hold_id)
    expired_points = sum(p for _, p in expired)
    if expired:
        await conn.execute(
            "UPDATE point_lots SET points_remaining = points_remaining - t.p"
            " FROM unnest($1::uuid[], $2::bigint[]) AS t(l, p) WHERE point_lots.id = t.l",
            [e[0] for e in expired], [e[1] for e in expired],
        )
        await _journal(conn, hold.wallet_id, [e[0] for e in expired], [e[1] for e in expired], EntryKind.EXPIRE,
                       now, hold_id=hold_id)
    await conn.execute(
        "UPDATE wallets SET held_points = held_points - $2, available_points = available_points + $2 - $3"
        " WHERE account_id = $1", hold.wallet_id, hold.points, expired_points,
    )
    hold.status, hold.settled_at = HoldStatus.VOIDED.value, now
    await session.flush()
    return hold


async def post_hold(*, session: AsyncSession, clock: Clock, hold_id: uuid.UUID,
                    wallet_id: uuid.UUID | None = None) -> tuple[PointHold, list[tuple[uuid.UUID, int]]]:
    """Use the held points: they are cancelled (注销) for good. Returns the lots and amounts
    cancelled. Posting twice changes nothing."""
    hold, draws = await _settle(session, hold_id, wallet_id)
    drawn = [(d["lot_id"], d["points"]) for d in draws]
    if hold.status == HoldStatus.POSTED.value:
        return hold, drawn
    if hold.status != HoldStatus.PENDING.value:
        raise DomainError("HOLD_SETTLED", f"This hold was already {hold.status}.", "holdId")
    now = clock.now()
    conn = await driver(session)
    lot_ids, amounts = [d[0] for d in drawn], [d[1] for d in drawn]
    await conn.execute(
        "UPDATE point_lots SET points_held = points_held - t.p"
        " FROM unnest($1::uuid[], $2::bigint[]) AS t(l, p) WHERE point_lots.id = t.l", lot_ids, amounts,
    )
    await _journal(conn, hold.wallet_id, lot_ids, amounts, EntryKind.CANCEL, now, hold_id=hold_id)
    await conn.execute("UPDATE wallets SET held_points = held_points - $2 WHERE account_id = $1",
                       hold.wallet_id, hold.points)
    hold.status, hold.settled_at = HoldStatus.POSTED.value, now
    await session.flush()
    return hold, drawn


# --- expiry ------------------------------------------------------------------------------------

_SWEEP_BATCH = """
WITH candidates AS (
    SELECT DISTINCT wallet_id FROM (
        SELECT wallet_id FROM point_lots WHERE points_remaining > 0 AND expires_at <= $1
        ORDER BY expires_at LIMIT $2) c
), wallet_locks AS (
    SELECT account_id FROM wallets WHERE account_id IN (SELECT wallet_id FROM candidates)
    ORDER BY account_id FOR UPDATE SKIP LOCKED
), due AS (
    SELECT l.id, l.wallet_id, l.points_remaining AS pts FROM point_lots l
    WHERE l.wallet_id IN (SELECT account_id FROM wallet_locks) AND l.points_remaining > 0 AND l.expires_at <= $1
    FOR UPDATE OF l
), emptied AS (
    UPDATE point_lots l SET points_remaining = 0 FROM due WHERE l.id = due.id
    RETURNING l.id, l.wallet_id, due.pts
), journal AS (
    INSERT INTO wallet_entries (id, wallet_id, lot_id, kind, points, reduction_mg, at, expiry_run_id)
    SELECT gen_random_uuid(), wallet_id, id, 'expire', pts, 0, $3, $4 FROM emptied
), balances AS (
    UPDATE wallets w SET available_points = w.available_points - s.pts
    FROM (SELECT wallet_id, sum(pts) AS pts FROM emptied GROUP BY wallet_id) s WHERE w.account_id = s.wallet_id
)
SELECT count(*) AS lots, coalesce(sum(pts), 0)::bigint AS points FROM emptied
"""


async def expire_due(
    *, session_factory: async_sessionmaker[AsyncSession], clock: Clock, as_of: datetime, batch_size: int = 5000,
) -> ExpiryRun:
    """Expire every lot past its expiry as of `as_of`: an expire entry per lot, the cancellation
    record (expiry run) with the totals. Each batch commits on its own, so a crash loses at most
    the batch in flight, and a rerun finds exactly what is still due. Wallets locked by another
    worker or a hold in progress are skipped and picked up by the next sweep."""
    run_id = uuid.uuid4()
    async with session_factory() as session:
        async with session.begin():
            session.add(ExpiryRun(id=run_id, as_of=as_of, started_at=clock.now()))
    total_lots = total_points = 0
    while True:
        async with session_factory() as session:
            async with session.begin():
                conn = await driver(session)
                row = await conn.fetchrow(_SWEEP_BATCH, as_of, batch_size, clock.now(), run_id)
                if row["lots"]:
                    await conn.execute(
                        "UPDATE expiry_runs SET lots_expired = lots_expired + $2, points_expired = points_expired + $3"
                        " WHERE id = $1", run_id, row["lots"], row["points"])
        total_lots += row["lots"]
        total_points += row["points"]
        if row["lots"] == 0:
            break
    async with session_factory() as session:
        async with session.begin():
            run = await session.get(ExpiryRun, run_id)
            run.finished_at = clock.now()
    return run


async def issue_expiry_notices(*, session: AsyncSession, clock: Clock, within_days: int = NOTICE_DAYS,
                               as_of: datetime | None = None) -> int:
    """One notice per lot whose usable points expire within `within_days` of `as_of` (default
    now), as the sweep that expired lots as of that time sees them; noticed at the clock's now."""
    now = clock.now()
    moment = as_of or now
    conn = await driver(session)
    status = await conn.execute(
        "INSERT INTO expiry_notices (lot_id, wallet_id, points, expires_at, created_at)"
        " SELECT id, wallet_id, points_remaining, expires_at, $3 FROM point_lots"
        " WHERE points_remaining > 0 AND expires_at > $2 AND expires_at <= $1"
        " ON CONFLICT (lot_id) DO NOTHING",
        moment + timedelta(days=within_days), moment, now,
    )
    return int(status.split()[-1])


# --- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WalletSummary:
    account_id: uuid.UUID
    balance: int  # usable now
    held: int
    awaiting_expiry: int  # past expiry, not yet swept: not usable
    lifetime_points: int
    lifetime_reduction_mg: int  # credited: what points were earned for
    remainder: Fraction
    lifetime_reported_reduction_mg: int = 0  # all reported CO2e avoided, capped reductions included


_SUMMARY_SQL = (
    "SELECT w.available_points, w.held_points, w.lifetime_points, w.lifetime_reduction_mg,"
    " w.lifetime_reported_reduction_mg, w.remainder_num,"
    " w.remainder_den, (SELECT coalesce(sum(l.points_remaining), 0) FROM point_lots l WHERE l.wallet_id = w.account_id"
    " AND l.points_remaining > 0 AND l.expires_at <= $2) AS stale FROM wallets w WHERE w.account_id = $1")


async def wallet_summary(*, session: AsyncSession, clock: Clock, account_id: uuid.UUID) -> WalletSummary:
    """One statement: the wallet's counters and its past-expiry points read in one snapshot.
    Straight through asyncpg: the consumer app's hottest read."""
    wallet = await (await read_driver(session)).fetchrow(_SUMMARY_SQL, account_id, clock.now())
    if wallet is None:
        return WalletSummary(account_id, 0, 0, 0, 0, 0, Fraction(0, 1))
    return WalletSummary(account_id, wallet["available_points"] - wallet["stale"], wallet["held_points"],
                         wallet["stale"], wallet["lifetime_points"], wallet["lifetime_reduction_mg"],
                         Fraction(wallet["remainder_num"], wallet["remainder_den"]),
                         wallet["lifetime_reported_reduction_mg"])


@dataclass(frozen=True)
class LotRow:
    id: uuid.UUID
    issue_date: date
    expires_at: datetime
    points_credited: int
    points_remaining: int
    points_held: int
    reduction_mg: int


_LOT_COLUMNS = "id, issue_date, expires_at, points_credited, points_remaining, points_held, reduction_mg"


async def list_lots(*, session: AsyncSession, account_id: uuid.UUID, first: int | None, after: str | None,
                    descending: bool = False, usable_only: bool = False, clock: Clock | None = None) -> Page:
    """A keyset page of the wallet's lots by (expires_at, id), through asyncpg (hot read)."""
    size = check_page_size(first)
    args: list = [account_id]
    where = ["wallet_id = $1"]
    if usable_only and clock is not None:
        args.append(clock.now())
        where.append(f"points_remaining > 0 AND expires_at > ${len(args)}")
    if after is not None:
        expires_at, lot_id = decode_cursor(after, 2, [PointLot.expires_at, PointLot.id])
        args += [expires_at, lot_id]
        where.append(f"(expires_at, id) {'<' if descending else '>'} (${len(args) - 1}, ${len(args)})")
    direction = "DESC" if descending else "ASC"
    rows = await (await read_driver(session)).fetch(
        f"SELECT {_LOT_COLUMNS} FROM point_lots WHERE {' AND '.join(where)}"
        f" ORDER BY expires_at {direction}, id {direction} LIMIT {size + 1}", *args)
    items = [PageItem(cursor=encode_cursor([r["expires_at"], r["id"]]), node=LotRow(*r.values()))
             for r in rows[:size]]
    return Page(items=items, has_next_page=len(rows) > size, has_previous_page=after is not None)


@dataclass(frozen=True)
class ExpiringDay:
    expires_on: date  # the local day the points expire at 00:00; usable through the day before
    points: int
    lots: int


async def expiring_soon(*, session: AsyncSession, clock: Clock, account_id: uuid.UUID, within_days: int) -> list[ExpiringDay]:
    if not 1 <= within_days <= 3660:
        raise DomainError("INVALID", "withinDays is 1 to 3660.", "withinDays")
    now = clock.now()
    rows = await session.execute(
        select(PointLot.expires_at, PointLot.points_remaining).where(
            PointLot.wallet_id == account_id, PointLot.points_remaining > 0, PointLot.expires_at > now,
            PointLot.expires_at <= now + timedelta(days=within_days)).order_by(PointLot.expires_at)
    )
    days: dict[date, ExpiringDay] = {}
    for expires_at, points in rows:
        day = business_date(expires_at)
        current = days.get(day)
        days[day] = ExpiringDay(day, (current.points if current else 0) + points, (current.lots if current else 0) + 1)
    return list(days.values())


async def history(*, session: AsyncSession, account_id: uuid.UUID, first: int | None, after: str | None,
                  kinds: list[str] | None = None) -> Page:
    stmt = select(WalletEntry).where(WalletEntry.wallet_id == account_id)
    if kinds:
        stmt = stmt.where(WalletEntry.kind.in_(kinds))
    return await keyset_page(session, stmt, keys=[WalletEntry.at, WalletEntry.id], first=first, after=after,
                             descending=True)


async def notices_for(*, session: AsyncSession, account_id: uuid.UUID) -> list[ExpiryNotice]:
    rows = await session.execute(
        select(ExpiryNotice).where(ExpiryNotice.wallet_id == account_id).order_by(ExpiryNotice.expires_at))
    return list(rows.scalars())


# --- totals and audit --------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    issued: int
    outstanding: int
    held: int
    cancelled: int
    expired: int

    @property
    def reconciles(self) -> bool:
        return self.issued == self.outstanding + self.held + self.cancelled + self.expired


_JOURNAL_TOTALS = """
SELECT coalesce(sum(points) FILTER (WHERE kind = 'credit'), 0)::bigint AS credit,
       coalesce(sum(points) FILTER (WHERE kind = 'hold'), 0)::bigint AS hold,
       coalesce(sum(points) FILTER (WHERE kind = 'release'), 0)::bigint AS release,
       coalesce(sum(points) FILTER (WHERE kind = 'cancel'), 0)::bigint AS cancel,
       coalesce(sum(points) FILTER (WHERE kind = 'expire'), 0)::bigint AS expire
FROM wallet_entries
"""


def totals_from_journal(row) -> Totals:
    held = row["hold"] - row["release"] - row["cancel"]
    outstanding = row["credit"] - row["hold"] + row["release"] - row["expire"]
    return Totals(issued=row["credit"], outstanding=outstanding, held=held, cancelled=row["cancel"],
                  expired=row["expire"])


async def totals(*, session: AsyncSession) -> Totals:
    """Platform totals from the wallets' counters (cheap), cancelled and expired from the journal."""
    conn = await driver(session)
    journal = await conn.fetchrow(_JOURNAL_TOTALS)
    wallets = await conn.fetchrow(
        "SELECT coalesce(sum(available_points), 0)::bigint AS available, coalesce(sum(held_points), 0)::bigint AS held,"
        " coalesce(sum(lifetime_points), 0)::bigint AS issued FROM wallets")
    return Totals(issued=wallets["issued"], outstanding=wallets["available"], held=wallets["held"],
                  cancelled=journal["cancel"], expired=journal["expire"])


@dataclass(frozen=True)
class Mismatch:
    subject: str  # "wallet" | "lot" | "totals"
    id: str
    field: str
    recorded: int
    recomputed: int


@dataclass(frozen=True)
class Audit:
    totals: Totals
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.totals.reconciles


async def ledger_audit(*, session: AsyncSession, limit: int = 100) -> Audit:
    """Recompute every wallet and lot from the journal and compare with their counters."""
    conn = await driver(session)
    journal = totals_from_journal(await conn.fetchrow(_JOURNAL_TOTALS))
    mismatches: list[Mismatch] = []
    wallet_rows = await conn.fetch(
        """
        WITH j AS (
          SELECT wallet_id,
                 sum(CASE kind WHEN 'credit' THEN points WHEN 'hold' THEN -points WHEN 'release' THEN points
                               WHEN 'expire' THEN -points ELSE 0 END) AS available,
                 sum(CASE kind WHEN 'hold' THEN points WHEN 'release' THEN -points WHEN 'cancel' THEN -points
                               ELSE 0 END) AS held,
                 sum(CASE kind WHEN 'credit' THEN points ELSE 0 END) AS issued
          FROM wallet_entries GROUP BY wallet_id)
        SELECT w.account_id, w.available_points, w.held_points, w.lifetime_points,
               coalesce(j.available, 0)::bigint AS j_available, coalesce(j.held, 0)::bigint AS j_held,
               coalesce(j.issued, 0)::bigint AS j_issued
        FROM wallets w LEFT JOIN j ON j.wallet_id = w.account_id
        WHERE w.available_points <> coalesce(j.available, 0) OR w.held_points <> coalesce(j.held, 0)
           OR w.lifetime_points <> coalesce(j.issued, 0)
        LIMIT $1
        """, limit)
    for r in wallet_rows:
        for name, recorded, recomputed in (("available", r["available_points"], r["j_available"]),
                                           ("held", r["held_points"], r["j_held"]),
                                           ("issued", r["lifetime_points"], r["j_issued"])):
            if recorded != recomputed:
                mismatches.append(Mismatch("wallet", str(r["account_id"]), name, recorded, recomputed))
    lot_rows = await conn.fetch(
        """
        WITH j AS (
          SELECT lot_id,
                 sum(CASE kind WHEN 'credit' THEN points WHEN 'hold' THEN -points WHEN 'release' THEN points
                               WHEN 'expire' THEN -points ELSE 0 END) AS remaining,
                 sum(CASE kind WHEN 'hold' THEN points WHEN 'release' THEN -points WHEN 'cancel' THEN -points
                               ELSE 0 END) AS held,
                 sum(CASE kind WHEN 'credit' THEN points ELSE 0 END) AS credited
          FROM wallet_entries GROUP BY lot_id)
        SELECT l.id, l.points_remaining, l.points_held, l.points_credited,
               coalesce(j.remaining, 0)::bigint AS j_remaining, coalesce(j.held, 0)::bigint AS j_held,
               coalesce(j.credited, 0)::bigint AS j_credited
        FROM point_lots l LEFT JOIN j ON j.lot_id = l.id
        WHERE l.points_remaining <> coalesce(j.remaining, 0) OR l.points_held <> coalesce(j.held, 0)
           OR l.points_credited <> coalesce(j.credited, 0)
        LIMIT $1
        """, limit)
    for r in lot_rows:
        for name, recorded, recomputed in (("remaining", r["points_remaining"], r["j_remaining"]),
                                           ("held", r["points_held"], r["j_held"]),
                                           ("credited", r["points_credited"], r["j_credited"])):
            if recorded != recomputed:
                mismatches.append(Mismatch("lot", str(r["id"]), name, recorded, recomputed))
    recorded = await totals(session=session)
    for name in ("issued", "outstanding", "held", "cancelled", "expired"):
        if getattr(recorded, name) != getattr(journal, name):
            mismatches.append(Mismatch("totals", "platform", name, getattr(recorded, name), getattr(journal, name)))
    return Audit(totals=journal, mismatches=mismatches)
