"""Reading the CER registry (art. 29): published projects, the trace of a tonne, CER accounts, the audit.

Published projects with issued, held, retired, cancelled and surrendered totals; the trace of any
tonne (a surrender for ETS compliance, art. 18, names its compliance entity and year); each
holder's CER account; the regulator's conservation audit."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import DomainError
from core.keyset import Page, keyset_page
from neutrality.cers import blocks, verification
from neutrality.cers.models import Block, EtsSurrender, Issuance, Project, ProjectStatus, VerifierReport
from neutrality.errors import RegistryCode
from neutrality.retirement.models import Certificate

# published for notice or further along; drafts are private and rejected projects leave the registry
PUBLISHED = (ProjectStatus.NOTICE.value, ProjectStatus.DECLARED.value, ProjectStatus.VERIFIED.value,
             ProjectStatus.FILED.value)
SERIAL = re.compile(rf"^{blocks.SERIAL_PREFIX}-(?P<code>[A-Z0-9]+)-(?P<vintage>\d{{4}})-(?P<first>\d{{1,12}})"
                    rf"(?:-(?P<last>\d{{1,12}}))?$")


async def public_projects(*, session: AsyncSession, status: str | None, first: int | None, after: str | None) -> Page:
    statuses = PUBLISHED if status is None else [s for s in PUBLISHED if s == status]  # drafts never
    stmt = select(Project).where(Project.status.in_(statuses))
    return await keyset_page(session, stmt, keys=[Project.code], first=first, after=after)


async def review_projects(*, session: AsyncSession, status: str | None, first: int | None, after: str | None) -> Page:
    """Every project, drafts included, for the regulator."""
    stmt = select(Project)
    if status:
        stmt = stmt.where(Project.status == status)
    return await keyset_page(session, stmt, keys=[Project.code], first=first, after=after)


async def owner_projects(*, session: AsyncSession, owner_id: uuid.UUID, first: int | None, after: str | None) -> Page:
    stmt = select(Project).where(Project.owner_id == owner_id)
    return await keyset_page(session, stmt, keys=[Project.created_at, Project.id], first=first, after=after,
                             descending=True)


def is_public(project: Project) -> bool:
    return project.status in PUBLISHED


async def totals(*, session: AsyncSession, project_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[blocks.StateTotals]]:
    by_project: dict[uuid.UUID, list[blocks.StateTotals]] = {pid: [] for pid in project_ids}
    if project_ids:
        for row in await blocks.state_totals(session=session, project_ids=project_ids):
            by_project[row.project_id].append(row)
    return by_project


async def verifier_reports(*, session: AsyncSession, project_ids: list[uuid.UUID]) -> dict[uuid.UUID, list]:
    out: dict[uuid.UUID, list] = {pid: [] for pid in project_ids}
    rows = await session.scalars(select(VerifierReport).where(VerifierReport.project_id.in_(project_ids))
                                 .order_by(VerifierReport.submitted_at, VerifierReport.id))
    for row in rows:
        out[row.project_id].append(row)
    return out


async def issuances(*, session: AsyncSession, project_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Issuance]]:
    out: dict[uuid.UUID, list[Issuance]] = {pid: [] for pid in project_ids}
    rows = await session.scalars(select(Issuance).where(Issuance.project_id.in_(project_ids))
                                 .order_by(Issuance.issued_at, Issuance.vintage, Issuance.first_serial))
    for row in rows:
        out[row.project_id].append(row)
    return out


# --- tracing ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceStep:
    seq: int
    kind: str
    at: datetime
    label: str  # the serial range this act moved
    from_state: str | None
    to_state: str
    certificate_number: str | None  # for a retirement: the public claim it backs
    surrender: EtsSurrender | None = None  # for a surrender for ETS compliance (art. 18): entity and year


@dataclass(frozen=True)
class Trace:
    project: Project
    vintage: int
    serial: int
    state: str | None  # where the tonne is now
    steps: list[TraceStep]
    # art. 32: reasons of sanctions in force against a verifier the project's reports rest on;
    # a retired tonne stays retired and shows them
    flags: list[str] = field(default_factory=list)


def parse_serial(label: str) -> tuple[str, int, int]:
    """`SZCER-<project>-<vintage>-<serial>` or a range label (its first serial is traced)."""
    match = SERIAL.match((label or "").strip().upper())
    if match is None:
        raise DomainError(RegistryCode.INVALID_SERIAL, "A serial looks like SZCER-P000001-2025-000000001.", "serial")
    return match["code"], int(match["vintage"]), int(match["first"])


async def trace_serial(*, session: AsyncSession, label: str) -> Trace | None:
    """Every act on one tonne, from issuance on; None when the tonne does not exist or is not public."""
    code, vintage, serial = parse_serial(label)
    project = await session.scalar(select(Project).where(Project.code == code))
    if project is None or not is_public(project):
        return None
    moves = await blocks.trace(session=session, project_id=project.id, vintage=vintage, serial=serial)
    if not moves:
        return None
    retirement_ids = [m.reference_id for m in moves if m.reference_kind == "retirement"]
    numbers = {}
    if retirement_ids:
        numbers = dict((await session.execute(select(Certificate.retirement_id, Certificate.number).where(
            Certificate.retirement_id.in_(retirement_ids)))).all())
    surrender_ids = [m.reference_id for m in moves if m.reference_kind == "surrender"]
    surrenders = {}
    if surrender_ids:
        surrenders = {s.id: s for s in (await session.scalars(
            select(EtsSurrender).where(EtsSurrender.id.in_(surrender_ids)))).all()}
    now_state = await session.scalar(select(Block.state).where(
        Block.project_id == project.id, Block.vintage == vintage, Block.ended_at.is_(None),
        Block.first_serial <= serial, Block.last_serial >= serial))
    steps = [TraceStep(seq=m.seq, kind=m.kind, at=m.at,
                       label=blocks.serial_label(code, vintage, m.first_serial, m.last_serial),
                       from_state=m.from_state, to_state=m.to_state,
                       certificate_number=numbers.get(m.reference_id) if m.reference_kind == "retirement" else None,
                       surrender=surrenders.get(m.reference_id) if m.reference_kind == "surrender" else None)
             for m in moves]
    flags = (await verification.flags(session=session, project_ids=[project.id]))[project.id]
    return Trace(project=project, vintage=vintage, serial=serial, state=now_state, steps=steps, flags=flags)


# --- a holder's CER account ----------------------------------------------------------------------


@dataclass
class Holding:
    project: Project
    vintage: int
    state: str
    tonnes: int = 0
    serials: list[str] = field(default_factory=list)


async def holdings(*, session: AsyncSession, holder_id: uuid.UUID) -> list[Holding]:
    """The holder's live blocks, per project, vintage and state, with their serial ranges."""
    rows = (await session.execute(
        select(Block, Project).join(Project, Project.id == Block.project_id)
        .where(Block.holder_id == holder_id, Block.ended_at.is_(None))
        .order_by(Project.code, Block.vintage, Block.state, Block.first_serial))).all()
    grouped: dict[tuple, Holding] = {}
    for block, project in rows:
        holding = grouped.setdefault((project.code, block.vintage, block.state),
                                     Holding(project, block.vintage, block.state))
        holding.tonnes += block.last_serial - block.first_serial + 1
        holding.serials.append(blocks.serial_label(project.code, block.vintage, block.first_serial, block.last_serial))
    return list(grouped.values())


