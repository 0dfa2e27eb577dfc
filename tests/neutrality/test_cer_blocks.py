"""The serial-block primitive: exact splits, a traceable journal, conservation under races."""

import asyncio
import uuid

import pytest

from neutrality.cers import blocks
from neutrality.cers.models import BlockState, MoveKind
from tests.neutrality.fixtures import filed_project


async def _issue(services, reg, first: int, last: int, vintage: int = 2025):
    async with services.session_factory() as session, session.begin():
        return await blocks.issue_block(session=session, clock=services.clock, project_id=reg.project_id,
                                        vintage=vintage, first_serial=first, last_serial=last,
                                        holder_id=reg.owner_id, issuance_id=uuid.uuid4())


async def _move(services, **kw):
    async with services.session_factory() as session, session.begin():
        return await blocks.move(session=session, clock=services.clock, **kw)


async def _totals(services):
    async with services.session_factory() as session:
        return await blocks.state_totals(session=session), await blocks.overlapping_live_blocks(session=session)


async def test_moves_split_blocks_exactly_and_every_tonne_is_traceable(services):
    reg = await filed_project(services)
    await _issue(services, reg, 1, 100)
    buyer = reg.buyers[0]
    order = uuid.uuid4()
    [reserved] = await _move(services, kind=MoveKind.RESERVE, holder_id=reg.owner_id, from_state=BlockState.HELD,
                             to_state=BlockState.RESERVED, quantity=30, reference_kind="order", reference_id=order,
                             set_order_id=order)
    assert (reserved.first_serial, reserved.last_serial) == (1, 30)
    [delivered] = await _move(services, kind=MoveKind.DELIVER, holder_id=reg.owner_id, from_state=BlockState.RESERVED,
                              to_state=BlockState.HELD, to_holder_id=buyer, order_id=order, quantity=30,
                              reference_kind="order", reference_id=order)
    retirement = uuid.uuid4()
    [retired] = await _move(services, kind=MoveKind.RETIRE, holder_id=buyer, from_state=BlockState.HELD,
                            to_state=BlockState.RETIRED, quantity=12, reference_kind="retirement",
                            reference_id=retirement, set_retirement_id=retirement)
    assert (retired.first_serial, retired.last_serial) == (1, 12)
    # an exact range from the middle of the owner's block
    [cancelled] = await _move(services, kind=MoveKind.CANCEL, holder_id=reg.owner_id, from_state=BlockState.HELD,
                              to_state=BlockState.CANCELLED, quantity=5, serials=(50, 54), reference_kind="cancellation",
                              reference_id=uuid.uuid4())
    assert (cancelled.first_serial, cancelled.last_serial) == (50, 54)
    [totals], overlaps = await _totals(services)
    assert (totals.issued, totals.held, totals.reserved, totals.retired, totals.cancelled) == (100, 83, 0, 12, 5)
    assert totals.balanced and overlaps == 0
    async with services.session_factory() as session:
        history = await blocks.trace(session=session, project_id=reg.project_id, vintage=2025, serial=7)
    assert [m.kind for m in history] == ["issue", "reserve", "deliver", "retire"]
    assert history[-1].reference_id == retirement


async def test_not_enough_tonnes_moves_nothing(services):
    reg = await filed_project(services)
    await _issue(services, reg, 1, 10)
    with pytest.raises(blocks.InsufficientTonnes):
        await _move(services, kind=MoveKind.RETIRE, holder_id=reg.owner_id, from_state=BlockState.HELD,
                    to_state=BlockState.RETIRED, quantity=11, reference_kind="retirement", reference_id=uuid.uuid4())
    with pytest.raises(blocks.InsufficientTonnes):
        await _move(services, kind=MoveKind.CANCEL, holder_id=reg.owner_id, from_state=BlockState.HELD,
                    to_state=BlockState.CANCELLED, quantity=3, serials=(9, 11), reference_kind="cancellation",
                    reference_id=uuid.uuid4())
    [totals], overlaps = await _totals(services)
    assert (totals.issued, totals.held) == (10, 10) and overlaps == 0


async def test_parallel_moves_never_take_a_tonne_twice(services):
    reg = await filed_project(services, buyers=12)
    await _issue(services, reg, 1, 40)
    await _issue(services, reg, 41, 50)

    async def buy(buyer):
        try:
            return await _move(services, kind=MoveKind.DELIVER, holder_id=reg.owner_id, from_state=BlockState.HELD,
                               to_state=BlockState.HELD, to_holder_id=buyer, quantity=5, reference_kind="order",
                               reference_id=uuid.uuid4())
        except blocks.InsufficientTonnes:
            return None

    results = await asyncio.gather(*[buy(b) for b in reg.buyers])
    winners = [r for r in results if r is not None]
    assert len(winners) == 10
    serials = [s for ranges in winners for r in ranges for s in range(r.first_serial, r.last_serial + 1)]
    assert sorted(serials) == list(range(1, 51))
    [totals], overlaps = await _totals(services)
    assert totals.balanced and totals.held == 50 and overlaps == 0
