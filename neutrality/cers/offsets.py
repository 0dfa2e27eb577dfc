"""The yearly ETS offset scope (art. 18) and the surrender of CERs for ETS compliance (履约抵销).

Art. 18: "市生态环境主管部门应当确定并公布当年度可用于深圳市碳排放权交易市场履约抵销的核证减排量范围、总量".
The regulator drafts, per compliance year, the scope: eligible vintages, eligible project kinds
(the behaviour domain of a project's methodology, e.g. `renewable_energy`) and/or methodology
codes, and the year's cap in whole tonnes; then publishes it. A published version is immutable. A
correction is a new draft of the same year, and publishing it supersedes the version in force; it
cannot lower the cap below the tonnes already surrendered that year. Surrenders already made stay
valid under the version they were made under.

A holder (CER_HOLDERS) surrenders tonnes from its own HELD blocks, not promised to one of its
active offers (as a retirement selects them: lowest project code, vintage and serial first, or one
project, one vintage, or an exact serial range), for a compliance entity (a company: its name and
18-character unified social credit code, GB 32100-2015 with its check character) and a year. Only
tonnes inside the year's published scope count. The serials move HELD -> SURRENDERED (final, like
RETIRED) naming the surrender; the surrender record is public (registry, trace).

The cap is never exceeded, even under parallel surrenders: every surrender locks the year's
published scope row (FOR UPDATE) first and sums the year's surrenders under that lock (READ
COMMITTED: the sum sees every surrender committed before the lock was granted).

Lock order. Surrender: the year's published scope row -> the holder's free-tonnes advisory locks
(per project and vintage, in id order, as retirements take them) -> the projects FOR KEY SHARE (the
freeze check) -> the holder's HELD pool -> the blocks (blocks.move). Retirements and offers take the
same locks from the free-tonnes locks on and never the scope row, so no cycle. Publishing: the
year's advisory lock (`ets-offset-year:<year>`) -> the draft row -> the published row of the year;
it takes no block lock. So publishing and surrendering never wait for each other crosswise.

Crash-safe step order: everything in one transaction (the resolver's, with the idempotency key);
the surrender row is written before the blocks move, the audit event of a regulator act is the
last database step."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.service import record_audit_event
from core.clock import Clock
from core.db import get_row
from core.errors import CoreCode, DomainError, NotFound
from core.keyset import Page, keyset_page
from core.locks import lock_name
from core.text import clean_text
from neutrality.cers import blocks, verification
from neutrality.cers.models import (
    Block,
    BlockState,
    EtsOffsetScope,
    EtsSurrender,
    MoveKind,
    OffsetScopeStatus,
    Project,
)
from neutrality.errors import OffsetCode, RegistryCode
from neutrality.retirement import retirements
from reductions import service as reductions
from reductions.models import Methodology

MAX_CAP = 1_000_000_000
MAX_LIST = 50
ENTITY_NAME_MAX = 200
NOTE_MAX = 2_000
KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

# GB 32100-2015: 统一社会信用代码, 18 characters from 31 (no I, O, S, V, Z); the last is a check character
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
USCC = re.compile(rf"^[{USCC_CHARS}]{{18}}$")


def uscc_check_char(first17: str) -> str:
    """The check character of a unified social credit code's first 17 characters."""
    total = sum(USCC_CHARS.index(ch) * w for ch, w in zip(first17, USCC_WEIGHTS))
    return USCC_CHARS[(31 - total % 31) % 31]


def check_entity_code(value: str | None) -> str:
    code = (value or "").strip().upper()
    if not USCC.match(code) or uscc_check_char(code[:17]) != code[17]:
        raise DomainError(OffsetCode.INVALID_ENTITY_CODE, "A unified social credit code is 18 characters (digits and "
                                                          "capitals, no I, O, S, V, Z) ending in its check character.",
                          field="entityCode")
    return code


# --- the scope ------------------------------------------------------------------------------------


def _year(value: int, field: str = "year") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 2000 <= value <= 2100:
        raise DomainError(CoreCode.INVALID, "A compliance year is from 2000 to 2100.", field=field)
    return value


