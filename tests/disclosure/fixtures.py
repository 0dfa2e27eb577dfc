"""A world for the disclosure lists (art. 29): rows in every list, next to distinctive private values
(emails, phones, identity numbers and their hashes, password hashes, API keys, session tokens, account
and wallet ids, names of individuals, notes meant for the regulator, drafts), and readers of each list
in its three forms (GraphQL, CSV, HTML)."""

from __future__ import annotations

import csv
import html
import io
import re
import uuid
from datetime import timedelta
from dataclasses import dataclass, field

from sqlalchemy import select, text

from accounts.models import Account, AccountKind, AccountRole, ApiKey, Entrustment, RefreshToken
from core.bulk import driver
from neutrality.cers import projects as cer_projects
from neutrality.cers import offsets, verification
from reductions import filing
from reductions import service as reductions
from reductions.models import Methodology
from reviews import experts
from reviews.models import Expert
from tests.conftest import PASSWORD, Actor, approved, organisation, person, regulator, sign_in
from tests.neutrality.fixtures import accounts, filed_project
from tests.reductions.filing_fixtures import complete_fields, seat_and_opine
from tests.reviews.fixtures import in_transaction
from supervision import violations
from tests.scenarios.fixtures import complete_fields as scenario_fields, granted

# the front-end contracts tests/disclosure/test_disclosure_forms.py walks by hash
DISCLOSURE_CONTRACTS = {"DisclosureLists", "DisclosureRows"}