# --- the regulator's audit ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditLine:
    project: Project
    totals: blocks.StateTotals
    issued_by_issuances: int

    @property
    def balanced(self) -> bool:
        return self.totals.balanced and self.totals.issued == self.issued_by_issuances


@dataclass(frozen=True)
class Audit:
    lines: list[AuditLine]
    overlapping_blocks: int

    @property
    def balanced(self) -> bool:
        return self.overlapping_blocks == 0 and all(line.balanced for line in self.lines)


async def audit(*, session: AsyncSession) -> Audit:
    """Recompute conservation from the journal and the live blocks, and check it against the
    issuance records: issued = held + reserved + in_review + retired + cancelled + surrendered
    (in_review: tonnes of neutrality applications awaiting review, art. 19; surrendered: for ETS
    compliance, art. 18), per project and vintage, and
    no serial in two places."""
    size = Issuance.last_serial - Issuance.first_serial + 1
    issued = {(r.project_id, r.vintage): int(r.total) for r in (await session.execute(
        select(Issuance.project_id, Issuance.vintage, func.sum(size).label("total"))
        .group_by(Issuance.project_id, Issuance.vintage))).all()}
    rows = await blocks.state_totals(session=session)
    seen = {(r.project_id, r.vintage) for r in rows}
    for project_id, vintage in issued.keys() - seen:
        rows.append(blocks.StateTotals(project_id, vintage, 0, 0, 0, 0, 0, 0, 0))
    projects = {p.id: p for p in (await session.scalars(
        select(Project).where(Project.id.in_({r.project_id for r in rows})))).all()} if rows else {}
    lines = [AuditLine(project=projects[r.project_id], totals=r, issued_by_issuances=issued.get((r.project_id, r.vintage), 0))
             for r in sorted(rows, key=lambda r: (projects[r.project_id].code, r.vintage))]
    return Audit(lines=lines, overlapping_blocks=await blocks.overlapping_live_blocks(session=session))

