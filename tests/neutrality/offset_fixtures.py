"""Set-up for the ETS offset tests (art. 18): a filed project of a published methodology with issued tonnes
spread over holders, and a published scope, through the domain functions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from core.bulk import driver
from neutrality.cers import blocks, offsets, projects
from neutrality.cers.models import BlockState, MoveKind, VerifierReport
from tests.neutrality.fixtures import PV_METHODOLOGY, accounts, filed_project, published_methodology

# the ETS offset front-end contracts, walked by hash in tests/neutrality/test_ets_offsets.py
OFFSET_CONTRACTS = {
    "DraftEtsOffsetScope", "PublishEtsOffsetScope", "EtsOffsetScopeDrafts", "SurrenderCersForCompliance",
    "MyEtsSurrenders", "EtsOffsetScopes", "EtsOffsetScopeVersions", "EtsSurrenders",
}
# GB 32100-2015's own example of a unified social credit code (its check character is 3)
ENTITY_CODE = "91350100M000100Y43"
ENTITY_NAME = "深圳能源集团股份有限公司"


def entity_code(body: str) -> str:
    """A valid unified social credit code from its first 17 characters."""
    return body + offsets.uscc_check_char(body)


@dataclass
class World:
    regulator_id: uuid.UUID
    owner_id: uuid.UUID
    project_id: uuid.UUID
    project_code: str
    holders: list[uuid.UUID]


async def in_tx(services, fn, **kwargs):
    async with services.session_factory() as session, session.begin():
        return await fn(session=session, clock=services.clock, **kwargs)


async def issue(services, world: World, tonnes: int, vintage: int = 2025, project_id=None) -> None:
    """Issue `tonnes` of a vintage to the project's owner, through a verifier's report (so the audit's
    issuance records agree)."""
    async with services.session_factory() as session, session.begin():
        report = VerifierReport(project_id=project_id or world.project_id, verifier_name="核查", report_reference="R",
                                vintage=vintage, verified_tonnes=tonnes, issued_tonnes=0,
                                submitted_at=services.clock.now())
        session.add(report)
        await session.flush()
        await projects.issue_cers(session=session, clock=services.clock, regulator_id=world.regulator_id,
                                  verifier_report_id=report.id, tonnes=tonnes)


async def deliver(services, world: World, to_holder, tonnes: int, vintage: int = 2025, project_id=None) -> None:
    """Move held tonnes from the owner to another holder (as a settled purchase does)."""
    ref = uuid.uuid4()
    await in_tx(services, blocks.move, kind=MoveKind.DELIVER, holder_id=world.owner_id, to_holder_id=to_holder,
                from_state=BlockState.HELD, to_state=BlockState.HELD, quantity=tonnes, reference_kind="order",
                reference_id=ref, project_id=project_id or world.project_id, vintage=vintage)


async def world(services, holders: int = 2, methodology: str = PV_METHODOLOGY) -> World:
    """A filed project naming a published methodology (kind renewable_energy), no tonnes yet."""
    await published_methodology(services)
    registry = await filed_project(services, buyers=holders)
    async with services.session_factory() as session, session.begin():
        conn = await driver(session)
        await conn.execute("UPDATE cer_projects SET methodology_code = $2 WHERE id = $1", registry.project_id,
                           methodology)
    [regulator] = await accounts(services, 1, role="regulator", kind="authority")
    return World(regulator_id=regulator, owner_id=registry.owner_id, project_id=registry.project_id,
                 project_code=registry.project_code, holders=registry.buyers)


async def scope(services, world: World, year: int = 2026, cap: int = 1000, vintages=(2025,),
                kinds=("renewable_energy",), codes=(), publish: bool = True):
    row = await in_tx(services, offsets.draft_scope, regulator_id=world.regulator_id, year=year,
                      vintages=list(vintages), project_kinds=list(kinds), methodology_codes=list(codes),
                      cap_tonnes=cap)
    if publish:
        row = await in_tx(services, offsets.publish_scope, regulator_id=world.regulator_id, scope_id=row.id)
    return row


async def surrender(services, holder_id, year: int = 2026, **kw):
    kw.setdefault("entity_name", ENTITY_NAME)
    kw.setdefault("entity_code", ENTITY_CODE)
    return await in_tx(services, offsets.surrender_cers, holder_id=holder_id,
                       request=offsets.SurrenderRequest(year=year, **kw))