ROWS = """
query($name: DisclosureListName!, $first: Int, $after: String) {
  disclosureRows(name: $name, first: $first, after: $after) {
    edges { cursor node { cells { column text items } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
NATIONAL_ID = "44030419900307123X"
PRIVATE_NAME = "隐私测试张三丰"  # a person who is no expert
OWNER_NAME = "个人业主李四光"  # a person who owns a project (art. 19): listed as "个人 Individual"
ESCAPED_ORG = "绿色<b>&运营</b>有限公司"
DRAFT_TITLE = "草稿项目PRIVATE-DRAFT"
EXTERNAL_USER = "ext-user-PRIVATE-7781"
NOTE = "营业执照号码 PRIVATE-NOTE-91440300"
CONFLICT_NOTE = "配偶任职 PRIVATE-CONFLICT"
SUSPENDED_EXPERT = "停用专家PRIVATE王五"
SUSPENSION_REASON = "PRIVATE-SUSPENSION 利益冲突调查"
FINDING = "核查报告虚报2025年减排量 (false tonnes)"
SCENARIO_ADDRESS = scenario_fields().address  # the operating body's address: on its application only
VIOLATION_FINDING = "PRIVATE-FINDING 虚构兑换记录"  # the regulator's record: the public list shows the sanction only
REJECTION = "公示期内收到实名异议，基准线不成立 (baseline not shown)"


@dataclass
class World:
    regulator: Actor
    operator: Actor
    verifier: Actor
    consumer: Actor
    filed_code: str
    rejected_code: str
    owner_project_code: str
    # values that must appear somewhere (the lists are not empty by accident)
    expected: dict[str, list[str]] = field(default_factory=dict)
    # values from the requests that the database keeps only hashed, or not at all
    secrets: set[str] = field(default_factory=set)


async def build_world(api) -> World:
    services = api.services
    reg = await regulator(api)
    consumer = await person(api, PRIVATE_NAME, phone="13912345678", nationalId=NATIONAL_ID)
    operator = await approved(api, "APP_OPERATOR", ESCAPED_ORG, reg=reg)
    merchant = await approved(api, "MERCHANT", "绿意咖啡连锁有限公司", reg=reg)
    verifier = await approved(api, "VERIFIER", "深圳核查认证中心", reg=reg)
    await organisation(api, "只注册未批准的机构", apply_for=["MERCHANT"])  # pending: not listed
    key = (await api.data('mutation { createApiKey(input: {name: "r", scopes: [REPORT_BEHAVIOUR, '
                          'INVITE_ENTRUSTMENTS]}) { secret } }', token=operator.token))["createApiKey"]["secret"]
    code = (await api.data('mutation($u: String!) { createEntrustmentInvitation(input: {externalUserId: $u}) '
                           '{ invitation { code } } }', {"u": EXTERNAL_USER}, api_key=key)
            )["createEntrustmentInvitation"]["invitation"]["code"]
    await api.data('mutation($c: String!) { acceptEntrustment(input: {code: $c, agreementVersion: "v1"}) '
                   '{ errors { code } } }', {"c": code}, token=consumer.token)
    async with services.session_factory() as session:
        async with session.begin():
            await session.execute(text("UPDATE account_roles SET application_note = :n WHERE role <> 'regulator'"),
                                  {"n": NOTE})
    regulator_id, operator_id, verifier_id = (uuid.UUID(a.account_id) for a in (reg, operator, verifier))

    # experts: two active (public), one suspended (its name and the reason are not), a declared conflict
    people = await accounts(services, 3, role="individual", kind="person")
    added = []
    for account_id, name in zip(people, ("林专家", "陈专家", SUSPENDED_EXPERT)):
        added.append(await in_transaction(services, experts.add_expert, regulator_id=regulator_id,
                                          account_id=account_id, name=name, affiliation="深圳大学",
                                          fields=["methodology", "scenario"]))
    await in_transaction(services, experts.set_status, regulator_id=regulator_id, expert_id=added[2].id,
                         active=False, reason=SUSPENSION_REASON)
    await in_transaction(services, experts.declare_conflict, declared_by=regulator_id, expert_id=added[0].id,
                         organisation_id=operator_id, note=CONFLICT_NOTE)

    # methodologies: one filed from an application, one retired
    application = await in_transaction(services, filing.apply, applicant_id=operator_id, fields=complete_fields())
    await seat_and_opine(services, regulator_id, application)
    await in_transaction(services, filing.file_application, regulator_id=regulator_id,
                         application_id=application.id, reason="方法学合理，数据来源可靠")
    async with services.session_factory() as session:
        bus = (await session.execute(select(Methodology).where(Methodology.code == "SZ-EBUS"))).scalar_one()
    await in_transaction(services, reductions.retire_methodology, methodology_id=bus.id)

    # projects: filed with an issuance from the verifier's report, then flagged and frozen; rejected;
    # owned by a person; a draft (private)
    filed = await filed_project(services, buyers=0)
    report_id = uuid.uuid4()
    async with services.session_factory() as session:
        async with session.begin():
            conn = await driver(session)
            await conn.execute(
                "INSERT INTO cer_verifier_reports (id, project_id, verifier_id, verifier_name, report_reference,"
                " vintage, verified_tonnes, issued_tonnes, submitted_at) VALUES ($1, $2, $3, '深圳核查认证中心',"
                " 'sha256:ab12', 2025, 20, 0, $4)", report_id, filed.project_id, verifier_id, services.clock.now())
    await in_transaction(services, cer_projects.issue_cers, regulator_id=regulator_id, verifier_report_id=report_id,
                         tonnes=13)
    await in_transaction(services, verification.record_false_report, regulator_id=regulator_id,
                         verifier_id=verifier_id, commission_id=None, reason=FINDING, freeze_unsold=True)
    rejected = await filed_project(services, buyers=0)
    owned = await filed_project(services, buyers=0)
    draft = await filed_project(services, buyers=0)
    async with services.session_factory() as session:
        async with session.begin():
            conn = await driver(session)
            await conn.execute("UPDATE cer_projects SET status = 'declared', filed_at = NULL WHERE id = $1",
                               rejected.project_id)
            await conn.execute("UPDATE cer_projects SET status = 'notice', filed_at = NULL,"
                               " notice_started_at = $2 WHERE id = $1", owned.project_id, services.clock.now())
            await conn.execute("UPDATE accounts SET kind = 'person', display_name = $2 WHERE id = $1",
                               owned.owner_id, OWNER_NAME)
            await conn.execute("UPDATE cer_projects SET status = 'draft', filed_at = NULL, title = $2"
                               " WHERE id = $1", draft.project_id, DRAFT_TITLE)
    await in_transaction(services, cer_projects.reject_project, regulator_id=regulator_id,
                         project_id=rejected.project_id, reason=REJECTION)
    # the yearly ETS offset scope (art. 18): a draft (private) then published
    scope = await in_transaction(services, offsets.draft_scope, regulator_id=regulator_id, year=2026,
                                 vintages=[2025], project_kinds=["renewable_energy"], methodology_codes=[], cap_tonnes=4321,
                                 note=NOTE)
    await in_transaction(services, offsets.publish_scope, regulator_id=regulator_id, scope_id=scope.id)
    # a merchant's suspension in force (art. 31): public, but not the regulator's finding
    await in_transaction(services, violations.record_violation, regulator_id=regulator_id,
                         organisation_id=uuid.UUID(merchant.account_id), role="merchant", article=24,
                         finding=VIOLATION_FINDING, documents=[violations.Document("检查记录.pdf", "ef" * 32, 2048)],
                         sanction="suspension",
                         suspended_until=services.clock.now() + timedelta(days=30))
    # a scenario granted its mark (art. 25-27); its address and documents stay private
    _, mark, _ = await granted(services, applicant_id=operator_id,
                               fields=scenario_fields(methodology_codes=["SZ-METRO"]))
    consumer = await sign_in(api, consumer.login)  # a session token of a person, to look for too
    return World(
        regulator=reg, operator=operator, verifier=verifier, consumer=consumer, filed_code=filed.project_code,
        rejected_code=rejected.project_code, owner_project_code=owned.project_code,
        expected={
            "experts": ["林专家", "陈专家"],
            "methodologies": ["SZ-BIKE", "SZ-EBUS", "retired", "方法学合理，数据来源可靠", ESCAPED_ORG],
            "cer-projects": [filed.project_code, rejected.project_code, owned.project_code, REJECTION, FINDING,
                             f"SZCER-{filed.project_code}-2025-000000001-000000013", "个人 Individual"],
            "approved-organisations": [ESCAPED_ORG, "绿意咖啡连锁有限公司", "深圳核查认证中心", "正常 in good standing",
                                       "暂停至 suspended until"],
            "sanctions": ["深圳核查认证中心", FINDING, filed.project_code, "绿意咖啡连锁有限公司", "第24条 art. 24",
                          "暂停至 suspended until"],
            "ets-offset-scopes": ["2026", "2025", "4321"],
            "scenarios": [mark.number, "深圳湾万象城 Shenzhen Bay MixC", "SZ-METRO"],
        },
        secrets={key, key.split("_", 2)[-1], operator.token, operator.refresh_token, consumer.token,
                 consumer.refresh_token, NATIONAL_ID, PASSWORD, code})


async def private_values(services, world: World) -> set[str]:
    """Every private value in the database of the world (and the secrets the requests carried)."""
    found: set[str] = set(world.secrets) | {PRIVATE_NAME, OWNER_NAME, DRAFT_TITLE, EXTERNAL_USER, NOTE, CONFLICT_NOTE,
                                            SUSPENDED_EXPERT, SUSPENSION_REASON, "13912345678", VIOLATION_FINDING,
                                            SCENARIO_ADDRESS}
    async with services.session_factory() as session:
        public_experts = set(await session.scalars(select(Expert.name).where(Expert.status == "active")))
        for account in await session.scalars(select(Account)):
            found |= {str(account.id), account.id.hex, account.email, account.phone, account.national_id_hash,
                      account.password_hash}
            if account.kind == AccountKind.PERSON.value and account.display_name not in public_experts:
                found.add(account.display_name)
        for role in await session.scalars(select(AccountRole)):
            found |= {role.application_note, role.decision_reason if role.status != "active" else None}
        for api_key in await session.scalars(select(ApiKey)):
            found |= {api_key.secret_hash, str(api_key.id)}
        found |= {t.token_hash for t in await session.scalars(select(RefreshToken))}
        found |= {e.external_user_id for e in await session.scalars(select(Entrustment))}
        found |= {str(w) for w in await session.scalars(text("SELECT account_id FROM wallets UNION ALL SELECT id FROM point_lots"))}
        found |= set(await session.scalars(text("SELECT note FROM expert_conflicts")))
        found |= set(await session.scalars(text("SELECT code_hash FROM entrustment_invitations")))
    return {v for v in found if v and len(v) >= 6}


# --- the three forms of a list ----------------------------------------------------------------------


async def graphql_pages(api, name: str, first: int = 100) -> list[dict]:
    """Every page of the list through the public GraphQL query (no sign-in), as answered."""
    pages, after = [], None
    for _ in range(1000):
        body = await api.gql(ROWS, {"name": name.upper().replace("-", "_"), "first": first, "after": after})
        assert "errors" not in body, body
        page = body["data"]["disclosureRows"]
        pages.append(page)
        if not page["pageInfo"]["hasNextPage"]:
            return pages
        after = page["pageInfo"]["endCursor"]
    raise AssertionError("endless")


async def graphql_rows(api, name: str, first: int = 100) -> list[list[str]]:
    return [[c["text"] for c in edge["node"]["cells"]]
            for page in await graphql_pages(api, name, first) for edge in page["edges"]]


async def csv_text(api, name: str) -> str:
    response = await api.client.get(f"/disclosure/{name}.csv")
    assert response.status_code == 200, response.text
    return response.content.decode("utf-8")


def csv_rows(content: str) -> list[list[str]]:
    """Parsed back with the csv module, header and BOM off; a leading ' of a formula-like cell off."""
    assert content.startswith("\ufeff")
    parsed = list(csv.reader(io.StringIO(content[1:], newline="")))
    return [[c[1:] if c.startswith("'") and c[1:2] in ("=", "+", "-", "@") else c for c in row] for row in parsed[1:]]


