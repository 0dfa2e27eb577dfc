"""The yearly ETS offset scope and surrenders for ETS compliance (art. 18, neutrality/cers/offsets.py).

The scope's state machine (draft -> published -> superseded by a correction) and each refusal; a
surrender moving exactly the serials it names to SURRENDERED, split as retirements split; every
refusal of a surrender; the cap under real parallel surrenders; finality (a surrendered serial is
never retired, offered or cancelled); the trace, the registry and the conservation audit counting
surrendered tonnes; the GraphQL contracts with idempotent retries and permissions."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select

from accounts.models import AuditEvent
from core.bulk import driver
from core.errors import DomainError
from neutrality.cers import blocks, offsets, projects, registry
from neutrality.cers.models import Block, BlockState, EtsOffsetScope, EtsSurrender, MoveKind
from neutrality.market import offers
from neutrality.retirement.certificates import Signer
from tests.api.test_frontend_contracts import PersistedClient
from tests.conftest import organisation, regulator
from tests.neutrality.certificate_fixtures import apply
from tests.neutrality.fixtures import PV_METHODOLOGY
from tests.neutrality.market_fixtures import assert_conserved, tonnes
from tests.neutrality.offset_fixtures import (
    ENTITY_CODE,
    ENTITY_NAME,
    OFFSET_CONTRACTS,
    deliver,
    entity_code,
    in_tx,
    issue,
    scope,
    surrender,
    world,
)

SIGNER = Signer.generate()


async def refused(coro) -> DomainError:
    with pytest.raises(DomainError) as caught:
        await coro
    return caught.value


async def live_blocks(services, project_id) -> list[Block]:
    async with services.session_factory() as session:
        return list((await session.scalars(select(Block).where(Block.project_id == project_id, Block.ended_at.is_(None))
                                           .order_by(Block.first_serial))).all())


# --- the scope ---------------------------------------------------------------------------------------


def test_unified_social_credit_codes_are_checked_with_their_check_character():
    assert offsets.check_entity_code(" 91350100m000100y43 ") == ENTITY_CODE
    for bad in ("91350100M000100Y44", "91350100M000100Y4", "91350100M000100Y433", "9135010OM000100Y43",
                "91350100M000100I43", "", None):
        with pytest.raises(DomainError) as caught:
            offsets.check_entity_code(bad)
        assert caught.value.code == "INVALID_ENTITY_CODE"


async def test_a_scope_is_drafted_published_and_corrected_by_a_new_version(services):
    w = await world(services)
    draft = await scope(services, w, cap=100, publish=False)
    assert (draft.status, draft.version, draft.vintages, draft.project_kinds) == ("draft", 1, [2025],
                                                                                   ["renewable_energy"])
    async with services.session_factory() as session:
        assert await offsets.scope_versions(session=session, year=2026) == []  # drafts are private
        assert (await offsets.offset_scope_use(session=session, first=10, after=None)).items == []

    published = await in_tx(services, offsets.publish_scope, regulator_id=w.regulator_id, scope_id=draft.id)
    assert published.status == "published" and published.published_at is not None
    again = await refused(in_tx(services, offsets.publish_scope, regulator_id=w.regulator_id, scope_id=draft.id))
    assert again.code == "SCOPE_NOT_DRAFT"

    await issue(services, w, 50)
    await surrender(services, w.owner_id, tonnes=30)
    lower = await scope(services, w, cap=29, publish=False)
    assert lower.version == 2
    below = await refused(in_tx(services, offsets.publish_scope, regulator_id=w.regulator_id, scope_id=lower.id))
    assert below.code == "CAP_BELOW_SURRENDERED" and below.field == "capTonnes"

    correction = await scope(services, w, cap=30, codes=(PV_METHODOLOGY,), kinds=(), publish=False)
    corrected = await in_tx(services, offsets.publish_scope, regulator_id=w.regulator_id, scope_id=correction.id)
    assert (corrected.version, corrected.supersedes_id, corrected.methodology_codes) == (3, draft.id, [PV_METHODOLOGY])
    # an older draft never replaces a newer published version
    stale = await refused(in_tx(services, offsets.publish_scope, regulator_id=w.regulator_id, scope_id=lower.id))
    assert stale.code == "SCOPE_NOT_DRAFT"
    async with services.session_factory() as session:
        versions = await offsets.scope_versions(session=session, year=2026)
        assert [(v.version, v.status) for v in versions] == [(1, "superseded"), (3, "published")]
        [use] = [i.node for i in (await offsets.offset_scope_use(session=session, first=10, after=None)).items]
        assert (use.year, use.scope.id, use.surrendered_tonnes, use.remaining_tonnes, use.surrenders) == (
            2026, correction.id, 30, 0, 1)
        events = (await session.scalars(select(AuditEvent).where(AuditEvent.subject_type == "ets_offset_scope")
                                        .order_by(AuditEvent.seq))).all()  # the log's commit order
    published_events = [e for e in events if e.action == "ets_offset_scope.published"]
    assert len(published_events) == 2 and all(e.actor_account_id == w.regulator_id for e in published_events)
    assert published_events[-1].before["supersededVersion"] == 1
    assert published_events[-1].after == {"status": "published", "year": 2026, "version": 3,
                                                     "capTonnes": 30, "surrenderedTonnes": 30}
    # the superseded version is untouched apart from its status
    async with services.session_factory() as session:
        old = await session.get(EtsOffsetScope, draft.id)
    assert (old.cap_tonnes, old.vintages, old.superseded_at is not None) == (100, [2025], True)


@pytest.mark.parametrize("change, field", [
    ({"vintages": []}, "vintages"),
    ({"vintages": [1999]}, "vintages"),
    ({"project_kinds": [], "methodology_codes": []}, "projectKinds"),
    ({"project_kinds": ["Not A Kind!"]}, "projectKinds"),
    ({"cap_tonnes": -1}, "capTonnes"),
])
async def test_an_incomplete_scope_is_refused(services, change, field):
    w = await world(services, holders=0)
    args = dict(regulator_id=w.regulator_id, year=2026, vintages=[2025], project_kinds=["renewable_energy"],
                methodology_codes=[], cap_tonnes=10)
    args.update(change)
    error = await refused(in_tx(services, offsets.draft_scope, **args))
    assert (error.code, error.field) == ("INVALID_SCOPE", field)


async def test_a_scope_names_only_published_methodologies(services):
    w = await world(services, holders=0)
    error = await refused(in_tx(services, offsets.draft_scope, regulator_id=w.regulator_id, year=2026,
                                vintages=[2025], project_kinds=[], methodology_codes=["SZ-NOWHERE"], cap_tonnes=10))
    assert error.code == "METHODOLOGY_NOT_PUBLISHED"


# --- surrender ---------------------------------------------------------------------------------------


async def test_a_surrender_moves_its_serials_to_surrendered_and_splits_the_block(services):
    w = await world(services)
    await issue(services, w, 10)
    await scope(services, w, cap=100)
    done = await surrender(services, w.owner_id, tonnes=4)
    assert (done.year, done.tonnes, done.entity_name, done.entity_code) == (2026, 4, ENTITY_NAME, ENTITY_CODE)
    assert offsets.serial_labels(done) == [f"SZCER-{w.project_code}-2025-000000001-000000004"]
    live = await live_blocks(services, w.project_id)
    assert [(b.first_serial, b.last_serial, b.state, b.surrender_id) for b in live] == [
        (1, 4, "surrendered", done.id), (5, 10, "held", None)]
    # an exact serial range
    exact = await surrender(services, w.owner_id, project_id=w.project_id, vintage=2025, serials=(7, 8))
    assert offsets.serial_labels(exact) == [f"SZCER-{w.project_code}-2025-000000007-000000008"]
    assert await tonnes(services, w.owner_id, BlockState.SURRENDERED) == 6
    assert await tonnes(services, w.owner_id) == 4
    [totals] = await assert_conserved(services)
    assert (totals.issued, totals.held, totals.surrendered) == (10, 4, 6)


async def test_surrendered_tonnes_are_in_the_trace_the_registry_and_the_audit(services):
    w = await world(services)
    await issue(services, w, 10)
    await scope(services, w)
    done = await surrender(services, w.owner_id, tonnes=3)
    async with services.session_factory() as session:
        trace = await registry.trace_serial(session=session, label=f"SZCER-{w.project_code}-2025-000000002")
        audit = await registry.audit(session=session)
        [line] = [a for a in audit.lines if a.project.id == w.project_id]
        by_project = await registry.totals(session=session, project_ids=[w.project_id])
        page = await offsets.public_surrenders(session=session, year=2026, first=10, after=None)
    assert trace.state == "surrendered"
    assert [(s.kind, s.from_state, s.to_state) for s in trace.steps] == [("issue", None, "held"),
                                                                          ("surrender", "held", "surrendered")]
    assert trace.steps[-1].surrender.id == done.id and trace.steps[-1].surrender.entity_code == ENTITY_CODE
    assert audit.balanced and line.balanced
    assert (line.totals.issued, line.issued_by_issuances, line.totals.held, line.totals.surrendered) == (10, 10, 7, 3)
    assert by_project[w.project_id][0].surrendered == 3
    assert [i.node.id for i in page.items] == [done.id]


async def test_the_audit_notices_a_surrendered_tonne_that_went_missing(services):
    """The conservation sum includes surrendered tonnes: drop one and the audit is unbalanced."""
    w = await world(services)
    await issue(services, w, 5)
    await scope(services, w)
    await surrender(services, w.owner_id, tonnes=2)
    async with services.session_factory() as session, session.begin():
        conn = await driver(session)
        await conn.execute("UPDATE cer_blocks SET last_serial = first_serial WHERE state = 'surrendered'"
                           " AND project_id = $1", w.project_id)
    async with services.session_factory() as session:
        audit = await registry.audit(session=session)
    assert not audit.balanced


async def test_every_refusal_of_a_surrender_moves_nothing(services):
    w = await world(services, holders=2)
    holder, other = w.holders
    await issue(services, w, 20)
    await issue(services, w, 5, vintage=2024)
    await deliver(services, w, holder, 10)
    await deliver(services, w, holder, 5, vintage=2024)
    # a second project whose methodology (metro, public transport) is outside the scope
    metro = await world(services, holders=0, methodology="SZ-METRO")
    metro.regulator_id = w.regulator_id
    await issue(services, metro, 5, project_id=metro.project_id)
    await deliver(services, metro, holder, 5, project_id=metro.project_id)
    await scope(services, w, year=2026, cap=12)
    await scope(services, w, year=2027, cap=12, publish=False)  # a draft only

    async def code_of(**kw) -> tuple[str, str | None]:
        error = await refused(surrender(services, holder, **kw))
        return error.code, error.field

    assert await code_of(year=2025, tonnes=1) == ("SCOPE_NOT_PUBLISHED", "year")  # unknown year
    assert await code_of(year=2027, tonnes=1) == ("SCOPE_NOT_PUBLISHED", "year")  # unpublished
    assert await code_of(year=1990, tonnes=1) == ("INVALID", "year")
    assert await code_of(tonnes=1, vintage=2024) == ("VINTAGE_NOT_IN_SCOPE", "vintage")
    assert await code_of(tonnes=1, project_id=metro.project_id) == ("PROJECT_NOT_IN_SCOPE", "projectId")
    # only tonnes in scope count: 10 of the holder's 20 are (not the 2024 ones, not the metro ones)
    assert await code_of(tonnes=11) == ("INSUFFICIENT_TONNES", "tonnes")
    assert await code_of(tonnes=13) == ("OVER_CAP", "tonnes")
    assert await code_of(tonnes=1, entity_code="91350100M000100Y44") == ("INVALID_ENTITY_CODE", "entityCode")
    assert await code_of(tonnes=1, entity_name="  ") == ("INVALID_ENTITY_NAME", "entityName")
    assert await code_of(tonnes=0) == ("INVALID", "tonnes")
    # serials of another holder, and serials not held
    assert await code_of(project_id=w.project_id, vintage=2025, serials=(11, 12)) == ("SERIALS_NOT_HELD", "serials")
    await in_tx(services, blocks.move, kind=MoveKind.RESERVE, holder_id=holder, from_state=BlockState.HELD,
                to_state=BlockState.RESERVED, quantity=2, reference_kind="order", reference_id=uuid.uuid4(),
                project_id=w.project_id, vintage=2025, serials=(1, 2), set_order_id=uuid.uuid4())
    assert await code_of(project_id=w.project_id, vintage=2025, serials=(1, 3)) == ("SERIALS_NOT_HELD", "serials")
    assert await code_of(project_id=w.project_id, vintage=2025, serials=(999, 1000)) == (
        "SERIALS_NOT_HELD", "serials")
    # a frozen project (art. 32)
    async with services.session_factory() as session, session.begin():
        conn = await driver(session)
        await conn.execute("UPDATE cer_projects SET frozen_at = now(), frozen_reason = 'false report' WHERE id = $1",
                           w.project_id)
    assert await code_of(tonnes=1, project_id=w.project_id) == ("PROJECT_FROZEN", "projectId")
    assert await code_of(tonnes=1) == ("INSUFFICIENT_TONNES", "tonnes")  # frozen tonnes are not free

    async with services.session_factory() as session:
        assert await session.scalar(select(EtsSurrender.id).limit(1)) is None
    assert await tonnes(services, holder, BlockState.SURRENDERED) == 0
    await assert_conserved(services)


async def test_a_surrendered_serial_is_final(services):
    w = await world(services)
    await issue(services, w, 6)
    await scope(services, w)
    await surrender(services, w.owner_id, project_id=w.project_id, vintage=2025, serials=(1, 4))
    # never retired
    with pytest.raises(blocks.InsufficientTonnes):
        await apply(services, SIGNER, w.owner_id, footprint_kg=4000, project_id=w.project_id, vintage=2025,
                    serials=(1, 4))
    # never offered beyond what is still held
    error = await refused(in_tx(services, offers.create_offer, seller_id=w.owner_id, project_id=w.project_id,
                                vintage=2025, quantity=3, price_per_tonne_fen=100))
    assert error.code == "INSUFFICIENT_TONNES"
    # never cancelled
    error = await refused(in_tx(services, projects.cancel_cers, regulator_id=w.regulator_id, project_id=w.project_id,
                                vintage=2025, first_serial=1, last_serial=1, reason="test"))
    assert error.code == "SERIALS_NOT_CANCELLABLE" and "surrendered" in error.message
    # never surrendered twice
    error = await refused(surrender(services, w.owner_id, project_id=w.project_id, vintage=2025, serials=(3, 4)))
    assert error.code == "SERIALS_NOT_HELD"
    # and no move takes them out of SURRENDERED (blocks.move only takes from the state it is told)
    live = await live_blocks(services, w.project_id)
    assert [(b.first_serial, b.last_serial, b.state) for b in live] == [(1, 4, "surrendered"), (5, 6, "held")]


async def test_parallel_surrenders_never_exceed_the_years_cap(services):
    """8 holders surrender 3 t each at once against a cap of 10: exactly 3 succeed (9 t), the rest are
    refused OVER_CAP, and nothing is partial."""
    w = await world(services, holders=8)
    await issue(services, w, 24)
    for holder in w.holders:
        await deliver(services, w, holder, 3)
    await scope(services, w, cap=10)

    async def one(holder):
        try:
            return await surrender(services, holder, tonnes=3)
        except DomainError as error:
            return error.code

    results = await asyncio.gather(*(one(h) for h in w.holders))
    done = [r for r in results if isinstance(r, EtsSurrender)]
    assert len(done) == 3 and sorted(r for r in results if isinstance(r, str)) == ["OVER_CAP"] * 5
    async with services.session_factory() as session:
        assert await offsets.surrendered_tonnes(session, 2026) == 9
    surrendered = {h: await tonnes(services, h, BlockState.SURRENDERED) for h in w.holders}
    assert sorted(surrendered.values()) == [0] * 5 + [3] * 3
    assert {h: await tonnes(services, h) for h in w.holders} == {h: 3 - surrendered[h] for h in w.holders}
    [totals] = await assert_conserved(services)
    assert totals.surrendered == 9


async def test_a_correction_and_surrenders_in_parallel_keep_the_cap(services):
    """A correction lowering the cap races surrenders: whichever order they take the scope row in, the
    tonnes surrendered never exceed the cap in force, and the correction never goes below them."""
    w = await world(services, holders=4)
    await issue(services, w, 12)
    for holder in w.holders:
        await deliver(services, w, holder, 3)
    await scope(services, w, cap=12)
    lower = await scope(services, w, cap=6, publish=False)

    async def publish():
        try:
            return await in_tx(services, offsets.publish_scope, regulator_id=w.regulator_id, scope_id=lower.id)
        except DomainError as error:
            return error.code

    async def one(holder):
        try:
            return await surrender(services, holder, tonnes=3)
        except DomainError as error:
            return error.code

    results = await asyncio.gather(publish(), *(one(h) for h in w.holders))
    async with services.session_factory() as session:
        used = await offsets.surrendered_tonnes(session, 2026)
        [use] = [i.node for i in (await offsets.offset_scope_use(session=session, first=10, after=None)).items]
    assert used <= use.scope.cap_tonnes
    if isinstance(results[0], str):
        assert results[0] == "CAP_BELOW_SURRENDERED" and used > 6
    else:
        assert use.scope.id == lower.id


# --- the API -----------------------------------------------------------------------------------------


async def test_the_offset_contracts_by_hash_with_idempotent_retries_and_permissions(api, services):
    c = PersistedClient(api)
    reg = await regulator(api)
    w = await world(services, holders=0)
    holder = await organisation(api, "深圳碳资产管理有限公司")
    await issue(services, w, 10)
    await deliver(services, w, uuid.UUID(holder.account_id), 10)

    drafted = (await c.run("DraftEtsOffsetScope", {"input": {
        "year": 2026, "vintages": [2025], "projectKinds": ["renewable_energy"], "methodologyCodes": [],
        "capTonnes": 8, "note": "2026年度履约抵销", "idempotencyKey": "draft-2026"}}, token=reg.token)
    )["draftEtsOffsetScope"]["scope"]
    assert drafted["status"] == "DRAFT"
    assert [e["node"]["id"] for e in (await c.run("EtsOffsetScopeDrafts", {"first": 10}, token=reg.token)
                                      )["etsOffsetScopeDrafts"]["edges"]] == [drafted["id"]]
    published = (await c.run("PublishEtsOffsetScope", {"input": {"scopeId": drafted["id"],
                                                                 "idempotencyKey": "publish-2026"}},
                             token=reg.token))["publishEtsOffsetScope"]["scope"]
    assert published["status"] == "PUBLISHED"

    surrender_input = {"year": 2026, "entityName": ENTITY_NAME, "entityCode": ENTITY_CODE, "tonnes": 5,
                       "idempotencyKey": "surrender-1"}
    first = (await c.run("SurrenderCersForCompliance", {"input": surrender_input}, token=holder.token)
             )["surrenderCersForCompliance"]["surrender"]
    again = (await c.run("SurrenderCersForCompliance", {"input": surrender_input}, token=holder.token)
             )["surrenderCersForCompliance"]["surrender"]
    assert first == again and first["tonnes"] == 5
    assert first["serials"] == [f"SZCER-{w.project_code}-2025-000000001-000000005"]
    assert await tonnes(services, holder.account_id, BlockState.SURRENDERED) == 5

    mutation = """mutation($input: SurrenderCersForComplianceInput!) { surrenderCersForCompliance(input: $input) {
        surrender { id } errors { code field message } } }"""
    reused = await api.data(mutation, {"input": {**surrender_input, "tonnes": 1}}, token=holder.token)
    assert [e["code"] for e in reused["surrenderCersForCompliance"]["errors"]] == ["IDEMPOTENCY_KEY_REUSED"]
    over = await api.data(mutation, {"input": {**surrender_input, "idempotencyKey": "surrender-2"}},
                          token=holder.token)
    assert [e["code"] for e in over["surrenderCersForCompliance"]["errors"]] == ["OVER_CAP"]
    # a refusal is the key's answer too, even once the cause is gone
    corrected = await api.data("""mutation($input: DraftEtsOffsetScopeInput!) { draftEtsOffsetScope(input: $input) {
        scope { id } errors { code } } }""", {"input": {"year": 2026, "vintages": [2025], "capTonnes": 20,
                                                       "projectKinds": ["renewable_energy"],
                                                       "idempotencyKey": "draft-2026-b"}}, token=reg.token)
    await api.data("""mutation($input: PublishEtsOffsetScopeInput!) { publishEtsOffsetScope(input: $input) {
        errors { code } } }""", {"input": {"scopeId": corrected["draftEtsOffsetScope"]["scope"]["id"],
                                           "idempotencyKey": "publish-2026-b"}}, token=reg.token)
    replay = await api.data(mutation, {"input": {**surrender_input, "idempotencyKey": "surrender-2"}},
                            token=holder.token)
    assert [e["code"] for e in replay["surrenderCersForCompliance"]["errors"]] == ["OVER_CAP"]
    bad = await api.data(mutation, {"input": {**surrender_input, "entityCode": "123", "idempotencyKey": "s-3"}},
                         token=holder.token)
    assert [(e["code"], e["field"]) for e in bad["surrenderCersForCompliance"]["errors"]] == [
        ("INVALID_ENTITY_CODE", "entityCode")]

    # permissions: only a signed-in holder surrenders, only the regulator drafts and publishes
    anonymous = await api.data(mutation, {"input": {**surrender_input, "idempotencyKey": "m-1"}})
    assert [e["code"] for e in anonymous["surrenderCersForCompliance"]["errors"]] == ["UNAUTHENTICATED"]
    not_regulator = await api.data("""mutation($input: PublishEtsOffsetScopeInput!) { publishEtsOffsetScope(
        input: $input) { errors { code } } }""", {"input": {"scopeId": drafted["id"], "idempotencyKey": "x"}},
                                   token=holder.token)
    assert [e["code"] for e in not_regulator["publishEtsOffsetScope"]["errors"]] == ["FORBIDDEN"]

    # the public lists: the scope in force and its use, its versions, the surrenders (a company, no person)
    [row] = [e["node"] for e in (await c.run("EtsOffsetScopes", {"first": 10}))["etsOffsetScopes"]["edges"]]
    assert (row["year"], row["surrenderedTonnes"], row["remainingTonnes"], row["scope"]["capTonnes"],
            row["scope"]["supersedesId"]) == (2026, 5, 15, 20, drafted["id"])
    versions = (await c.run("EtsOffsetScopeVersions", {"year": 2026}))["etsOffsetScopeVersions"]
    assert [(v["version"], v["status"]) for v in versions] == [(1, "SUPERSEDED"), (2, "PUBLISHED")]
    [public] = [e["node"] for e in (await c.run("EtsSurrenders", {"year": 2026, "first": 10}))["etsSurrenders"]["edges"]]
    assert (public["id"], public["entityName"], public["entityCode"]) == (first["id"], ENTITY_NAME, ENTITY_CODE)
    assert set(public) == {"id", "year", "tonnes", "serials", "entityName", "entityCode", "scopeId", "surrenderedAt"}
    mine = (await c.run("MyEtsSurrenders", {"first": 10}, token=holder.token))["myEtsSurrenders"]["edges"]
    assert [e["node"]["id"] for e in mine] == [first["id"]]
    assert c.ran >= OFFSET_CONTRACTS, f"not exercised: {sorted(OFFSET_CONTRACTS - c.ran)}"


async def test_scope_use_pages_by_year(services):
    w = await world(services, holders=0)
    for year in (2024, 2025, 2026):
        await scope(services, w, year=year, cap=year - 2000)
    async with services.session_factory() as session:
        first = await offsets.offset_scope_use(session=session, first=2, after=None)
        rest = await offsets.offset_scope_use(session=session, first=2, after=first.end_cursor)
    assert [i.node.year for i in first.items] == [2026, 2025] and first.has_next_page
    assert [(i.node.year, i.node.remaining_tonnes) for i in rest.items] == [(2024, 24)] and not rest.has_next_page


async def test_entity_codes_are_stored_upper_case(services):
    w = await world(services)
    await issue(services, w, 2)
    await scope(services, w)
    code = entity_code("91440300192203821")
    done = await surrender(services, w.owner_id, tonnes=1, entity_code=code.lower())
    assert done.entity_code == code
