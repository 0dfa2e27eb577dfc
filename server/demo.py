"""`tanpuhui demo`: a small, realistic demo data set for trying the API by hand.

DEMO DATA, NOT REAL PEOPLE OR ORGANISATIONS. Every demo account has an email at
demo.tanpuhui.example (a reserved domain that cannot receive mail) and the same published
password, so the loader refuses to run when TANPUHUI_ENV=production.

The set goes through the same domain functions the API uses: a regulator, an app operator the
regulator approved (with an API key for its reporting system), an approved merchant (a coffee
chain), an organisation that wants to go carbon neutral, and two individuals, one of whom has
entrusted the operator (委托协议), which knows her as its user "u-381"; the operator has applied to
file a shared-bicycle methodology, under the experts' review (art. 11-13). A project owner's rooftop
solar project is verified by a commissioned verifier (with three drawn experts' opinions), filed
with CERs issued, some of them on offer, and the owner's application for neutrality of its own
event: 13 t held for review, approved by the platform's neutrality reviewer (a person the regulator
granted the role, art. 19), retired, with its signed carbon-neutral certificate. The regulator has
published this year's ETS offset scope (art. 18) and the owner surrendered 100 t under it. The
operator's metro station is a scenario (art. 25-27) granted its mark after three drawn experts' opinions.
The regulator has inspected the platform (art. 30), with a follow-up open.

Running it again changes nothing: it finds the demo accounts by email and prints their logins.
The API key is stored only as a keyed hash, so it can be shown only the first time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from accounts import service
from accounts.models import Account, AccountRole, ApiKeyScope, Role
from accounts.principal import Principal
from accounts.security import PasswordHashing
from core.clock import MovableClock, SystemClock, business_date
from scenarios.marks import page_url
from server.db import create_engine, create_session_factory

DEMO_DOMAIN = "demo.tanpuhui.example"
DEMO_PASSWORD = "tanpuhui-demo-2026"  # published on purpose: demo data only
AGREEMENT_VERSION = "demo-2026-01"
EXTERNAL_USER_ID = "u-381"


class DemoRefused(Exception):
    """The demo set must not be loaded here."""


@dataclass(frozen=True)
class DemoAccount:
    key: str
    label: str  # what the account is for, as printed
    email_user: str
    display_name: str

    @property
    def email(self) -> str:
        return f"{self.email_user}@{DEMO_DOMAIN}"


REGULATOR = DemoAccount("regulator", "regulator", "regulator", "深圳市生态环境局 (demo)")
OPERATOR = DemoAccount("operator", "app operator", "operator", "低碳星球运营有限公司 Low Carbon Planet (demo)")
MERCHANT = DemoAccount("merchant", "merchant", "coffee", "绿意咖啡 Lüyi Coffee (demo)")
ORGANISATION = DemoAccount("organisation", "organisation", "neutral", "深圳湾零碳科技有限公司 (demo)")
PROJECT_OWNER = DemoAccount("project_owner", "project owner", "solar", "光明绿能科技有限公司 (demo)")
ENTRUSTING_PERSON = DemoAccount("xiaomei", "individual", "chen.xiaomei", "陈晓梅")
PERSON = DemoAccount("jianguo", "individual", "li.jianguo", "李建国")
VERIFIER = DemoAccount("verifier", "verifier", "verifier", "深圳市低碳核查中心 (demo)")
EXPERTS = tuple(DemoAccount(f"expert{i}", "expert", f"expert{i}", name) for i, name in
                enumerate(("王慧 (demo)", "刘振华 (demo)", "周敏 (demo)"), start=1))
REVIEWER = DemoAccount("reviewer", "neutrality reviewer", "reviewer", "周审核 (demo)")
ACCOUNTS = (REGULATOR, OPERATOR, MERCHANT, ORGANISATION, PROJECT_OWNER, ENTRUSTING_PERSON, PERSON, VERIFIER,
            *EXPERTS, REVIEWER)


def refuse_in_production(settings) -> None:
    if settings.environment == "production":
        raise DemoRefused("the demo data set (with its published password) is never loaded when "
                          "TANPUHUI_ENV=production")


def _login_lines() -> list[str]:
    width = max(len(a.label) for a in ACCOUNTS)
    lines = [f"  {a.label:<{width}}  {a.email:<36}  {a.display_name}" for a in ACCOUNTS]
    lines.append(f"  password for every demo login: {DEMO_PASSWORD}")
    return lines


def _banner() -> list[str]:
    return [
        "DEMO DATA: made-up accounts for trying the API, not real people or organisations.",
        "Sign in with the `login` mutation, then send `Authorization: Bearer <accessToken>`.",
    ]


async def load_demo(database_url: str, settings, *, hashing: PasswordHashing | None = None,
                    clock=None) -> list[str]:
    """Create the demo set if it is not there yet; return the lines to print."""
    refuse_in_production(settings)
    hashing = hashing or PasswordHashing()
    clock = clock or SystemClock()
    engine = create_engine(database_url, 2)
    try:
        async with create_session_factory(engine)() as session:
            async with session.begin():
                existing = set((await session.execute(
                    select(Account.email).where(Account.email.in_([a.email for a in ACCOUNTS]))
                )).scalars())
                if existing:
                    missing = [a.email for a in ACCOUNTS if a.email not in existing]
                    lines = _banner() + ["The demo data set is already loaded. Its logins:"] + _login_lines()
                    if missing:
                        lines.append(f"  (not found, deleted since? {', '.join(missing)})")
                    lines += [
                        f"The operator's API key was shown when the demo was first loaded and cannot be "
                        f"shown again (only its hash is stored). For a new one, sign in as {OPERATOR.email} "
                        "and call the createApiKey mutation.",
                    ]
                    return lines
                api_key, regulator_id, reviewer_id = await _create(session, clock, hashing, settings)
                application = await _methodology_application(session, clock)
                project = await _cer_project(session, clock, hashing, settings, regulator_id, reviewer_id)
                mark = await _scenario(session, clock, regulator_id)
                inspection = await _inspection(session, clock, regulator_id)
    finally:
        await engine.dispose()
    return _banner() + ["Loaded the demo data set. Logins:"] + _login_lines() + [
        f"App operator API key (shown this once; send it as `X-API-Key: <key>`): {api_key}",
        f"{ENTRUSTING_PERSON.display_name} has entrusted {OPERATOR.display_name}, which knows her as "
        f"its user \"{EXTERNAL_USER_ID}\".",
        f"{OPERATOR.display_name} applied to file methodology {application.code} (art. 11); it is under "
        f"the experts' review {application.review_id}, for the regulator to draw.",
        f"CER project {project.code} is filed with {project.issued:,} t of vintage {project.vintage} issued; "
        f"{project.offered:,} t are on offer in the CER market.",
        f"Carbon-neutral certificate {project.certificate_number}: verify at {project.verification_url} "
        f"(PDF: {project.pdf_url})",
        f"Scenario mark {mark.number} (art. 27), granted to {OPERATOR.display_name}'s metro station: "
        f"{page_url(settings.public_base_url, mark.number)}; report items may name it as scenarioMark.",
        f"The regulator inspected the platform (art. 30), inspection {inspection.id}, with one follow-up open; "
        "every act above is in the hash-chained audit log (auditLog, `tanpuhui audit-verify`).",
        f"Public lists (art. 29): {settings.public_base_url.rstrip('/')}/disclosure",
    ]


async def _inspection(session, clock, regulator_id):
    """The regulator's inspection of the platform (art. 30), with a follow-up due in a month."""
    from supervision import inspections

    today = business_date(clock.now())
    inspection = await inspections.record_inspection(
        session=session, clock=clock, regulator_id=regulator_id, organisation_id=None, inspected_on=today,
        scope="碳普惠统一管理平台年度检查：数据安全与核证减排量登记 (demo)",
        findings="登记簿与签发记录一致；隐私政策版本记录需补充 (demo)", documents=[])
    await inspections.add_follow_up(session=session, clock=clock, regulator_id=regulator_id,
                                    inspection_id=inspection.id, action="补充隐私政策版本记录 (demo)",
                                    due_on=today + timedelta(days=30))
    return inspection


