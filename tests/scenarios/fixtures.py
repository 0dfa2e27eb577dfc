"""Set-up for scenario tests (issue 11, art. 25-28): complete applications, a review taken to its
opinions, a granted mark."""

from __future__ import annotations

import base64
import hashlib

from sqlalchemy import select

from core.documents import Attachment
from reviews import service as reviews
from reviews.models import Expert, Opinion
from scenarios import service
from scenarios.models import District, ScenarioKind
from tests.neutrality.fixtures import accounts
from tests.reviews.fixtures import in_transaction, library

# the front-end contracts tests/scenarios/test_scenarios_api.py walks
SCENARIO_CONTRACTS = {
    "ApplyForScenario", "MyScenarioApplications", "ScenarioApplication", "ScenarioDataPledge", "ScenarioApplications",
    "GrantScenarioMark", "RefuseScenarioApplication", "SuspendScenarioMark", "ReinstateScenarioMark",
    "WithdrawScenarioMark", "Scenarios", "Scenario", "ScenarioApplicationForReview", "WalletScenarioBreakdown",
}

PLAN = "深圳湾万象城碳普惠场景创建方案 (creation plan)".encode()
SITE = "场地平面图与数据采集点位 (site plan and data points)".encode()


def complete_fields(**overrides) -> service.ApplicationFields:
    fields = dict(
        name="深圳湾万象城 Shenzhen Bay MixC", kind=ScenarioKind.MALL, address="南山区科苑南路2888号",
        district=District.NANSHAN, methodology_codes=["SZ-METRO", "sz-ebus"],
        pledge_version=service.PLEDGE_VERSION, pledge_sha256=service.PLEDGE_SHA256,
        documents=[service.ScenarioAttachment(Attachment.of("plan.pdf", "application/pdf", PLAN),
                                              declared_sha256=hashlib.sha256(PLAN).hexdigest()),
                   service.ScenarioAttachment(Attachment.of("site.pdf", "application/pdf", SITE))])
    fields.update(overrides)
    return service.ApplicationFields(**fields)


def document_input(name: str, content: bytes, sha256: str | None = None) -> dict:
    value = {"fileName": name, "mediaType": "application/pdf", "contentBase64": base64.b64encode(content).decode()}
    if sha256:
        value["sha256"] = sha256
    return value


def application_input(key: str, **overrides) -> dict:
    values = {"idempotencyKey": key, "name": "深圳湾万象城", "kind": "MALL", "address": "南山区科苑南路2888号",
              "district": "NANSHAN", "methodologyCodes": ["SZ-METRO"],
              "pledge": {"version": service.PLEDGE_VERSION, "sha256": service.PLEDGE_SHA256},
              "documents": [document_input("plan.pdf", PLAN, hashlib.sha256(PLAN).hexdigest())]}
    values.update(overrides)
    return values


async def apply(services, applicant_id, fields=None):
    return await in_transaction(services, service.apply, applicant_id=applicant_id, fields=fields or complete_fields())


async def opinions_given(services, regulator_id, scenario, *, opinions: int | None = None, experts: int = 3) -> None:
    """`experts` scenario experts in the library, three drawn into the review; the first `opinions`
    of them (all by default) pass it."""
    await library(services, experts, fields=("scenario",))
    await in_transaction(services, reviews.draw_experts, regulator_id=regulator_id, review_id=scenario.review_id)
    async with services.session_factory() as session:
        seats = (await reviews.seats_of(session=session, review_ids=[scenario.review_id]))[scenario.review_id]
        owners = dict((await session.execute(
            select(Expert.id, Expert.account_id).where(Expert.id.in_([s.expert_id for s in seats])))).all())
    for seat in seats[:len(seats) if opinions is None else opinions]:
        await in_transaction(services, reviews.submit_opinion, account_id=owners[seat.expert_id],
                             review_id=scenario.review_id, opinion=Opinion.PASS,
                             text="数据采集点位合理，隐私保护措施到位 (sound data points and privacy measures)")


async def granted(services, applicant_id=None, fields=None, validity_years: int = 3):
    """An application by a fresh operator (or `applicant_id`), evaluated and granted; (scenario, mark, regulator)."""
    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    if applicant_id is None:
        [applicant_id] = await accounts(services, 1, role="app_operator")
    scenario = await apply(services, applicant_id, fields)
    await opinions_given(services, regulator_id, scenario)
    scenario, mark = await in_transaction(services, service.grant, regulator_id=regulator_id, scenario_id=scenario.id,
                                          reason="专家一致通过", validity_years=validity_years)
    return scenario, mark, regulator_id