async def _scope_lists(session: AsyncSession, clock: Clock, vintages: list[int], project_kinds: list[str],
                       methodology_codes: list[str]) -> tuple[list[int], list[str], list[str]]:
    if not vintages or len(set(vintages)) > MAX_LIST or any(
            isinstance(v, bool) or not isinstance(v, int) or not 2000 <= v <= 2100 for v in vintages):
        raise DomainError(OffsetCode.INVALID_SCOPE, f"Name 1 to {MAX_LIST} eligible vintages, each 2000 to 2100.",
                          field="vintages")
    kinds = sorted({(k or "").strip().lower() for k in project_kinds})
    if len(kinds) > MAX_LIST or any(not KIND.match(k) for k in kinds):
        raise DomainError(OffsetCode.INVALID_SCOPE, "A project kind is a behaviour domain such as renewable_energy.",
                          field="projectKinds")
    codes = sorted({(c or "").strip().upper() for c in methodology_codes})
    if len(codes) > MAX_LIST or any(not c or len(c) > 40 for c in codes):
        raise DomainError(OffsetCode.INVALID_SCOPE, "A methodology code is 1 to 40 characters.",
                          field="methodologyCodes")
    if not kinds and not codes:
        raise DomainError(OffsetCode.INVALID_SCOPE, "Name the eligible project kinds or methodology codes (or both).",
                          field="projectKinds")
    for code in codes:
        if not await reductions.is_published_methodology(session=session, clock=clock, code=code):
            raise DomainError(RegistryCode.METHODOLOGY_NOT_PUBLISHED, f"No published methodology has the code {code}.",
                              field="methodologyCodes")
    return sorted(set(vintages)), kinds, codes


async def surrendered_tonnes(session: AsyncSession, year: int) -> int:
    return int(await session.scalar(select(func.coalesce(func.sum(EtsSurrender.tonnes), 0))
                                    .where(EtsSurrender.year == year)) or 0)


async def draft_scope(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, year: int, vintages: list[int],
                      project_kinds: list[str], methodology_codes: list[str], cap_tonnes: int,
                      note: str | None = None) -> EtsOffsetScope:
    """A new draft version of the year's scope (private until published)."""
    year = _year(year)
    vintages, kinds, codes = await _scope_lists(session, clock, vintages, project_kinds, methodology_codes)
    if isinstance(cap_tonnes, bool) or not isinstance(cap_tonnes, int) or not 0 <= cap_tonnes <= MAX_CAP:
        raise DomainError(OffsetCode.INVALID_SCOPE, f"The cap is a whole number of tonnes, 0 to {MAX_CAP:,}.",
                          field="capTonnes")
    text = clean_text(note, field="note", what="note", limit=NOTE_MAX, code=CoreCode.INVALID, required=False,
                      multiline=True) or ""
    await lock_name(session, f"ets-offset-year:{year}")  # versions of a year are numbered one at a time
    version = int(await session.scalar(select(func.coalesce(func.max(EtsOffsetScope.version), 0))
                                       .where(EtsOffsetScope.year == year))) + 1
    now = clock.now()
    scope = EtsOffsetScope(id=uuid.uuid4(), year=year, version=version, status=OffsetScopeStatus.DRAFT.value,
                           vintages=vintages, project_kinds=kinds, methodology_codes=codes, cap_tonnes=cap_tonnes,
                           note=text, created_by=regulator_id, created_at=now)
    session.add(scope)
    await session.flush()
    record_audit_event(session, clock, actor=regulator_id, action="ets_offset_scope.drafted",
                       subject_type="ets_offset_scope", subject_id=scope.id, before={},
                       after={"year": year, "version": version, "status": scope.status, "capTonnes": cap_tonnes})
    return scope


async def _published_for_update(session: AsyncSession, year: int) -> EtsOffsetScope | None:
    """The year's published version, locked (FOR UPDATE) and read afresh; a version superseded while
    we waited for its lock is followed to the one that replaced it."""
    for _ in range(5):
        scope_id = await session.scalar(select(EtsOffsetScope.id).where(
            EtsOffsetScope.year == year, EtsOffsetScope.status == OffsetScopeStatus.PUBLISHED.value))
        if scope_id is None:
            return None
        scope = await session.get(EtsOffsetScope, scope_id, with_for_update=True, populate_existing=True)
        if scope.status == OffsetScopeStatus.PUBLISHED.value:
            return scope
    raise DomainError(OffsetCode.SCOPE_NOT_PUBLISHED, "The year's scope is being corrected; try again.", field="year")