async def _scenario(session, clock, regulator_id):
    """The operator's scenario (art. 25-27), a metro station where rides are recorded: applied for with the
    art. 28 pledge, evaluated by three drawn scenario experts, granted its mark for three years."""
    from core.documents import Attachment
    from reviews import service as reviews
    from reviews.models import Expert, Opinion
    from scenarios import service as scenarios
    from scenarios.models import District, ScenarioKind

    operator_id = (await session.execute(select(Account.id).where(Account.email == OPERATOR.email))).scalar_one()
    plan = Attachment.of("场景创建方案 (demo).txt", "text/plain; charset=utf-8",
                         "车公庙地铁站碳普惠场景：闸机记录乘车里程 (demo)".encode())
    scenario = await scenarios.apply(session=session, clock=clock, applicant_id=operator_id,
                                     fields=scenarios.ApplicationFields(
                                         name="车公庙地铁站 Chegongmiao metro station (demo)",
                                         kind=ScenarioKind.METRO_LINE, address="福田区深南大道车公庙站 (demo)",
                                         district=District.FUTIAN, methodology_codes=["SZ-METRO", "SZ-EBUS"],
                                         pledge_version=scenarios.PLEDGE_VERSION,
                                         pledge_sha256=scenarios.PLEDGE_SHA256,
                                         documents=[scenarios.ScenarioAttachment(plan)]))
    await reviews.draw_experts(session=session, clock=clock, regulator_id=regulator_id, review_id=scenario.review_id)
    for seat in (await reviews.seats_of(session=session, review_ids=[scenario.review_id]))[scenario.review_id]:
        expert = await session.get(Expert, seat.expert_id)
        await reviews.submit_opinion(session=session, clock=clock, account_id=expert.account_id,
                                     review_id=scenario.review_id, opinion=Opinion.PASS,
                                     text="数据采集与保护措施合理 (demo)")
    _, mark = await scenarios.grant(session=session, clock=clock, regulator_id=regulator_id, scenario_id=scenario.id,
                                    reason="三位专家意见均为通过，授予碳普惠场景标识 (demo)")
    return mark


