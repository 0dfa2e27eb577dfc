"""Scenario marks as behaviour reports see them (art. 25-27): a batch's marks in one statement, and
a mark's status at any moment, from its status history and validity.

Imported by reductions/service.py (report_behaviour, a hot path): it depends on nothing of the
other domains, and a batch naming no scenario costs nothing here."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from core.clock import business_date
from scenarios.models import MarkStatus

# SZCS-<year>-<4 digits>
MARK_NUMBER = re.compile(r"SZCS-(\d{4})-(\d{4})")


def mark_number(year: int, sequence: int) -> str:
    return f"SZCS-{year:04d}-{sequence:04d}"


def normalise_number(value: str | None) -> str:
    return (value or "").strip().upper()


@dataclass(frozen=True)
class MarkFacts:
    """What a report needs of a mark: the scenario, its behaviours, validity and status history."""

    scenario_id: uuid.UUID
    number: str
    granted_at: datetime
    valid_until: datetime
    methodology_codes: frozenset[str]
    history: tuple[tuple[datetime, str], ...]  # (from, status), oldest first

    def status_at(self, moment: datetime) -> MarkStatus | None:
        """The mark's status at `moment`: None before its grant, EXPIRED from valid_until on, else
        the status of the last change at or before it."""
        if moment < self.granted_at:
            return None
        if moment >= self.valid_until:
            return MarkStatus.EXPIRED
        status = None
        for at, value in self.history:
            if at > moment:
                break
            status = value
        return MarkStatus(status) if status else None


_MARKS_SQL = (
    "SELECT m.number, m.scenario_id, m.granted_at, m.valid_until, s.methodology_codes,"
    " e.ats, e.statuses"
    " FROM scenario_marks m JOIN scenarios s ON s.id = m.scenario_id"
    " CROSS JOIN LATERAL (SELECT array_agg(x.at ORDER BY x.seq) AS ats, array_agg(x.status ORDER BY x.seq) AS statuses"
    "  FROM scenario_mark_events x WHERE x.mark_id = m.id) e"
    " WHERE m.number = ANY($1::text[])")


async def marks_by_number(conn, numbers: set[str]) -> dict[str, MarkFacts]:
    """The marks of these numbers (normalised), with their scenarios' behaviours and status
    histories, in one statement over the asyncpg connection `conn`; unknown numbers are absent."""
    wanted = sorted(n for n in numbers if MARK_NUMBER.fullmatch(n))
    if not wanted:
        return {}
    rows = await conn.fetch(_MARKS_SQL, wanted)
    return {r["number"]: MarkFacts(scenario_id=r["scenario_id"], number=r["number"], granted_at=r["granted_at"],
                                   valid_until=r["valid_until"], methodology_codes=frozenset(r["methodology_codes"]),
                                   history=tuple(zip(r["ats"] or (), r["statuses"] or ())))
            for r in rows}


def grant_year(moment: datetime) -> int:
    """The year a mark is numbered in: the Asia/Shanghai year of its grant."""
    return business_date(moment).year


def page_url(base_url: str, number: str) -> str:
    """The public page of a mark, where its QR code points: <public base URL>/scenarios/<mark number>."""
    return f"{base_url.rstrip('/')}/scenarios/{number}"