NEXT = re.compile(r'<a rel="next" href="([^"]+)"')
CELL = re.compile(r"<td data-label=\"[^\"]*\">(.*?)</td>", re.S)
ROW = re.compile(r"<tr>(<td data-label=.*?)</tr>", re.S)


def html_cell_text(cell: str) -> str:
    items = re.findall(r"<li>(.*?)</li>", cell, re.S) if cell.startswith("<ul>") else ([cell] if cell else [])
    return "; ".join(html.unescape(i) for i in items)


async def html_pages(api, name: str, first: int | None = None) -> list[str]:
    pages, url = [], f"/disclosure/{name}" + (f"?first={first}" if first else "")
    for _ in range(1000):
        response = await api.client.get(url)
        assert response.status_code == 200, response.text
        pages.append(response.text)
        found = NEXT.search(response.text)
        if found is None:
            return pages
        url = html.unescape(found.group(1))
    raise AssertionError("endless")


def html_rows(pages: list[str]) -> list[list[str]]:
    return [[html_cell_text(c) for c in CELL.findall(row)] for page in pages for row in ROW.findall(page)]


async def every_form(api, name: str) -> str:
    """Everything a reader of the list gets, in the three forms, as one text (HTML also unescaped)."""
    pages = await html_pages(api, name, first=100)
    return "\n".join([str(await graphql_pages(api, name)), await csv_text(api, name), *pages,
                      *[html.unescape(p) for p in pages]])