async def publish_scope(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID,
                        scope_id: uuid.UUID) -> EtsOffsetScope:
    """Publish a draft: it is in force for its year, superseding the version in force (a correction),
    whose cap may not be lowered below the tonnes already surrendered that year."""
    found = await get_row(session, EtsOffsetScope, scope_id, message="No offset scope has this id.", field="scopeId")
    await lock_name(session, f"ets-offset-year:{found.year}")
    scope = await get_row(session, EtsOffsetScope, scope_id, lock=True, message="No offset scope has this id.",
                          field="scopeId")
    if scope.status != OffsetScopeStatus.DRAFT.value:
        raise DomainError(OffsetCode.SCOPE_NOT_DRAFT, "Only a draft is published; a published scope is corrected by "
                                                      "a new draft of the same year.", field="scopeId")
    current = await _published_for_update(session, scope.year)
    if current is not None and current.version > scope.version:
        raise DomainError(OffsetCode.SCOPE_NOT_DRAFT, f"Version {current.version} of {scope.year}, newer than this "
                                                      "draft, is published; draft the correction again.",
                          field="scopeId")
    used = await surrendered_tonnes(session, scope.year)
    if scope.cap_tonnes < used:
        raise DomainError(OffsetCode.CAP_BELOW_SURRENDERED,
                          f"{used:,} tonnes were already surrendered for {scope.year}; the cap cannot be lower.",
                          field="capTonnes")
    now = clock.now()
    before = {"status": scope.status}
    if current is not None:
        before = {"status": scope.status, "supersedes": str(current.id), "supersededVersion": current.version,
                  "capTonnes": current.cap_tonnes}
        current.status, current.superseded_at = OffsetScopeStatus.SUPERSEDED.value, now
        await session.flush()  # one published version per year (a partial unique index)
        scope.supersedes_id = current.id
    scope.status, scope.published_by, scope.published_at = OffsetScopeStatus.PUBLISHED.value, regulator_id, now
    await session.flush()
    record_audit_event(session, clock, actor=regulator_id, action="ets_offset_scope.published",
                       subject_type="ets_offset_scope", subject_id=scope.id, before=before,
                       after={"status": scope.status, "year": scope.year, "version": scope.version,
                              "capTonnes": scope.cap_tonnes, "surrenderedTonnes": used})
    return scope


# --- surrender ------------------------------------------------------------------------------------


async def _project_kinds(session: AsyncSession, codes: set[str]) -> dict[str, set[str]]:
    """Behaviour domains of the methodology codes (any version)."""
    out: dict[str, set[str]] = {c: set() for c in codes}
    if codes:
        rows = await session.execute(select(Methodology.code, Methodology.behaviour_domain).distinct()
                                     .where(func.upper(Methodology.code).in_(codes)))
        for code, domain in rows:
            out.setdefault(code.upper(), set()).add(domain)
    return out


