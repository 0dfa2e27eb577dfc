"""Voluntary carbon neutrality (自愿实施碳中和, art. 19): apply to retire (注销) CERs for a public beneficiary.

An organisation, an individual or a project owner names a beneficiary, what is neutralised (an
event, a product, the organisation for a year), its footprint in kilograms CO2e and the period.
The application holds at least the footprint rounded up to whole tonnes (12,345 kg -> 13 t), or
more if asked, from the holder's own held tonnes: the exact serials move HELD -> IN_REVIEW and the
retirement waits, pending_review, for a reviewer (art. 19, "经审核后予以注销"; review.py), who retires
them and issues the signed certificate (certificates.py), or releases them. An application that the
regulator's auto-approval policy covers is approved in this same transaction (review.py). Retirement
is final: RETIRED blocks never move again, so retired tonnes cannot be sold or retired twice.

Which tonnes: the holder's held tonnes that are not promised to one of its active offers (held
minus the offers' available quantity, per project and vintage), lowest project code, vintage and
serial first; or only one project, one vintage, or an exact serial range of them. The counts are
read in one statement (one snapshot) after taking the same per-holder, per-project-and-vintage
advisory locks that creating an offer takes, so a retirement never takes tonnes an offer still
promises, and two retirements of one holder never over-retire (the block moves lock the blocks too).
The lock order continues in review.py.

Idempotency keys are handled by the caller (resolvers/common.py `idempotent`) in this transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import Clock, business_date
from core.errors import CoreCode, DomainError, NotFound
from core.keyset import Page, keyset_page
from core.text import clean_text
from neutrality.cers import blocks, verification
from neutrality.cers.blocks import MAX_TONNES
from neutrality.cers.models import Block, BlockState, MoveKind, Project
from neutrality.errors import NeutralityCode
from neutrality.market.models import Offer, OfferStatus
from neutrality.market.offers import lock_free_tonnes
from neutrality.retirement import review
from neutrality.retirement.certificates import SerialRange, Signer
from neutrality.retirement.models import Certificate, Retirement, RetirementStatus, SubjectKind

MAX_FOOTPRINT_KG = MAX_TONNES * 1000
MAX_PERIOD_DAYS = 366  # one certificate covers at most a year; longer claims are made year by year
EARLIEST_PERIOD = date(2000, 1, 1)
MAX_DAYS_AHEAD = 366  # an event or year may be neutralised up to a year before it ends
BENEFICIARY_MAX = 200
SUBJECT_MAX = 300


def required_tonnes(footprint_kg: int) -> int:
    """The footprint rounded up to whole tonnes (the minimum unit is 1 tCO2e, art. 14)."""
    return -(-footprint_kg // 1000)


@dataclass(frozen=True)
class Outcome:
    retirement: Retirement
    certificate: Certificate | None  # None while the application waits for review
    ranges: list[SerialRange]  # the serials held for it (and retired, once approved)


@dataclass(frozen=True)
class _Group:
    project_id: uuid.UUID
    project_code: str
    vintage: int
    free: int


def _whole(value, field: str, code: str, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DomainError(code, f"{what} must be a whole number from {low:,} to {high:,}.", field=field)
    return value


def _check_period(start: date, end: date, today: date) -> None:
    if end < start:
        raise DomainError(NeutralityCode.INVALID_PERIOD, "The period ends before it starts.", field="periodEnd")
    if start < EARLIEST_PERIOD:
        raise DomainError(NeutralityCode.INVALID_PERIOD, f"The period cannot start before {EARLIEST_PERIOD.isoformat()}.",
                          field="periodStart")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise DomainError(NeutralityCode.INVALID_PERIOD, f"One certificate covers at most {MAX_PERIOD_DAYS} days.",
                          field="periodEnd")
    if end > today + timedelta(days=MAX_DAYS_AHEAD):
        raise DomainError(NeutralityCode.INVALID_PERIOD, "The period must end within a year from today.",
                          field="periodEnd")


async def free_groups(session: AsyncSession, holder_id: uuid.UUID, project_id: uuid.UUID | None,
                       vintage: int | None) -> list[_Group]:
    """Held tonnes not promised to an active offer, per project and vintage, in one snapshot (surrenders
    for ETS compliance, neutrality/cers/offsets.py, select tonnes the same way)."""
    size = Block.last_serial - Block.first_serial + 1
    offered = (select(func.coalesce(func.sum(Offer.quantity_available), 0))
               .where(Offer.seller_id == holder_id, Offer.project_id == Block.project_id,
                      Offer.vintage == Block.vintage, Offer.status == OfferStatus.ACTIVE.value)
               .correlate(Block).scalar_subquery())
    stmt = (select(Block.project_id, Project.code, Block.vintage, (func.sum(size) - offered).label("free"))
            .join(Project, Project.id == Block.project_id)
            .where(Block.holder_id == holder_id, Block.state == BlockState.HELD.value, Block.ended_at.is_(None),
                   Project.frozen_at.is_(None))
            .group_by(Block.project_id, Project.code, Block.vintage).order_by(Project.code, Block.vintage))
    if project_id is not None:
        stmt = stmt.where(Block.project_id == project_id)
    if vintage is not None:
        stmt = stmt.where(Block.vintage == vintage)
    return [_Group(row.project_id, row.code, row.vintage, int(row.free)) for row in await session.execute(stmt)]


async def lock_groups(session: AsyncSession, holder_id: uuid.UUID, groups: list[_Group]) -> None:
    # in a fixed order: two retirements of one holder never wait for each other crosswise
    for group in sorted(groups, key=lambda g: (str(g.project_id), g.vintage)):
        await lock_free_tonnes(session, holder_id, group.project_id, group.vintage)


def plan_tonnes(groups: list[_Group], quantity: int) -> list[tuple[_Group, int]]:
    plan, needed = [], quantity
    for group in groups:
        if needed == 0:
            break
        take = min(max(group.free, 0), needed)
        if take:
            plan.append((group, take))
            needed -= take
    if needed:
        free = sum(max(g.free, 0) for g in groups)
        raise blocks.InsufficientTonnes(
            message=f"You hold {free} tonnes that are free to retire here (held and not on offer); {quantity} are needed.",
            field="tonnes")
    return plan


async def apply_for_neutrality(
    *, session: AsyncSession, clock: Clock, signer: Signer, public_base_url: str, holder_id: uuid.UUID,
    beneficiary_name: str, subject_kind: str | SubjectKind, subject: str, footprint_kg: int, period_start: date,
    period_end: date, tonnes: int | None = None, project_id: uuid.UUID | None = None, vintage: int | None = None,
    serials: tuple[int, int] | None = None,
) -> Outcome:
    """Hold at least ceil(footprint_kg / 1000) of the holder's tonnes for review, in the caller's
    transaction; if the auto-approval policy covers it, retire them and issue the signed certificate at
    once. Any failure raises a DomainError and the caller rolls back: nothing is held, no certificate
    is numbered."""
    beneficiary = clean_text(beneficiary_name, field="beneficiaryName", what="beneficiary name",
                             limit=BENEFICIARY_MAX, code=NeutralityCode.INVALID_BENEFICIARY)
    description = clean_text(subject, field="subject", what="subject", limit=SUBJECT_MAX,
                             code=NeutralityCode.INVALID_SUBJECT)
    try:
        kind = SubjectKind(subject_kind)
    except ValueError:
        raise DomainError(CoreCode.INVALID, "The subject kind is event, product or organisation_year.",
                          field="subjectKind") from None
    footprint = _whole(footprint_kg, "footprintKg", NeutralityCode.INVALID_FOOTPRINT, "The footprint in kilograms CO2e", 1,
                       MAX_FOOTPRINT_KG)
    _check_period(period_start, period_end, business_date(clock.now()))
    minimum = required_tonnes(footprint)
    if serials is not None:
        tonnes = blocks.serial_range_tonnes(serials, project_id=project_id, vintage=vintage, tonnes=tonnes)
    quantity = minimum if tonnes is None else _whole(tonnes, "tonnes", CoreCode.INVALID, "Tonnes", 1, MAX_TONNES)
    if quantity < minimum:
        raise DomainError(NeutralityCode.TONNES_BELOW_FOOTPRINT,
                          f"A footprint of {footprint:,} kg needs at least {minimum} whole tonnes.",
                          field="serials" if serials is not None else "tonnes")
    if project_id is not None and await session.get(Project, project_id) is None:
        raise NotFound(message="No project has this id.", field="projectId")
    if project_id is not None:
        await verification.refuse_trade_if_frozen(session, project_id, "projectId")

    await lock_groups(session, holder_id, await free_groups(session, holder_id, project_id, vintage))
    plan = plan_tonnes(await free_groups(session, holder_id, project_id, vintage), quantity)
    # art. 32: frozen tonnes are not retired; a freeze recorded since the read above is seen here
    for group, _ in sorted(plan, key=lambda p: str(p[0].project_id)):
        await verification.refuse_trade_if_frozen(session, group.project_id, "projectId")

    now = clock.now()
    retirement = Retirement(id=uuid.uuid4(), holder_id=holder_id, beneficiary_name=beneficiary,
                            subject_kind=kind.value, subject=description, footprint_kg=footprint, tonnes=quantity,
                            period_start=period_start, period_end=period_end,
                            status=RetirementStatus.PENDING_REVIEW.value, applied_at=now)
    session.add(retirement)
    await session.flush()
    # an application the auto-approval policy covers is retired at once: one move, HELD -> RETIRED
    policy = await review.covering_policy(session=session, retirement=retirement)
    kind, to_state = (MoveKind.RETIRE, BlockState.RETIRED) if policy else (MoveKind.REVIEW, BlockState.IN_REVIEW)
    ranges: list[SerialRange] = []
    for group, take in plan:
        moved = await blocks.move(session=session, clock=clock, kind=kind, holder_id=holder_id,
                                  from_state=BlockState.HELD, to_state=to_state, quantity=take,
                                  project_id=group.project_id, vintage=group.vintage, serials=serials,
                                  reference_kind="retirement", reference_id=retirement.id,
                                  set_retirement_id=retirement.id)
        ranges += [SerialRange(m.project_id, group.project_code, m.vintage, m.first_serial, m.last_serial) for m in moved]
    if policy is None:
        return Outcome(retirement=retirement, certificate=None, ranges=ranges)
    approved = await review.certify(session=session, clock=clock, signer=signer, public_base_url=public_base_url,
                                    retirement=retirement, ranges=ranges, reviewer_id=None, policy=policy)
    return Outcome(retirement=retirement, certificate=approved.certificate, ranges=approved.ranges)


async def holder_retirements(*, session: AsyncSession, holder_id: uuid.UUID, first: int | None,
                             after: str | None) -> Page:
    stmt = select(Retirement).where(Retirement.holder_id == holder_id)
    return await keyset_page(session, stmt, keys=[Retirement.applied_at, Retirement.id], first=first, after=after,
                             descending=True)