async def _create(session, clock, hashing: PasswordHashing, settings):
    """The accounts in the caller's transaction; returns the operator's API key, the regulator's id and the
    neutrality reviewer's id."""
    regulator = await service.create_regulator(session=session, clock=clock, hashing=hashing,
                                               email=REGULATOR.email, password=DEMO_PASSWORD,
                                               display_name=REGULATOR.display_name)

    async def organisation(account: DemoAccount, roles: list[str], note: str | None) -> Account:
        return await service.sign_up(session=session, clock=clock, hashing=hashing,
                                     personal_data_key=settings.personal_data_key, kind="organisation",
                                     display_name=account.display_name, email=account.email,
                                     password=DEMO_PASSWORD, apply_for=roles, application_note=note)

    async def approve(account: Account, role: str) -> None:
        application = (await session.execute(
            select(AccountRole).where(AccountRole.account_id == account.id, AccountRole.role == role)
        )).scalar_one()
        await service.decide_role_application(session=session, clock=clock, regulator_id=regulator.id,
                                              application_id=application.id, approve=True)

    operator = await organisation(OPERATOR, [Role.APP_OPERATOR.value],
                                  "Runs a carbon-inclusion app: metro, bus and cycling trips, "
                                  "household electricity savings (demo).")
    await approve(operator, Role.APP_OPERATOR.value)
    merchant = await organisation(MERCHANT, [Role.MERCHANT.value],
                                  "42 coffee shops in Shenzhen; offers drinks for carbon points (demo).")
    await approve(merchant, Role.MERCHANT.value)
    await organisation(ORGANISATION, [], None)  # buys CERs to go carbon neutral; no role to apply for

    operator_roles = await service.active_roles(session=session, account_id=operator.id)
    _, api_key = await service.create_api_key(
        session=session, clock=clock, secret=settings.secret_key,
        principal=Principal(account_id=operator.id, kind=operator.kind, roles=operator_roles, via="password"),
        name="demo reporting system", scopes=[ApiKeyScope.REPORT_BEHAVIOUR.value, ApiKeyScope.INVITE_ENTRUSTMENTS.value])

    people = {}
    for account in (ENTRUSTING_PERSON, PERSON, REVIEWER):
        people[account.key] = await service.sign_up(
            session=session, clock=clock, hashing=hashing, personal_data_key=settings.personal_data_key,
            kind="person", display_name=account.display_name, email=account.email, password=DEMO_PASSWORD)

    _, code = await service.create_entrustment_invitation(session=session, clock=clock, secret=settings.secret_key,
                                                          operator_id=operator.id,
                                                          external_user_id=EXTERNAL_USER_ID)
    await service.accept_entrustment(session=session, clock=clock, secret=settings.secret_key,
                                     individual_id=people[ENTRUSTING_PERSON.key].id, code=code,
                                     agreement_version=AGREEMENT_VERSION)
    reviewer = people[REVIEWER.key]
    await service.grant_role(session=session, clock=clock, regulator_id=regulator.id, account_id=reviewer.id,
                             role=Role.NEUTRALITY_REVIEWER.value, note="平台碳中和申请审核岗 (demo)")
    return api_key, regulator.id, reviewer.id


