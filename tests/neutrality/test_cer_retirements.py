"""Retirement (注销) for carbon neutrality: rounding, exact serials, conservation, refusals, finality,
idempotency, roles, tonnes promised to offers, and races on real parallel connections."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import pytest
from sqlalchemy import func, select

from core.errors import DomainError
from neutrality.cers import blocks
from neutrality.cers.models import Block, BlockState, Move
from neutrality.market import offers, purchases
from neutrality.retirement.certificates import Signer
from neutrality.retirement.models import Certificate, Retirement
from tests.neutrality.certificate_fixtures import APPLY, application, auto_approve, holding, retire
from tests.conftest import approved, organisation, person, regulator
from tests.neutrality.market_fixtures import seller_with_tonnes
from tests.neutrality.fixtures import accounts, filed_project

SIGNER = Signer.generate()


async def _conserved(services) -> list[blocks.StateTotals]:
    async with services.session_factory() as session:
        totals = await blocks.state_totals(session=session)
        assert await blocks.overlapping_live_blocks(session=session) == 0
    assert all(t.balanced for t in totals), totals
    return totals


async def _count(services, model) -> int:
    async with services.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model)))


async def _live(services, holder_id, state: BlockState) -> list[tuple[int, int]]:
    async with services.session_factory() as session:
        rows = await session.execute(select(Block.first_serial, Block.last_serial).where(
            Block.holder_id == holder_id, Block.state == state.value, Block.ended_at.is_(None)
        ).order_by(Block.first_serial))
        return [tuple(r) for r in rows]


# --- the domain ----------------------------------------------------------------------------------


async def test_the_footprint_rounds_up_to_whole_tonnes_and_names_the_exact_serials(services):
    [holder] = await accounts(services, 1)
    reg = await holding(services, holder, 100)
    outcome = await retire(services, SIGNER, holder, footprint_kg=12_345)
    assert outcome.retirement.tonnes == 13 and outcome.retirement.footprint_kg == 12_345
    assert [(r.project_code, r.vintage, r.first, r.last) for r in outcome.ranges] == [(reg.project_code, 2025, 1, 13)]
    assert await _live(services, holder, BlockState.RETIRED) == [(1, 13)]
    assert await _live(services, holder, BlockState.HELD) == [(14, 100)]
    async with services.session_factory() as session:
        retired = (await session.scalars(select(Block).where(Block.state == "retired", Block.ended_at.is_(None)))).all()
        assert [b.retirement_id for b in retired] == [outcome.retirement.id]
        history = await blocks.trace(session=session, project_id=reg.project_id, vintage=2025, serial=13)
    assert [(m.kind, m.reference_id) for m in history][-1] == ("retire", outcome.retirement.id)
    [totals] = await _conserved(services)
    assert (totals.issued, totals.held, totals.retired) == (100, 87, 13)
    # exact tonnes need no rounding; one kilogram over needs one more tonne
    assert (await retire(services, SIGNER, holder, footprint_kg=2_000)).retirement.tonnes == 2
    assert (await retire(services, SIGNER, holder, footprint_kg=2_001)).retirement.tonnes == 3
    assert (await retire(services, SIGNER, holder, footprint_kg=1)).retirement.tonnes == 1
    [totals] = await _conserved(services)
    assert totals.retired == 13 + 2 + 3 + 1


async def test_more_tonnes_one_project_one_vintage_or_an_exact_range(services):
    [holder] = await accounts(services, 1)
    first = await holding(services, holder, 30)
    second = await holding(services, holder, 30)
    await holding(services, holder, 30, vintage=2024, registry=second)
    # the lowest project code first, then vintage, then serial: 25 from the first project
    outcome = await retire(services, SIGNER, holder, footprint_kg=1_500, tonnes=25)
    assert outcome.retirement.tonnes == 25
    assert [(r.project_code, r.first, r.last) for r in outcome.ranges] == [(first.project_code, 1, 25)]
    # spanning projects when one is not enough
    outcome = await retire(services, SIGNER, holder, footprint_kg=10_000)
    assert [(r.project_code, r.vintage, r.first, r.last) for r in outcome.ranges] == [
        (first.project_code, 2025, 26, 30), (second.project_code, 2024, 1, 5)]
    outcome = await retire(services, SIGNER, holder, footprint_kg=3_000, project_id=second.project_id, vintage=2025)
    assert [(r.project_code, r.vintage, r.first, r.last) for r in outcome.ranges] == [(second.project_code, 2025, 1, 3)]
    outcome = await retire(services, SIGNER, holder, footprint_kg=9_500, project_id=second.project_id, vintage=2025,
                           serials=(11, 20))
    assert [(r.first, r.last) for r in outcome.ranges] == [(11, 20)] and outcome.retirement.tonnes == 10
    async with services.session_factory() as session:
        held = (await session.execute(select(Block.first_serial, Block.last_serial).where(
            Block.project_id == second.project_id, Block.vintage == 2025, Block.state == "held",
            Block.ended_at.is_(None)).order_by(Block.first_serial))).all()
    assert [tuple(r) for r in held] == [(4, 10), (21, 30)]
    await _conserved(services)


@pytest.mark.parametrize(("kw", "code", "field"), [
    ({"footprint_kg": 0}, "INVALID_FOOTPRINT", "footprintKg"),
    ({"footprint_kg": -5}, "INVALID_FOOTPRINT", "footprintKg"),
    ({"footprint_kg": 10**13}, "INVALID_FOOTPRINT", "footprintKg"),
    ({"period_start": date(2026, 3, 1), "period_end": date(2026, 2, 1)}, "INVALID_PERIOD", "periodEnd"),
    ({"period_start": date(1999, 1, 1), "period_end": date(1999, 2, 1)}, "INVALID_PERIOD", "periodStart"),
    ({"period_start": date(2024, 1, 1), "period_end": date(2025, 6, 30)}, "INVALID_PERIOD", "periodEnd"),
    ({"period_start": date(2027, 12, 1), "period_end": date(2027, 12, 2)}, "INVALID_PERIOD", "periodEnd"),
    ({"beneficiary_name": "  "}, "INVALID_BENEFICIARY", "beneficiaryName"),
    ({"beneficiary_name": "x" * 201}, "INVALID_BENEFICIARY", "beneficiaryName"),
    ({"beneficiary_name": "ACME\u0000 Ltd"}, "INVALID_BENEFICIARY", "beneficiaryName"),
    ({"subject": ""}, "INVALID_SUBJECT", "subject"),
    ({"subject_kind": "planet"}, "INVALID", "subjectKind"),
    ({"tonnes": 12}, "TONNES_BELOW_FOOTPRINT", "tonnes"),
    ({"tonnes": 0}, "INVALID", "tonnes"),
    ({"serials": (1, 5)}, "INVALID", "serials"),
    ({"footprint_kg": 101_000}, "INSUFFICIENT_TONNES", "tonnes"),
    ({"project_id": uuid.uuid4()}, "NOT_FOUND", "projectId"),
])
async def test_bad_applications_are_typed_errors_and_change_nothing(services, kw, code, field):
    [holder] = await accounts(services, 1)
    await holding(services, holder, 100)
    with pytest.raises(DomainError) as raised:
        await retire(services, SIGNER, holder, **kw)
    assert (raised.value.code, raised.value.field) == (code, field)
    assert await _count(services, Retirement) == 0 and await _count(services, Certificate) == 0
    assert await _live(services, holder, BlockState.HELD) == [(1, 100)]
    await _conserved(services)


async def test_not_enough_tonnes_changes_nothing(services):
    [holder] = await accounts(services, 1)
    reg = await holding(services, holder, 10)
    for kw in ({"footprint_kg": 10_001}, {"footprint_kg": 1_000, "tonnes": 11},
               {"footprint_kg": 3_000, "project_id": reg.project_id, "vintage": 2025, "serials": (9, 11)},
               {"footprint_kg": 1_000, "project_id": reg.project_id, "vintage": 2024}):
        with pytest.raises(DomainError) as raised:
            await retire(services, SIGNER, holder, **kw)
        assert raised.value.code == "INSUFFICIENT_TONNES", kw
    assert await _count(services, Retirement) == 0 and await _count(services, Certificate) == 0
    assert await _count(services, Move) == 1  # the issuance only
    assert await _live(services, holder, BlockState.HELD) == [(1, 10)]
    [totals] = await _conserved(services)
    assert (totals.held, totals.retired) == (10, 0)


async def test_only_the_holders_own_tonnes(services):
    owner, other = await accounts(services, 2)
    reg = await holding(services, owner, 50)
    for kw in ({}, {"project_id": reg.project_id, "vintage": 2025, "serials": (1, 13)}):
        with pytest.raises(DomainError) as raised:
            await retire(services, SIGNER, other, **kw)
        assert raised.value.code == "INSUFFICIENT_TONNES"
    assert await _live(services, owner, BlockState.HELD) == [(1, 50)]
    outcome = await retire(services, SIGNER, owner)
    assert outcome.retirement.holder_id == owner and outcome.certificate.holder_id == owner


async def test_retired_tonnes_can_never_be_sold_or_retired_again(services):
    [holder] = await accounts(services, 1)
    reg = await holding(services, holder, 13)
    await retire(services, SIGNER, holder, footprint_kg=12_345)
    with pytest.raises(DomainError) as raised:
        await retire(services, SIGNER, holder, footprint_kg=1)
    assert raised.value.code == "INSUFFICIENT_TONNES"
    with pytest.raises(DomainError) as raised:
        await retire(services, SIGNER, holder, footprint_kg=1_000, project_id=reg.project_id, vintage=2025,
                     serials=(5, 5))
    assert raised.value.code == "INSUFFICIENT_TONNES"
    async with services.session_factory() as session, session.begin():
        with pytest.raises(DomainError) as raised:
            await offers.create_offer(session=session, clock=services.clock, seller_id=holder,
                                      project_id=reg.project_id, vintage=2025, quantity=1, price_per_tonne_fen=100)
    assert raised.value.code == "INSUFFICIENT_TONNES"
    [buyer] = await accounts(services, 1)
    async with services.session_factory() as session, session.begin():
        with pytest.raises(blocks.InsufficientTonnes):
            await blocks.move(session=session, clock=services.clock, kind=blocks.MoveKind.DELIVER, holder_id=holder,
                              from_state=BlockState.HELD, to_state=BlockState.HELD, to_holder_id=buyer, quantity=1,
                              reference_kind="order", reference_id=uuid.uuid4())
    [totals] = await _conserved(services)
    assert (totals.held, totals.retired) == (0, 13)


async def test_tonnes_promised_to_an_offer_are_not_retired(services):
    [holder, buyer] = await accounts(services, 2)
    reg = await holding(services, holder, 100)
    async with services.session_factory() as session, session.begin():
        offer = await offers.create_offer(session=session, clock=services.clock, seller_id=holder,
                                          project_id=reg.project_id, vintage=2025, quantity=60,
                                          price_per_tonne_fen=5_000)
    with pytest.raises(DomainError) as raised:
        await retire(services, SIGNER, holder, footprint_kg=41_000)
    assert raised.value.code == "INSUFFICIENT_TONNES" and "40" in raised.value.message
    await retire(services, SIGNER, holder, footprint_kg=40_000)
    # the offer can still deliver everything it promised
    async with services.session_factory() as session, session.begin():
        order = await purchases.reserve_purchase(session=session, clock=services.clock, buyer_id=buyer,
                                                 offer_id=offer.id, quantity=60)
    assert order.quantity == 60
    [totals] = await _conserved(services)
    assert (totals.held, totals.reserved, totals.retired) == (0, 60, 40)


async def test_parallel_retirements_of_one_holder_never_over_retire(services):
    """12 retirements of 5 t at once against 50 t, each on its own connection: exactly 10 succeed."""
    [holder] = await accounts(services, 1)
    reg = await holding(services, holder, 40)
    await blocks_issue(services, reg, holder, 41, 50)

    async def one():
        try:
            return await retire(services, SIGNER, holder, footprint_kg=4_500)
        except DomainError as exc:
            assert exc.code == "INSUFFICIENT_TONNES"
            return None

    results = await asyncio.gather(*[one() for _ in range(12)])
    winners = [r for r in results if r is not None]
    assert len(winners) == 10
    serials = sorted(s for w in winners for r in w.ranges for s in range(r.first, r.last + 1))
    assert serials == list(range(1, 51))
    assert len({w.certificate.number for w in winners}) == 10
    [totals] = await _conserved(services)
    assert (totals.held, totals.retired) == (0, 50)


async def test_retiring_while_offering_never_promises_a_tonne_twice(services):
    """Offering and retiring the same 20 t at once: one of them gets them, the other is refused."""
    for _ in range(5):
        [holder] = await accounts(services, 1)
        reg = await holding(services, holder, 20)

        async def offer():
            async with services.session_factory() as session, session.begin():
                return await offers.create_offer(session=session, clock=services.clock, seller_id=holder,
                                                 project_id=reg.project_id, vintage=2025, quantity=15,
                                                 price_per_tonne_fen=100)

        results = await asyncio.gather(offer(), retire(services, SIGNER, holder, footprint_kg=15_000),
                                       return_exceptions=True)
        failures = [r for r in results if isinstance(r, DomainError)]
        assert len(failures) == 1 and failures[0].code == "INSUFFICIENT_TONNES", results
        async with services.session_factory() as session:
            free = await offers.free_tonnes(session=session, holder_id=holder, project_id=reg.project_id, vintage=2025)
        assert free == 5
    await _conserved(services)


async def blocks_issue(services, reg, holder, first, last, vintage=2025):
    async with services.session_factory() as session, session.begin():
        await blocks.issue_block(session=session, clock=services.clock, project_id=reg.project_id, vintage=vintage,
                                 first_serial=first, last_serial=last, holder_id=holder, issuance_id=uuid.uuid4())


# --- through the API -----------------------------------------------------------------------------


async def test_apply_through_the_api_replays_by_idempotency_key(api, services):
    await auto_approve(services)  # approved at once: the answer carries the certificate
    org = await organisation(api)
    reg = await holding(services, uuid.UUID(org.account_id), 30)
    request = application(idempotencyKey="neutral-forum-2026")
    first = (await api.data(APPLY, {"input": request}, token=org.token))["applyForNeutrality"]
    assert first["errors"] == []
    assert first["retirement"]["tonnes"] == 13 and first["retirement"]["footprintTonnes"] == "12.345"
    assert first["retirement"]["status"] == "APPROVED" and first["retirement"]["approvedByPolicyVersion"] == 1
    assert first["certificate"]["serialRanges"] == [{
        "label": f"SZCER-{reg.project_code}-2025-000000001-000000013", "projectCode": reg.project_code,
        "vintage": 2025, "firstSerial": 1, "lastSerial": 13, "quantity": 13}]
    assert first["certificate"]["projects"] == [{"code": reg.project_code, "title": "光明区分布式光伏", "vintages": [2025]}]
    again = (await api.data(APPLY, {"input": request}, token=org.token))["applyForNeutrality"]
    assert again == first
    reused = (await api.data(APPLY, {"input": {**request, "footprintKg": 2_000}}, token=org.token))["applyForNeutrality"]
    assert reused["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED" and reused["certificate"] is None
    assert await _count(services, Retirement) == 1
    assert await _live(services, uuid.UUID(org.account_id), BlockState.HELD) == [(14, 30)]

    short = (await api.data(APPLY, {"input": application(footprintKg=18_000)}, token=org.token))["applyForNeutrality"]
    assert [(e["code"], e["field"]) for e in short["errors"]] == [("INSUFFICIENT_TONNES", "tonnes")]
    # a refusal is the key's answer, like a success: once the tonnes are there, a new key works
    retry = application(footprintKg=18_000, idempotencyKey="retry-me")
    refused = (await api.data(APPLY, {"input": retry}, token=org.token))["applyForNeutrality"]
    assert [e["code"] for e in refused["errors"]] == ["INSUFFICIENT_TONNES"]
    await blocks_issue(services, reg, uuid.UUID(org.account_id), 31, 40)
    services.clock.advance(minutes=1)
    assert (await api.data(APPLY, {"input": retry}, token=org.token))["applyForNeutrality"] == refused
    retry["idempotencyKey"] = "retry-me-again"
    assert (await api.data(APPLY, {"input": retry}, token=org.token))["applyForNeutrality"]["errors"] == []

    bad = (await api.data(APPLY, {"input": application(periodStart="2026-03-01", periodEnd="2026-01-01")},
                          token=org.token))["applyForNeutrality"]
    assert [(e["code"], e["field"]) for e in bad["errors"]] == [("INVALID_PERIOD", "periodEnd")]
    listed = await api.data("{ myRetirements(first: 10) { edges { node { tonnes certificate { number } } } } "
                            "myCertificates(first: 10) { edges { node { number tonnesRetired } } } }", token=org.token)
    assert [e["node"]["tonnes"] for e in listed["myRetirements"]["edges"]] == [18, 13]
    assert [e["node"]["tonnesRetired"] for e in listed["myCertificates"]["edges"]] == [18, 13]
    await _conserved(services)


async def test_organisations_individuals_and_project_owners_apply_others_are_refused(api, services):
    await auto_approve(services)  # covers organisations in good standing, never a person
    individual = await person(api)
    await holding(services, uuid.UUID(individual.account_id), 5)
    done = (await api.data(APPLY, {"input": application(footprintKg=800, subjectKind="ORGANISATION_YEAR",
                                                         beneficiaryName="王小明", subject="2026 年个人出行")},
                           token=individual.token))["applyForNeutrality"]
    assert done["errors"] == [] and done["retirement"]["tonnes"] == 1
    assert done["retirement"]["status"] == "PENDING_REVIEW" and done["certificate"] is None
    owner = await seller_with_tonnes(api, services, 20)
    done = (await api.data(APPLY, {"input": application(subjectKind="PRODUCT", subject="光伏组件 2026 批次")},
                           token=owner.actor.token))["applyForNeutrality"]
    assert done["errors"] == [] and done["certificate"]["serialRanges"][0]["projectCode"] == owner.registry.project_code

    # a merchant's or an app operator's machine (API key: only that role) and the regulator may not retire
    reg = await regulator(api)
    keys = []
    for role, name, scopes in (("MERCHANT", "绿意咖啡连锁有限公司", "FULFIL_REDEMPTIONS"),
                               ("APP_OPERATOR", "低碳星球运营有限公司", "REPORT_BEHAVIOUR")):
        actor = await approved(api, role, name, reg=reg)
        await holding(services, uuid.UUID(actor.account_id), 20)
        keys.append((await api.data(f'mutation {{ createApiKey(input: {{name: "till", scopes: [{scopes}]}}) {{ secret }} }}',
                                    token=actor.token))["createApiKey"]["secret"])
    for credentials in [{"api_key": k} for k in keys] + [{"token": reg.token}]:
        refused = (await api.data(APPLY, {"input": application()}, **credentials))["applyForNeutrality"]
        assert [e["code"] for e in refused["errors"]] == ["FORBIDDEN"], credentials
        for field in ("myRetirements(first: 5) { edges { cursor } }", "myCertificates(first: 5) { edges { cursor } }"):
            body = await api.gql(f"{{ {field} }}", **credentials)
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = (await api.data(APPLY, {"input": application()}))["applyForNeutrality"]
    assert [e["code"] for e in anonymous["errors"]] == ["UNAUTHENTICATED"]
    assert await _count(services, Retirement) == 2
    await _conserved(services)


async def test_the_holders_lists_are_their_own_and_paged(api, services):
    await auto_approve(services)
    org, other = await organisation(api), await organisation(api, "另一家公司")
    await holding(services, uuid.UUID(org.account_id), 10)
    for _ in range(3):
        await api.data(APPLY, {"input": application(footprintKg=1_000)}, token=org.token)
        services.clock.advance(seconds=1)
    query = "query($a: String) { myCertificates(first: 2, after: $a) { edges { node { number } } pageInfo { hasNextPage endCursor } } }"
    page = (await api.data(query, token=org.token))["myCertificates"]
    assert len(page["edges"]) == 2 and page["pageInfo"]["hasNextPage"]
    rest = (await api.data(query, {"a": page["pageInfo"]["endCursor"]}, token=org.token))["myCertificates"]
    assert len(rest["edges"]) == 1 and not rest["pageInfo"]["hasNextPage"]
    numbers = [e["node"]["number"] for e in page["edges"] + rest["edges"]]
    assert numbers == sorted(numbers, reverse=True)
    assert (await api.data(query, token=other.token))["myCertificates"]["edges"] == []
    mine = await api.data("query($n: String!) { certificate(number: $n) { number pdfUrl } }", {"n": numbers[0]},
                          token=org.token)
    assert mine["certificate"]["pdfUrl"].endswith(".pdf")
    theirs = await api.data("query($n: String!) { certificate(number: $n) { number } }", {"n": numbers[0]},
                            token=other.token)
    assert theirs["certificate"] is None
