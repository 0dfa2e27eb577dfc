"""CER conservation under random interleavings (hypothesis) of issuance, reservation, release,
delivery, retirement, applications for neutrality with their review (held IN_REVIEW, then approved:
retired, or rejected: released to the same serials, art. 19), the regulator's cancellation and
surrenders for ETS compliance (art. 18, final), on the real PostgreSQL.

A model keeps every serial's holder and state and predicts each act, which tonnes it takes (the
lowest serials first) and each refusal. After every step the live blocks, expanded serial by
serial, equal the model; issued = held + reserved + in_review + retired + cancelled + surrendered; no serial is in two live
blocks. At the end, replaying the move journal serial by serial from issuance ends exactly where
each live block says the serial is: every tonne is traceable."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from core.errors import DomainError
from neutrality.cers import blocks, offsets, projects
from neutrality.cers.models import Block, BlockState, Move, MoveKind, Project, VerifierReport
from neutrality.retirement import review
from neutrality.retirement.certificates import Signer
from tests.neutrality.certificate_fixtures import BASE_URL, apply
from tests.neutrality.fixtures import accounts, filed_project
from tests.neutrality.offset_fixtures import ENTITY_CODE, ENTITY_NAME

HELD, RESERVED, IN_REVIEW, RETIRED, CANCELLED, SURRENDERED = (s.value for s in BlockState)
KINDS = (["issue"] * 2 + ["reserve"] * 3 + ["release", "deliver", "deliver", "retire", "cancel"]
         + ["apply"] * 2 + ["approve", "reject", "surrender"])
SIGNER = Signer.generate()
steps = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 40), st.integers(0, 40), st.integers(1, 12)),
                 min_size=4, max_size=22)


class Model:
    def __init__(self, holders):
        self.holders = holders
        self.serials: dict[int, tuple[uuid.UUID, str, uuid.UUID | None]] = {}  # serial -> holder, state, order
        self.orders: list[tuple[uuid.UUID, uuid.UUID, int]] = []  # order, seller, quantity (pending ones)
        self.applications: list[tuple[uuid.UUID, uuid.UUID, list[int]]] = []  # retirement, holder, serials (pending)

    def lowest(self, holder, state, quantity, order=None) -> list[int] | None:
        mine = sorted(s for s, (h, st_, o) in self.serials.items() if h == holder and st_ == state and
                      (order is None or o == order))
        return mine[:quantity] if len(mine) >= quantity else None

    def set(self, serials, holder, state, order=None):
        for s in serials:
            self.serials[s] = (holder, state, order)


async def in_transaction(services, fn, **kwargs):
    async with services.session_factory() as session:
        async with session.begin():
            return await fn(session=session, clock=services.clock, **kwargs)


async def live_serials(services, project_id) -> dict[int, tuple[uuid.UUID, str, uuid.UUID | None]]:
    async with services.session_factory() as session:
        rows = (await session.scalars(select(Block).where(Block.project_id == project_id,
                                                          Block.ended_at.is_(None)))).all()
        [totals] = await blocks.state_totals(session=session, project_id=project_id) or [None]
        assert await blocks.overlapping_live_blocks(session=session) == 0
    if totals is not None:
        assert totals.balanced, totals
    out = {}
    for b in rows:
        for s in range(b.first_serial, b.last_serial + 1):
            out[s] = (b.holder_id, b.state, b.order_id if b.state == RESERVED else None)
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(plan=steps)
async def test_random_acts_keep_every_tonne_in_exactly_one_place(services, plan):
    registry = await filed_project(services, buyers=2)
    [regulator] = await accounts(services, 1, role="regulator", kind="authority")
    [checker] = await accounts(services, 1, role="neutrality_reviewer", kind="person")
    owner = registry.owner_id
    holders = [owner, *registry.buyers]
    async with services.session_factory() as session:
        async with session.begin():
            report = VerifierReport(project_id=registry.project_id, verifier_name="核查", report_reference="R",
                                    vintage=2025, verified_tonnes=10_000, issued_tonnes=0,
                                    submitted_at=services.clock.now())
            session.add(report)
            await session.execute(update(Project).where(Project.id == registry.project_id)
                                  .values(methodology_code="SZ-METRO"))
    async with services.session_factory() as session:
        async with session.begin():  # a year whose scope takes the project's tonnes, with room to spare
            draft = await offsets.draft_scope(session=session, clock=services.clock, regulator_id=regulator, year=2026,
                                              vintages=[2025], project_kinds=[], methodology_codes=["SZ-METRO"],
                                              cap_tonnes=1_000_000)
            await offsets.publish_scope(session=session, clock=services.clock, regulator_id=regulator,
                                        scope_id=draft.id)
    model = Model(holders)
    issued = 0

    for kind, a, b, q in plan:
        if kind == "issue":
            await in_transaction(services, projects.issue_cers, regulator_id=regulator, verifier_report_id=report.id,
                                 tonnes=q)
            model.set(range(issued + 1, issued + q + 1), owner, HELD)
            issued += q
        elif kind in ("reserve", "retire"):
            holder = holders[a % len(holders)]
            expected = model.lowest(holder, HELD, q)
            ref = uuid.uuid4()
            to_state = BlockState.RESERVED if kind == "reserve" else BlockState.RETIRED
            try:
                await in_transaction(services, blocks.move, kind=MoveKind(kind), holder_id=holder,
                                     from_state=BlockState.HELD, to_state=to_state, quantity=q,
                                     reference_kind="order" if kind == "reserve" else "retirement", reference_id=ref,
                                     set_order_id=ref if kind == "reserve" else None,
                                     set_retirement_id=ref if kind == "retire" else None)
                assert expected is not None, "moved tonnes the model says are not there"
                model.set(expected, holder, to_state.value, ref if kind == "reserve" else None)
                if kind == "reserve":
                    model.orders.append((ref, holder, q))
            except blocks.InsufficientTonnes:
                assert expected is None
        elif kind in ("release", "deliver") and model.orders:
            order, seller, quantity = model.orders.pop(a % len(model.orders))
            buyer = holders[b % len(holders)] if kind == "deliver" else seller
            expected = model.lowest(seller, RESERVED, quantity, order)
            await in_transaction(services, blocks.move, kind=MoveKind(kind), holder_id=seller, to_holder_id=buyer,
                                 from_state=BlockState.RESERVED, to_state=BlockState.HELD, quantity=quantity,
                                 order_id=order, reference_kind="order", reference_id=order)
            model.set(expected, buyer, HELD)
        elif kind == "apply":
            holder = holders[a % len(holders)]
            expected = model.lowest(holder, HELD, q)
            try:
                outcome = await apply(services, SIGNER, holder, footprint_kg=q * 1000)
                assert expected is not None and outcome.certificate is None
                model.set(expected, holder, IN_REVIEW)
                model.applications.append((outcome.retirement.id, holder, expected))
            except blocks.InsufficientTonnes:
                assert expected is None
        elif kind in ("approve", "reject") and model.applications:
            retirement_id, holder, serials = model.applications.pop(a % len(model.applications))
            if kind == "approve":
                await in_transaction(services, review.approve, signer=SIGNER, public_base_url=BASE_URL,
                                     reviewer_id=checker, retirement_id=retirement_id)
                model.set(serials, holder, RETIRED)
            else:
                await in_transaction(services, review.reject, reviewer_id=checker, retirement_id=retirement_id,
                                     reason="hypothesis")
                model.set(serials, holder, HELD)  # the very same serials, the same holder
        elif kind == "surrender":
            holder = holders[a % len(holders)]
            expected = model.lowest(holder, HELD, q)
            try:
                async with services.session_factory() as session:
                    async with session.begin():
                        await offsets.surrender_cers(session=session, clock=services.clock, holder_id=holder,
                                                     request=offsets.SurrenderRequest(
                                                         year=2026, entity_name=ENTITY_NAME, entity_code=ENTITY_CODE,
                                                         tonnes=q))
                assert expected is not None, "surrendered tonnes the model says are not there"
                model.set(expected, holder, SURRENDERED)
            except blocks.InsufficientTonnes:
                assert expected is None
        elif kind == "cancel" and issued:
            first = 1 + a % issued
            last = min(issued, first + q - 1)
            cancellable = all(model.serials[s][1] == HELD for s in range(first, last + 1))
            try:
                await in_transaction(services, projects.cancel_cers, regulator_id=regulator,
                                     project_id=registry.project_id, vintage=2025, first_serial=first,
                                     last_serial=last, reason="hypothesis")
                assert cancellable
                for s in range(first, last + 1):
                    model.serials[s] = (model.serials[s][0], CANCELLED, None)
            except DomainError as exc:
                assert exc.code == "SERIALS_NOT_CANCELLABLE" and not cancellable
        assert await live_serials(services, registry.project_id) == model.serials

    # replay the journal: each serial's moves chain from issuance to where it is now
    async with services.session_factory() as session:
        moves = (await session.scalars(select(Move).where(Move.project_id == registry.project_id)
                                       .order_by(Move.seq))).all()
    where: dict[int, tuple[uuid.UUID, str]] = {}
    for move in moves:
        for s in range(move.first_serial, move.last_serial + 1):
            if move.kind == MoveKind.ISSUE.value:
                assert s not in where, "a serial issued twice"
            else:
                assert where[s] == (move.from_holder_id, move.from_state), (s, move.kind)
            where[s] = (move.to_holder_id, move.to_state)
    assert where == {s: (h, st_) for s, (h, st_, _) in model.serials.items()}