async def _methodology_application(session, clock):
    """The operator's application to file a shared-bicycle methodology (art. 11-13): complete, so
    a review of drawn methodology experts is open on it."""
    from reductions import filing
    from reductions.models import CalculationKind

    operator_id = (await session.execute(select(Account.id).where(Account.email == OPERATOR.email))).scalar_one()

    def document(name: str, text: str) -> filing.Attachment:
        return filing.Attachment.of(name, "text/plain; charset=utf-8", text.encode())

    return await filing.apply(session=session, clock=clock, applicant_id=operator_id, fields=filing.ApplicationFields(
        code="SZ-BIKE-DEMO", name="共享单车骑行碳普惠方法学 Shared-bicycle riding (demo)", behaviour_domain="cycling",
        activity_unit="person_km", calculation=CalculationKind.FACTOR_PER_UNIT, factor_mg_per_unit=64_000,
        max_quantity="60",
        application_form=document("备案申请表.txt", "申请单位：低碳星球运营有限公司 (demo)\n方法学：共享单车骑行"),
        methodology_text=document("方法学文本.txt", "减排量 = 骑行里程 (person-km) × 64 gCO2e (demo figure)"),
        drafting_notes=document("编制说明.txt", "基准情景：同等里程的燃油小汽车出行 (demo)")))


@dataclass(frozen=True)
class DemoProject:
    code: str
    vintage: int
    issued: int
    offered: int
    certificate_number: str
    verification_url: str
    pdf_url: str


async def _verified(session, clock: MovableClock, hashing: PasswordHashing, settings, regulator_id, project,
                    vintage: int):
    """Independent verification (art. 17): the regulator approves and commissions a verifier, which
    reports; three experts of the library are drawn and give their opinions. Returns the report."""
    from core.documents import Document
    from neutrality.cers import verification
    from neutrality.cers.models import VerifierReport
    from reviews import experts, service as reviews
    from reviews.models import Opinion

    verifier = await service.sign_up(session=session, clock=clock, hashing=hashing,
                                     personal_data_key=settings.personal_data_key, kind="organisation",
                                     display_name=VERIFIER.display_name, email=VERIFIER.email,
                                     password=DEMO_PASSWORD, apply_for=[Role.VERIFIER.value],
                                     application_note="CNAS-accredited verification body (demo).")
    application = (await session.execute(select(AccountRole).where(
        AccountRole.account_id == verifier.id, AccountRole.role == Role.VERIFIER.value))).scalar_one()
    await service.decide_role_application(session=session, clock=clock, regulator_id=regulator_id,
                                          application_id=application.id, approve=True)
    accounts = {}
    for account in EXPERTS:
        person = await service.sign_up(session=session, clock=clock, hashing=hashing,
                                       personal_data_key=settings.personal_data_key, kind="person",
                                       display_name=account.display_name, email=account.email, password=DEMO_PASSWORD)
        added = await experts.add_expert(session=session, clock=clock, regulator_id=regulator_id, account_id=person.id,
                                         name=account.display_name, affiliation="深圳大学 (demo)",
                                         fields=["reduction_verification", "methodology", "scenario"])
        accounts[added.id] = person.id
    commission = await verification.commission_verifier(session=session, clock=clock, regulator_id=regulator_id,
                                                        project_id=project.id, verifier_id=verifier.id,
                                                        experts_wanted=3)
    clock.advance(days=3)
    commission = await verification.submit_report(
        session=session, clock=clock, verifier_id=verifier.id, commission_id=commission.id,
        vintages=[verification.VintageTonnes(vintage=vintage, tonnes=9_000)],
        documents=[Document(name=f"SZV-{vintage}-0457 核查报告 (demo).pdf", sha256="5e" * 32, byte_size=2_345_678)])
    await reviews.draw_experts(session=session, clock=clock, regulator_id=regulator_id, review_id=commission.review_id)
    clock.advance(days=2)
    for seat in (await reviews.seats_of(session=session, review_ids=[commission.review_id]))[commission.review_id]:
        await reviews.submit_opinion(session=session, clock=clock, account_id=accounts[seat.expert_id],
                                     review_id=commission.review_id, opinion=Opinion.PASS,
                                     text="监测数据与发电量记录一致 (demo)")
    return await session.scalar(select(VerifierReport).where(VerifierReport.commission_id == commission.id))