async def eligible_projects(session: AsyncSession, scope: EtsOffsetScope, project_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """The projects whose methodology code, or its kind, the scope names."""
    if not project_ids:
        return set()
    codes = {pid: code.upper() for pid, code in (await session.execute(
        select(Project.id, Project.methodology_code).where(Project.id.in_(project_ids)))).all()}
    kinds = await _project_kinds(session, set(codes.values()))
    return {pid for pid, code in codes.items()
            if code in scope.methodology_codes or kinds.get(code, set()) & set(scope.project_kinds)}


@dataclass(frozen=True)
class SurrenderRequest:
    year: int
    entity_name: str
    entity_code: str
    tonnes: int | None = None
    project_id: uuid.UUID | None = None
    vintage: int | None = None
    serials: tuple[int, int] | None = None


def _quantity(request: SurrenderRequest) -> int:
    if request.serials is not None:
        return blocks.serial_range_tonnes(request.serials, project_id=request.project_id, vintage=request.vintage,
                                          tonnes=request.tonnes)
    tonnes = request.tonnes
    if isinstance(tonnes, bool) or not isinstance(tonnes, int) or not 1 <= tonnes <= blocks.MAX_TONNES:
        raise DomainError(CoreCode.INVALID, f"Surrender 1 to {blocks.MAX_TONNES:,} whole tonnes.", field="tonnes")
    return tonnes


async def _refuse_serials_not_held(session: AsyncSession, holder_id: uuid.UUID, request: SurrenderRequest) -> None:
    """A named serial range: every serial live, HELD and the caller's."""
    first, last = request.serials
    live = (await session.scalars(select(Block).where(
        Block.project_id == request.project_id, Block.vintage == request.vintage, Block.ended_at.is_(None),
        Block.last_serial >= first, Block.first_serial <= last))).all()
    covered = sum(min(b.last_serial, last) - max(b.first_serial, first) + 1 for b in live)
    if covered != last - first + 1:
        raise DomainError(OffsetCode.SERIALS_NOT_HELD, "Some of these serials were never issued.", field="serials")
    if any(b.holder_id != holder_id for b in live):
        raise DomainError(OffsetCode.SERIALS_NOT_HELD, "Some of these serials are not in your account.",
                          field="serials")
    busy = sorted({b.state for b in live if b.state != BlockState.HELD.value})
    if busy:
        raise DomainError(OffsetCode.SERIALS_NOT_HELD, f"Only held tonnes are surrendered; some are {', '.join(busy)}.",
                          field="serials")


async def surrender_cers(*, session: AsyncSession, clock: Clock, holder_id: uuid.UUID,
                         request: SurrenderRequest) -> EtsSurrender:
    """Surrender the holder's tonnes for a compliance entity's ETS obligation of `request.year`, in
    the caller's transaction; any refusal raises and the caller rolls back: nothing moves."""
    year = _year(request.year)
    name = clean_text(request.entity_name, field="entityName", what="compliance entity's name",
                      limit=ENTITY_NAME_MAX, code=OffsetCode.INVALID_ENTITY_NAME)
    code = check_entity_code(request.entity_code)
    quantity = _quantity(request)
    if request.project_id is not None and await session.get(Project, request.project_id) is None:
        raise NotFound(message="No project has this id.", field="projectId")

    scope = await _published_for_update(session, year)  # the year's cap, one surrender at a time
    if scope is None:
        raise DomainError(OffsetCode.SCOPE_NOT_PUBLISHED, f"No offset scope is published for {year}.", field="year")
    if request.vintage is not None and request.vintage not in scope.vintages:
        raise DomainError(OffsetCode.VINTAGE_NOT_IN_SCOPE, f"Vintage {request.vintage} is not eligible for {year}.",
                          field="vintage")
    if request.project_id is not None:
        if not await eligible_projects(session, scope, {request.project_id}):
            raise DomainError(OffsetCode.PROJECT_NOT_IN_SCOPE, f"This project's kind and methodology are not eligible "
                                                               f"for {year}.", field="projectId")
        await verification.refuse_trade_if_frozen(session, request.project_id, "projectId")
    if request.serials is not None:
        await _refuse_serials_not_held(session, holder_id, request)
    used = await surrendered_tonnes(session, year)
    if used + quantity > scope.cap_tonnes:
        raise DomainError(OffsetCode.OVER_CAP, f"{max(scope.cap_tonnes - used, 0):,} of the {scope.cap_tonnes:,} "
                                               f"tonnes of {year}'s cap are left.", field="tonnes")

    async def in_scope() -> list:
        groups = [g for g in await retirements.free_groups(session, holder_id, request.project_id, request.vintage)
                  if g.vintage in scope.vintages]
        eligible = await eligible_projects(session, scope, {g.project_id for g in groups})
        return [g for g in groups if g.project_id in eligible]

    await retirements.lock_groups(session, holder_id, await in_scope())
    groups = await in_scope()
    free = sum(max(g.free, 0) for g in groups)
    if free < quantity:
        raise blocks.InsufficientTonnes(
            message=f"You hold {free} tonnes within {year}'s scope that are free to surrender (held, not on offer, "
                    f"not frozen); {quantity} are needed.", field="serials" if request.serials else "tonnes")
    plan = retirements.plan_tonnes(groups, quantity)
    for group, _ in sorted(plan, key=lambda p: str(p[0].project_id)):  # art. 32: frozen tonnes stay put
        await verification.refuse_trade_if_frozen(session, group.project_id, "projectId")

    surrender = EtsSurrender(id=uuid.uuid4(), holder_id=holder_id, year=year, scope_id=scope.id, entity_name=name,
                             entity_code=code, tonnes=quantity, serials=[], surrendered_at=clock.now())
    session.add(surrender)
    await session.flush()
    serials = []
    for group, take in plan:
        moved = await blocks.move(session=session, clock=clock, kind=MoveKind.SURRENDER, holder_id=holder_id,
                                  from_state=BlockState.HELD, to_state=BlockState.SURRENDERED, quantity=take,
                                  project_id=group.project_id, vintage=group.vintage, serials=request.serials,
                                  reference_kind="surrender", reference_id=surrender.id,
                                  set_surrender_id=surrender.id)
        serials += [{"projectCode": group.project_code, "vintage": m.vintage, "first": m.first_serial,
                     "last": m.last_serial} for m in moved]
    surrender.serials = serials
    await session.flush()
    return surrender


# --- reading ----------------------------------------------------------------------------------------


def serial_labels(surrender: EtsSurrender) -> list[str]:
    return [blocks.serial_label(r["projectCode"], r["vintage"], r["first"], r["last"]) for r in surrender.serials]


@dataclass(frozen=True)
class ScopeUse:
    """A year's published scope and its use: public (art. 18, 29)."""

    scope: EtsOffsetScope
    surrendered_tonnes: int
    surrenders: int

    @property
    def remaining_tonnes(self) -> int:
        return max(self.scope.cap_tonnes - self.surrendered_tonnes, 0)

    @property
    def year(self) -> int:
        return self.scope.year


async def _uses(session: AsyncSession, rows: list[EtsOffsetScope]) -> dict[int, tuple[int, int]]:
    years = {r.year for r in rows}
    if not years:
        return {}
    found = await session.execute(select(EtsSurrender.year, func.sum(EtsSurrender.tonnes), func.count())
                                  .where(EtsSurrender.year.in_(years)).group_by(EtsSurrender.year))
    return {year: (int(total), int(count)) for year, total, count in found}


async def offset_scope_use(*, session: AsyncSession, first: int | None, after: str | None) -> Page:
    """Public rows, one per compliance year, newest year first: the published scope in force and the
    tonnes surrendered so far (nodes are ScopeUse). For the disclosure lists (art. 29)."""
    stmt = select(EtsOffsetScope).where(EtsOffsetScope.status == OffsetScopeStatus.PUBLISHED.value)
    page = await keyset_page(session, stmt, keys=[EtsOffsetScope.year], first=first, after=after, descending=True)
    uses = await _uses(session, [i.node for i in page.items])
    items = [type(i)(cursor=i.cursor, node=ScopeUse(i.node, *uses.get(i.node.year, (0, 0)))) for i in page.items]
    return type(page)(items=items, has_next_page=page.has_next_page, has_previous_page=page.has_previous_page)


async def scope_versions(*, session: AsyncSession, year: int) -> list[EtsOffsetScope]:
    """Every published version of a year, superseded ones included, oldest first (drafts are private)."""
    return list((await session.scalars(select(EtsOffsetScope).where(
        EtsOffsetScope.year == year, EtsOffsetScope.status != OffsetScopeStatus.DRAFT.value)
        .order_by(EtsOffsetScope.version))).all())


async def drafts(*, session: AsyncSession, first: int | None, after: str | None) -> Page:
    """The regulator's drafts, newest first."""
    stmt = select(EtsOffsetScope).where(EtsOffsetScope.status == OffsetScopeStatus.DRAFT.value)
    return await keyset_page(session, stmt, keys=[EtsOffsetScope.created_at, EtsOffsetScope.id], first=first,
                             after=after, descending=True)


async def public_surrenders(*, session: AsyncSession, year: int | None, first: int | None, after: str | None) -> Page:
    """Every surrender (public: year, tonnes, serials, the compliance entity's name and code)."""
    stmt = select(EtsSurrender)
    if year is not None:
        stmt = stmt.where(EtsSurrender.year == year)
    return await keyset_page(session, stmt, keys=[EtsSurrender.surrendered_at, EtsSurrender.id], first=first,
                             after=after, descending=True)


async def holder_surrenders(*, session: AsyncSession, holder_id: uuid.UUID, first: int | None,
                            after: str | None) -> Page:
    stmt = select(EtsSurrender).where(EtsSurrender.holder_id == holder_id)
    return await keyset_page(session, stmt, keys=[EtsSurrender.surrendered_at, EtsSurrender.id], first=first,
                             after=after, descending=True)


async def surrenders_by_id(*, session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, EtsSurrender]:
    if not ids:
        return {}
    return {s.id: s for s in (await session.scalars(select(EtsSurrender).where(EtsSurrender.id.in_(ids)))).all()}
