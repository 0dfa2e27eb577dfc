"""An organisation's standing in a role (art. 31-32): whether a suspension is in force now, read by
the hot paths in one probe of a primary key, and its effect on the mall's listings.

A suspension is a state that ends by itself: organisation_standings.suspended_until holds the latest
end among the organisation's unrescinded suspensions in that role, and "in force" is
`now < suspended_until` by the caller's clock; no job ends it. The same transaction that records
or rescinds a suspension recomputes the row (`recompute`) and copies the end onto the listings it
takes off sale (`refresh_listings`): a merchant's own listings, and in an app mall those of the
app operator's mall, so browsing and redeeming read the listing's own column and join nothing.

Lock order: the standing row (FOR UPDATE, after an upsert), then the listings rows. Nothing here
takes a wallet lock, so redeeming (wallet, then listing at commit) never waits crosswise on it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from core.bulk import driver
from core.clock import Clock
from supervision.models import SupervisedRole

# The one look-up the hot paths make (a behaviour report per call, a commission): a primary-key probe.
_SUSPENDED_UNTIL = "SELECT suspended_until FROM organisation_standings WHERE account_id = $1 AND role = $2"


def in_force(until: datetime | None, now: datetime) -> bool:
    """A suspension ending at `until` is in force at `now` (it ends by itself)."""
    return until is not None and now < until


async def suspended_until(*, session: AsyncSession, clock: Clock, account_id: uuid.UUID,
                          role: SupervisedRole | str) -> datetime | None:
    """The end of the suspension in force of this organisation in this role, or None if none is
    in force now (by the clock)."""
    value = role.value if isinstance(role, SupervisedRole) else role
    until = await (await driver(session)).fetchval(_SUSPENDED_UNTIL, account_id, value)
    return until if in_force(until, clock.now()) else None


async def lock(*, session: AsyncSession, clock: Clock, account_id: uuid.UUID, role: str) -> None:
    """Take the standing row of (organisation, role), creating it: sanctions on one organisation
    and role take turns."""
    conn = await driver(session)
    await conn.execute(
        "INSERT INTO organisation_standings (account_id, role, suspended_until, updated_at)"
        " VALUES ($1, $2, NULL, $3) ON CONFLICT DO NOTHING", account_id, role, clock.now())
    await conn.execute("SELECT 1 FROM organisation_standings WHERE account_id = $1 AND role = $2 FOR UPDATE",
                       account_id, role)


async def recompute(*, session: AsyncSession, clock: Clock, account_id: uuid.UUID, role: str) -> datetime | None:
    """Set the standing from the credit record: the latest end of an unrescinded suspension (a past
    end is harmless: it is no longer in force). Call under `lock`. Returns the end stored."""
    conn = await driver(session)
    until = await conn.fetchval(
        "SELECT max(v.suspended_until) FROM violations v WHERE v.organisation_id = $1 AND v.role = $2"
        " AND v.sanction = 'suspension'"
        " AND NOT EXISTS (SELECT 1 FROM violation_rescissions r WHERE r.violation_id = v.id)", account_id, role)
    await conn.execute("UPDATE organisation_standings SET suspended_until = $3, updated_at = $4"
                       " WHERE account_id = $1 AND role = $2", account_id, role, until, clock.now())
    return until


async def refresh_listings(*, session: AsyncSession, account_id: uuid.UUID) -> int:
    """Copy the standings onto the listings of this organisation as merchant or as app operator:
    a listing is off sale until the later of its merchant's and (in an app mall) its app
    operator's suspensions. Returns how many listings changed."""
    result = await session.execute(text(
        "UPDATE listings l SET suspended_until = s.until FROM ("
        "  SELECT x.id, (SELECT max(st.suspended_until) FROM organisation_standings st"
        "                 WHERE (st.account_id = x.merchant_id AND st.role = 'merchant')"
        "                    OR (x.channel = 'app' AND st.account_id = x.app_operator_id"
        "                        AND st.role = 'app_operator')) AS until"
        "  FROM listings x WHERE x.merchant_id = :account OR x.app_operator_id = :account"
        "  ORDER BY x.id FOR UPDATE) s"
        " WHERE l.id = s.id AND l.suspended_until IS DISTINCT FROM s.until"), {"account": account_id})
    return result.rowcount
