"""Fast set-up for CER tests: accounts and a filed project written straight to the database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from core.bulk import driver
from reductions import service as reductions
from reductions.seeding import seed_methodology

# the project and registry front-end contracts, walked by hash in tests/neutrality/test_cer_projects.py
PROJECT_CONTRACTS = {
    "RegisterCerProject", "UpdateCerProject", "PublishCerProject", "DeclareCerProject",
    "MyCerProjects", "ProjectOwnerCerHoldings", "MyCerHoldings", "CerProjectsForReview", "FileCerProject",
    "RejectCerProject", "IssueCers", "CancelCers", "CerAudit", "CerRegistry", "CerProjectDetail", "TraceCerSerial",
    "VerifierApplyForRole", "CommissionVerifier", "MyVerifierCommissions", "SubmitVerificationReport",
    "WithdrawVerifierCommission", "RecordFalseVerificationReport", "UnfreezeCerProject",
}
# the working-day calendar's contracts, walked in tests/neutrality/test_working_day_calendar.py
CALENDAR_CONTRACTS = {"EnterWorkingDaySchedule", "WorkingDayCalendar"}
PROJECT_CONTRACTS |= CALENDAR_CONTRACTS
# the methodology the test projects name: projects name only published methodologies (art. 14)
PV_METHODOLOGY = "SZ-PV-2024"


@dataclass
class Registry:
    owner_id: uuid.UUID
    project_id: uuid.UUID
    project_code: str
    buyers: list[uuid.UUID]


async def accounts(services, n: int, role: str = "organisation", kind: str = "organisation") -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(n)]
    async with services.session_factory() as session:
        async with session.begin():
            conn = await driver(session)
            await conn.execute(
                "INSERT INTO accounts (id, kind, display_name, email, password_hash, created_at)"
                " SELECT id, $2, 'Org ' || left(id::text, 8), 'o-' || id::text || '@example.org', 'x', $3"
                " FROM unnest($1::uuid[]) id", ids, kind, services.clock.now())
            await conn.execute(
                "INSERT INTO account_roles (id, account_id, role, status, created_at)"
                " SELECT gen_random_uuid(), id, $2, 'active', $3 FROM unnest($1::uuid[]) id",
                ids, role, services.clock.now())
    return ids


async def filed_project(services, buyers: int = 2, code: str | None = None) -> Registry:
    [owner] = await accounts(services, 1, role="project_owner")
    project_id = uuid.uuid4()
    now = services.clock.now()
    async with services.session_factory() as session:
        async with session.begin():
            conn = await driver(session)
            code = code or "P" + str(await conn.fetchval("SELECT nextval('cer_project_number_seq')")).zfill(6)
            await conn.execute(
                "INSERT INTO cer_projects (id, code, owner_id, title, methodology_code, location, description,"
                " expected_tonnes_per_year, benefit_sharing, status, pledge_text, pledged_at, created_at, updated_at,"
                " filed_at) VALUES ($1, $2, $3, '光明区分布式光伏', 'SZ-PV', '深圳市光明区', '', 1000, '', 'filed',"
                " 'pledge', $4, $4, $4, $4)", project_id, code, owner, now)
    return Registry(owner_id=owner, project_id=project_id, project_code=code,
                    buyers=await accounts(services, buyers))


@dataclass
class Commissioned:
    owner_id: uuid.UUID
    project_id: uuid.UUID
    project_code: str
    verifier_id: uuid.UUID
    commission_id: uuid.UUID


async def commissioned_project(services, experts_wanted: int = 3) -> Commissioned:
    """A declared project whose verifier the regulator commissioned (art. 17), written straight to the
    database: the verifier's report is awaited."""
    registry = await filed_project(services, buyers=0)
    [verifier] = await accounts(services, 1, role="verifier")
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    commission_id = uuid.uuid4()
    async with services.session_factory() as session:
        async with session.begin():
            conn = await driver(session)
            await conn.execute("UPDATE cer_projects SET status = 'declared', filed_at = NULL WHERE id = $1",
                               registry.project_id)
            await conn.execute(
                "INSERT INTO cer_verifier_commissions (id, project_id, verifier_id, status, commissioned_by,"
                " commissioned_at, experts_wanted, documents) VALUES ($1, $2, $3, 'commissioned', $4, $5, $6, '[]')",
                commission_id, registry.project_id, verifier, regulator_id, services.clock.now(), experts_wanted)
    return Commissioned(owner_id=registry.owner_id, project_id=registry.project_id,
                        project_code=registry.project_code, verifier_id=verifier, commission_id=commission_id)
async def published_methodology(services, code: str = PV_METHODOLOGY) -> str:
    """Publish a (made-up) rooftop-solar methodology, so projects may name it (once per database)."""
    async with services.session_factory() as session:
        async with session.begin():
            if await reductions.is_published_methodology(session=session, clock=services.clock, code=code):
                return code
            await seed_methodology(
                session=session, clock=services.clock, code=code, name="分布式光伏发电 (test)",
                behaviour_domain="renewable_energy", activity_unit="kwh", factor_mg_per_unit=581_000,
                max_quantity_milli=100_000_000_000, effective_from=date(2024, 1, 1), source_reference="test figure")
    return code