async def _cer_project(session, clock, hashing: PasswordHashing, settings, regulator_id,
                       reviewer_id) -> DemoProject:
    """A rooftop solar project taken through notice, declaration, verification, filing and issuance
    on a clock set back 45 days (the notice must run 7 working days), an offer of part of its CERs,
    and the owner's own carbon-neutral event, approved by the reviewer, with its signed certificate."""
    from neutrality.cers import offsets, projects
    from neutrality.market import offers
    from neutrality.retirement import certificates, retirements, review
    from reductions.seeding import seed_methodology

    now = clock.now()
    past = MovableClock(now - timedelta(days=45))
    # a project names a published methodology (art. 14): an example one for rooftop solar
    # (seeded, as the migrations seed Shenzhen's: the demo stages no expert review for it)
    solar = await seed_methodology(
        session=session, clock=past, code="SZ-PV-DEMO", name="分布式光伏发电 Rooftop solar (demo)",
        behaviour_domain="renewable_energy", activity_unit="kwh", factor_mg_per_unit=581_000,
        max_quantity_milli=100_000_000_000, effective_from=business_date(past.now()),
        source_reference="demo figure, not a published Shenzhen value")
    owner = await service.sign_up(session=session, clock=past, hashing=hashing,
                                  personal_data_key=settings.personal_data_key, kind="organisation",
                                  display_name=PROJECT_OWNER.display_name, email=PROJECT_OWNER.email,
                                  password=DEMO_PASSWORD, apply_for=[Role.PROJECT_OWNER.value],
                                  application_note="Rooftop solar on factory roofs in Guangming (demo).")
    project = await projects.register_project(session=session, clock=past, owner_id=owner.id,
                                              fields=projects.ProjectFields(
                                                  title="光明区厂房屋顶分布式光伏 (demo)", methodology_code=solar.code,
                                                  location="深圳市光明区", expected_tonnes_per_year=9_800,
                                                  description="120 栋厂房屋顶光伏，年发电约 1,800 万 kWh (demo)",
                                                  benefit_sharing="屋顶业主分享 20% 减排收益 (demo)"))
    await projects.publish_for_notice(session=session, clock=past, owner_id=owner.id, project_id=project.id,
                                      pledge_accepted=True)
    past.advance(days=30)  # far more than 7 working days, whatever the holidays
    await projects.declare_project(session=session, clock=past, owner_id=owner.id, project_id=project.id)
    vintage = business_date(now).year - 1
    report = await _verified(session, past, hashing, settings, regulator_id, project, vintage)
    past.advance(days=1)
    await projects.file_project(session=session, clock=past, regulator_id=regulator_id, project_id=project.id,
                                note="三位专家意见均为通过，材料齐全，准予备案 (demo)")
    past.advance(days=2)
    issuance = await projects.issue_cers(session=session, clock=past, regulator_id=regulator_id,
                                         verifier_report_id=report.id, tonnes=6_000)
    offer = await offers.create_offer(session=session, clock=past, seller_id=owner.id, project_id=project.id,
                                      vintage=vintage, quantity=500, price_per_tonne_fen=6_800)
    signer = certificates.signer_from_settings(settings)
    await certificates.register_key(session=session, clock=clock, signer=signer)
    year = business_date(now).year
    outcome = await retirements.apply_for_neutrality(
        session=session, clock=clock, signer=signer, public_base_url=settings.public_base_url, holder_id=owner.id,
        beneficiary_name="光明绿能科技有限公司 (demo)", subject_kind="event",
        subject=f"{year} 光明绿能供应商大会 (demo)", footprint_kg=12_345,
        period_start=business_date(now) - timedelta(days=2), period_end=business_date(now) - timedelta(days=1))
    # held for review (art. 19); the platform's reviewer approves: retired and certified in this transaction
    approved = await review.approve(session=session, clock=clock, signer=signer,
                                    public_base_url=settings.public_base_url, reviewer_id=reviewer_id,
                                    retirement_id=outcome.retirement.id)
    # the year's ETS offset scope (art. 18), and 100 t surrendered for a (demo) compliance entity
    scope = await offsets.draft_scope(session=session, clock=clock, regulator_id=regulator_id, year=year,
                                      vintages=[vintage], project_kinds=["renewable_energy"], methodology_codes=[],
                                      cap_tonnes=200_000, note=f"{year} 年度碳普惠核证减排量履约抵销范围 (demo)")
    await offsets.publish_scope(session=session, clock=clock, regulator_id=regulator_id, scope_id=scope.id)
    await offsets.surrender_cers(session=session, clock=clock, holder_id=owner.id, request=offsets.SurrenderRequest(
        year=year, entity_name="深圳光明电力有限公司 (demo)",
        entity_code="91440300MA0000001" + offsets.uscc_check_char("91440300MA0000001"), tonnes=100))
    code = approved.certificate.verification_code
    return DemoProject(code=project.code, vintage=vintage,
                       issued=issuance.last_serial - issuance.first_serial + 1, offered=offer.quantity_offered,
                       certificate_number=approved.certificate.number,
                       verification_url=certificates.verification_url(settings.public_base_url, code),
                       pdf_url=certificates.pdf_url(settings.public_base_url, code))
