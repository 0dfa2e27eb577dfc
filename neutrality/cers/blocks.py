"""Serial blocks: the one primitive that moves CERs.

`issue_block` creates a block from nothing; `move` takes `quantity` tonnes from a holder's live
blocks in one state (lowest project code, vintage and serial first, or an exact serial range),
ends them, splits off any remainder, and creates the moved blocks in their new state, writing one
journal row per contiguous range. Everything else in `neutrality/` is built on these two."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import Clock
from core.errors import CoreCode, DomainError
from core.locks import lock_name
from neutrality.cers.models import Block, BlockState, Move, MoveKind, Project
from neutrality.errors import RegistryCode

SERIAL_PREFIX = "SZCER"
MAX_TONNES = 10_000_000  # the most whole tonnes one request names (a report, an offer, a retirement, a surrender)


class InsufficientTonnes(DomainError):
    code = RegistryCode.INSUFFICIENT_TONNES.value


def serial_label(project_code: str, vintage: int, first: int, last: int) -> str:
    """`SZCER-<project>-<vintage>-<first>-<last>`, serials zero-padded to 9 digits so they sort."""
    return f"{SERIAL_PREFIX}-{project_code}-{vintage}-{first:09d}-{last:09d}"


def serial_range_tonnes(serials: tuple[int, int], *, project_id: uuid.UUID | None, vintage: int | None,
                        tonnes: int | None) -> int:
    """The tonnes a request naming an exact serial range moves: the range's size. The range names
    its project and vintage, runs first <= last, and agrees with `tonnes` if that is given too."""
    first, last = serials
    if project_id is None or vintage is None:
        raise DomainError(CoreCode.INVALID, "Name the project and vintage of the serial range.", field="serials")
    if not 1 <= first <= last or last - first + 1 > MAX_TONNES:
        raise DomainError(CoreCode.INVALID, "A serial range runs from a first to a last serial (1 or more).",
                          field="serials")
    if tonnes is not None and tonnes != last - first + 1:
        raise DomainError(CoreCode.INVALID, "With a serial range, the tonnes are the range's size.", field="tonnes")
    return last - first + 1


@dataclass(frozen=True)
class MovedRange:
    project_id: uuid.UUID
    vintage: int
    first_serial: int
    last_serial: int
    move_id: uuid.UUID

    @property
    def quantity(self) -> int:
        return self.last_serial - self.first_serial + 1


async def issue_block(*, session: AsyncSession, clock: Clock, project_id: uuid.UUID, vintage: int, first_serial: int,
                      last_serial: int, holder_id: uuid.UUID, issuance_id: uuid.UUID) -> MovedRange:
    now = clock.now()
    move = Move(id=uuid.uuid4(), kind=MoveKind.ISSUE.value, project_id=project_id, vintage=vintage,
                first_serial=first_serial, last_serial=last_serial, from_holder_id=None, to_holder_id=holder_id,
                from_state=None, to_state=BlockState.HELD.value, reference_kind="issuance",
                reference_id=issuance_id, at=now)
    session.add(move)
    await session.flush()
    session.add(Block(project_id=project_id, vintage=vintage, first_serial=first_serial, last_serial=last_serial,
                      holder_id=holder_id, state=BlockState.HELD.value, created_by_move_id=move.id, created_at=now))
    await session.flush()
    return MovedRange(project_id, vintage, first_serial, last_serial, move.id)


def _conditions(*, holder_id: uuid.UUID, from_state: BlockState, project_id: uuid.UUID | None, vintage: int | None,
                order_id: uuid.UUID | None, serials: tuple[int, int] | None, exclude: set[uuid.UUID],
                retirement_id: uuid.UUID | None = None) -> list:
    conditions = [Block.holder_id == holder_id, Block.state == from_state.value, Block.ended_at.is_(None)]
    if project_id is not None:
        conditions.append(Block.project_id == project_id)
    if vintage is not None:
        conditions.append(Block.vintage == vintage)
    if order_id is not None:
        conditions.append(Block.order_id == order_id)
    if retirement_id is not None:
        conditions.append(Block.retirement_id == retirement_id)
    if serials is not None:
        conditions += [Block.last_serial >= serials[0], Block.first_serial <= serials[1]]
    if exclude:
        conditions.append(Block.id.not_in(exclude))
    return conditions


def _candidates(conditions: list, limit: int):
    return (select(Block).join(Project, Project.id == Block.project_id).where(and_(*conditions))
            .order_by(Project.code, Block.vintage, Block.first_serial).limit(limit)
            .with_for_update(of=Block).execution_options(populate_existing=True))


async def _any_left(session: AsyncSession, conditions: list) -> bool:
    """A non-locking look with a fresh snapshot (READ COMMITTED): blocks that a concurrent move
    split while we waited for its lock show up here as its remainders."""
    return await session.scalar(select(Block.id).where(and_(*conditions)).limit(1)) is not None


async def lock_pool(session: AsyncSession, holder_id: uuid.UUID, state: BlockState) -> None:
    """Moves out of one holder's blocks in one state take turns (until commit). Row locks alone
    deadlock here: a mover that waited for a block re-selects the remainder another mover created,
    which can sort before rows it already holds. Different holders and states still run in parallel."""
    await lock_name(session, f"cer-pool:{holder_id}:{state.value}")


async def move(*, session: AsyncSession, clock: Clock, kind: MoveKind, holder_id: uuid.UUID, from_state: BlockState,
               to_state: BlockState, quantity: int, reference_kind: str, reference_id: uuid.UUID,
               to_holder_id: uuid.UUID | None = None, project_id: uuid.UUID | None = None, vintage: int | None = None,
               order_id: uuid.UUID | None = None, retirement_id: uuid.UUID | None = None,
               serials: tuple[int, int] | None = None, set_order_id: uuid.UUID | None = None, set_retirement_id: uuid.UUID | None = None,
               set_cancellation_id: uuid.UUID | None = None,
               set_surrender_id: uuid.UUID | None = None) -> list[MovedRange]:
    """Move exactly `quantity` tonnes or raise InsufficientTonnes (and the caller rolls back).

    The holder's pool is locked first (`lock_pool`), then its blocks FOR UPDATE. Under READ COMMITTED a block ended by a concurrent move drops
    out after the lock wait, and its remainder is not in this statement's snapshot, so we select
    again until we have enough or nothing is left."""
    if quantity <= 0:
        raise DomainError(CoreCode.INVALID, "The quantity must be a positive whole number of tonnes.", field="quantity")
    await lock_pool(session, holder_id, from_state)
    now: datetime = clock.now()
    new_holder = to_holder_id or holder_id
    moved: list[MovedRange] = []
    seen: set[uuid.UUID] = set()
    needed = quantity
    while needed > 0:
        conditions = _conditions(holder_id=holder_id, from_state=from_state, project_id=project_id,
                                 vintage=vintage, order_id=order_id, serials=serials, exclude=seen,
                                 retirement_id=retirement_id)
        blocks = (await session.scalars(_candidates(conditions, limit=64))).all()
        if not blocks and not await _any_left(session, conditions):
            raise InsufficientTonnes(message=f"Only {quantity - needed} of the {quantity} tonnes are available.",
                                     field="quantity")
        if not blocks:
            continue  # what we waited for was taken; a fresh snapshot shows what is left of it
        for block in blocks:
            seen.add(block.id)
            if needed == 0:
                break
            if block.ended_at is not None or block.state != from_state.value:
                continue
            first, last = block.first_serial, block.last_serial
            if serials is not None:
                first, last = max(first, serials[0]), min(last, serials[1])
            last = min(last, first + needed - 1)
            journal = Move(id=uuid.uuid4(), kind=kind.value, project_id=block.project_id, vintage=block.vintage,
                           first_serial=first, last_serial=last, from_holder_id=holder_id, to_holder_id=new_holder,
                           from_state=from_state.value, to_state=to_state.value, reference_kind=reference_kind,
                           reference_id=reference_id, at=now)
            session.add(journal)
            await session.flush()
            block.ended_at = now
            block.ended_by_move_id = journal.id
            # the parts of the old block that did not move stay as they were, as new blocks
            for rest_first, rest_last in ((block.first_serial, first - 1), (last + 1, block.last_serial)):
                if rest_first <= rest_last:
                    session.add(Block(project_id=block.project_id, vintage=block.vintage, first_serial=rest_first,
                                      last_serial=rest_last, holder_id=block.holder_id, state=block.state,
                                      order_id=block.order_id, retirement_id=block.retirement_id,
                                      cancellation_id=block.cancellation_id, surrender_id=block.surrender_id,
                                      created_by_move_id=journal.id,
                                      created_at=now))
            session.add(Block(project_id=block.project_id, vintage=block.vintage, first_serial=first, last_serial=last,
                              holder_id=new_holder, state=to_state.value,
                              order_id=set_order_id if to_state is BlockState.RESERVED else None,
                              retirement_id=set_retirement_id, cancellation_id=set_cancellation_id,
                              surrender_id=set_surrender_id,
                              created_by_move_id=journal.id, created_at=now))
            moved.append(MovedRange(block.project_id, block.vintage, first, last, journal.id))
            needed -= last - first + 1
        await session.flush()
        if serials is not None and needed > 0 and len(blocks) < 64:
            # an exact range: what is not in this state with this holder is simply not there
            raise InsufficientTonnes(message="Some of those serial numbers are not available to this holder.", field="serials")
    return moved


@dataclass(frozen=True)
class StateTotals:
    project_id: uuid.UUID
    vintage: int
    issued: int
    held: int
    reserved: int
    in_review: int
    retired: int
    cancelled: int
    surrendered: int = 0  # surrendered for ETS compliance (art. 18), final

    @property
    def balanced(self) -> bool:
        return self.issued == (self.held + self.reserved + self.in_review + self.retired + self.cancelled
                               + self.surrendered)


async def state_totals(*, session: AsyncSession, project_id: uuid.UUID | None = None,
                       project_ids: list[uuid.UUID] | None = None) -> list[StateTotals]:
    """Issued (from the journal) against the live blocks by state, per project and vintage."""
    size = Block.last_serial - Block.first_serial + 1
    live = select(Block.project_id, Block.vintage,
                  *[func.coalesce(func.sum(size).filter(Block.state == s.value), 0).label(s.value) for s in BlockState]
                  ).where(Block.ended_at.is_(None)).group_by(Block.project_id, Block.vintage)
    issued = select(Move.project_id, Move.vintage, func.sum(Move.last_serial - Move.first_serial + 1).label("issued")
                    ).where(Move.kind == MoveKind.ISSUE.value).group_by(Move.project_id, Move.vintage)
    if project_id is not None:
        project_ids = [project_id]
    if project_ids is not None:
        live = live.where(Block.project_id.in_(project_ids))
        issued = issued.where(Move.project_id.in_(project_ids))
    by_key: dict[tuple, dict] = {}
    for row in (await session.execute(issued)).all():
        by_key[(row.project_id, row.vintage)] = {"issued": int(row.issued)}
    for row in (await session.execute(live)).all():
        by_key.setdefault((row.project_id, row.vintage), {"issued": 0}).update(
            {s.value: int(getattr(row, s.value)) for s in BlockState})
    return [StateTotals(project_id=k[0], vintage=k[1], issued=v["issued"],
                        **{s.value: v.get(s.value, 0) for s in BlockState})
            for k, v in sorted(by_key.items(), key=lambda kv: (str(kv[0][0]), kv[0][1]))]


async def overlapping_live_blocks(*, session: AsyncSession) -> int:
    """Pairs of live blocks sharing a serial: must always be zero (each tonne is in one place)."""
    a, b = Block.__table__.alias("a"), Block.__table__.alias("b")
    stmt = select(func.count()).select_from(a).join(b, and_(
        a.c.project_id == b.c.project_id, a.c.vintage == b.c.vintage, a.c.id < b.c.id,
        a.c.first_serial <= b.c.last_serial, b.c.first_serial <= a.c.last_serial)).where(
        a.c.ended_at.is_(None), b.c.ended_at.is_(None))
    return int(await session.scalar(stmt) or 0)


async def trace(*, session: AsyncSession, project_id: uuid.UUID, vintage: int, serial: int) -> list[Move]:
    """Every act on one tonne, from its issuance on."""
    stmt = (select(Move).where(Move.project_id == project_id, Move.vintage == vintage, Move.first_serial <= serial,
                               Move.last_serial >= serial).order_by(Move.seq))
    return list((await session.scalars(stmt)).all())
