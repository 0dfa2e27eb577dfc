"""The disclosure lists of art. 29 built from today's packages: experts, methodologies with their
status history, CER projects with their filings and issuances, approved organisations, and the
sanctions in force. Each fetch reads one keyset page and completes its rows with one query per
kind of detail, whatever the page size; only public facts are selected (disclosure/registry.py).

Lists of other packages (scenarios and marks, the yearly offset scope, supervision's violations)
are registered the same way, from their own module imported at the end of this one."""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import and_, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.models import Account, AccountKind, AccountRole, Role, RoleStatus
from accounts.service import APPLICABLE_ROLES
from core.clock import Clock, business_date
from core.keyset import Page, keyset_page
from disclosure.registry import Column, DisclosureList, map_nodes, register
from neutrality.cers import registry as cer_registry
from neutrality.cers import offsets, verification
from neutrality.cers.blocks import serial_label
from neutrality.cers.models import Project, ProjectStatus, VerifierReport, VerifierSanction
from reductions.filing import applications_by_id
from reductions.models import Methodology, PublicationStatus
from reviews import experts as expert_library
from scenarios import service as scenario_service
from supervision import standing, violations
from supervision.models import OrganisationStanding, SupervisedRole, Violation

# what a role or a status is called on a public page
ROLE_LABELS = {Role.APP_OPERATOR.value: "碳普惠应用程序运营机构 App operator",
               Role.MERCHANT.value: "商家 Merchant",
               Role.VERIFIER.value: "核查机构 Verifier"}
APPROVED_ROLES = tuple(role for role, approved in APPLICABLE_ROLES.items() if approved)
STATUS_LABELS = {PublicationStatus.PUBLISHED.value: "已发布 published", PublicationStatus.RETIRED.value: "已废止 retired",
                 ProjectStatus.NOTICE.value: "公示中 notice", ProjectStatus.DECLARED.value: "已申报 declared",
                 ProjectStatus.VERIFIED.value: "已核查 verified", ProjectStatus.FILED.value: "已备案 filed",
                 ProjectStatus.REJECTED.value: "不予备案 rejected"}
FIELD_LABELS = {"methodology": "方法学 methodology", "project_validation": "项目审定 project validation",
                "reduction_verification": "减排量核查 reduction verification", "scenario": "场景评估 scenario"}
SUPERVISED_ROLE_LABELS = {**ROLE_LABELS, SupervisedRole.SCENARIO_OPERATOR.value: "场景运营主体 Scenario operator"}
FALSE_REPORT, VIOLATION = "false_report", "violation"  # the two kinds of sanction in force
INDIVIDUAL = "个人 Individual"
# a project is public from its notice on (art. 16); a rejected one stays listed with the reason
PUBLIC_PROJECT_STATUSES = (*cer_registry.PUBLISHED, ProjectStatus.REJECTED.value)


async def public_names(session: AsyncSession, account_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The names that may be shown for these accounts: an organisation's or the regulator's name;
    a person (an individual project owner, art. 19) only as "个人 Individual", never by name."""
    if not account_ids:
        return {}
    rows = await session.execute(select(Account.id, Account.kind, Account.display_name)
                                 .where(Account.id.in_(account_ids)))
    return {i: (name if kind != AccountKind.PERSON.value else INDIVIDUAL) for i, kind, name in rows}


# --- experts (art. 8, 29) -----------------------------------------------------------------------


async def _experts(*, session: AsyncSession, clock: Clock, first: int | None, after: str | None) -> Page:
    page = await expert_library.public_experts(session=session, field=None, first=first, after=after)
    return map_nodes(page, lambda e: {"name": e.name, "fields": [FIELD_LABELS.get(f, f) for f in e.fields],
                                      "affiliation": e.affiliation})


EXPERTS = register(DisclosureList(
    name="experts", title_zh="碳普惠专家库", title_en="Expert library", article="art. 8, 29",
    description_en="Active experts the regulator draws for technical reviews: name, fields and affiliation.",
    columns=(Column("name", "姓名", "Name"), Column("fields", "专业领域", "Fields"),
             Column("affiliation", "工作单位", "Affiliation")),
    fetch=_experts))


# --- methodologies (art. 11-14, 29) ---------------------------------------------------------------


async def _methodologies(*, session: AsyncSession, clock: Clock, first: int | None, after: str | None) -> Page:
    stmt = select(Methodology).where(Methodology.status != PublicationStatus.DRAFT.value)
    page = await keyset_page(session, stmt, keys=[Methodology.code, Methodology.version], first=first, after=after)
    rows = [i.node for i in page.items]
    filings = await applications_by_id(session=session, ids=[r.application_id for r in rows if r.application_id])
    applicants = await public_names(session, {a.applicant_id for a in filings.values()})

    def row(m: Methodology) -> dict:
        filing = filings.get(m.application_id) if m.application_id else None
        return {"code": m.code, "version": m.version, "name": m.name, "domain": m.behaviour_domain,
                "unit": m.activity_unit, "calculation": m.calculation, "factor": m.factor_mg_per_unit,
                "example": "示例 example" if m.is_example else "",
                "status": STATUS_LABELS.get(m.status, m.status), "effective_from": m.effective_from, "effective_to": m.effective_to,
                "published_at": m.published_at, "retired_at": m.retired_at,
                "applicant": applicants.get(filing.applicant_id) if filing else None,
                "filed_at": filing.decided_at if filing else None,
                "filing_reason": filing.decision_reason if filing else None,
                "source": m.source_reference}

    return map_nodes(page, row)


METHODOLOGIES = register(DisclosureList(
    name="methodologies", title_zh="碳普惠方法学", title_en="Methodologies", article="art. 11-14, 29",
    description_en="Every published or retired version, with its dates and the filing decision it came from.",
    columns=(Column("code", "编号", "Code"), Column("version", "版本", "Version"), Column("name", "名称", "Name"),
             Column("domain", "行为领域", "Behaviour domain"), Column("unit", "活动单位", "Activity unit"),
             Column("calculation", "计算方式", "Calculation"),
             Column("factor", "减排因子(毫克CO2e/单位)", "Factor (mg CO2e per unit)"),
             Column("example", "示例数值", "Example figure"), Column("status", "状态", "Status"),
             Column("effective_from", "生效日期", "Effective from"), Column("effective_to", "失效日期", "Effective to"),
             Column("published_at", "发布时间", "Published"), Column("retired_at", "废止时间", "Retired"),
             Column("applicant", "申请单位", "Applicant"), Column("filed_at", "备案时间", "Filed"),
             Column("filing_reason", "备案意见", "Filing reasons"), Column("source", "来源", "Source")),
    fetch=_methodologies))


# --- CER projects, filings and issuances (art. 15-17, 29, 32) ---------------------------------------


def _vintage_lines(project: Project, reports, issued, totals) -> tuple[list[str], list[str], list[str]]:
    verified = [f"{r.vintage}: {r.verified_tonnes} t ({r.verifier_name})" for r in reports]
    issuances = [f"{i.vintage}: {i.last_serial - i.first_serial + 1} t "
                 f"{serial_label(project.code, i.vintage, i.first_serial, i.last_serial)} "
                 f"({business_date(i.issued_at).isoformat()})" for i in issued]
    sums = [f"{t.vintage}: 签发 issued {t.issued} t, 注销 retired {t.retired} t, 取消 cancelled {t.cancelled} t"
            for t in sorted(totals, key=lambda t: t.vintage)]
    return verified, issuances, sums


async def _projects(*, session: AsyncSession, clock: Clock, first: int | None, after: str | None) -> Page:
    stmt = select(Project).where(Project.status.in_(PUBLIC_PROJECT_STATUSES))
    page = await keyset_page(session, stmt, keys=[Project.code], first=first, after=after)
    projects = [i.node for i in page.items]
    ids = [p.id for p in projects]
    owners = await public_names(session, {p.owner_id for p in projects})
    reports = await cer_registry.verifier_reports(session=session, project_ids=ids)
    issued = await cer_registry.issuances(session=session, project_ids=ids)
    totals = await cer_registry.totals(session=session, project_ids=ids)
    flags = await verification.flags(session=session, project_ids=ids)

    def row(p: Project) -> dict:
        verified, issuances, sums = _vintage_lines(p, reports[p.id], issued[p.id], totals[p.id])
        rejected = p.status == ProjectStatus.REJECTED.value
        return {"code": p.code, "title": p.title, "methodology": p.methodology_code, "location": p.location,
                "owner": owners.get(p.owner_id), "status": STATUS_LABELS.get(p.status, p.status), "notice_started_at": p.notice_started_at,
                "declared_at": p.declared_at, "filed_at": p.filed_at,
                "rejection_reason": p.decision_note if rejected else None,
                "filing_reason": None if rejected else p.decision_note,
                "verified": verified, "issuances": issuances, "totals": sums,
                "flags": flags[p.id], "frozen": p.frozen_reason}

    return map_nodes(page, row)


CER_PROJECTS = register(DisclosureList(
    name="cer-projects", title_zh="碳普惠项目及核证减排量备案", title_en="CER projects, filings and issuances",
    article="art. 15-17, 29, 32",
    description_en="Every project from its public notice on, rejected ones with the reason, flags of false "
                   "verification reports, and every issuance with its serial range.",
    columns=(Column("code", "项目编号", "Project code"), Column("title", "项目名称", "Name"),
             Column("methodology", "方法学", "Methodology"), Column("location", "地点", "Location"),
             Column("owner", "项目业主", "Owner"), Column("status", "状态", "Status"),
             Column("notice_started_at", "公示开始", "Notice from"), Column("declared_at", "申报时间", "Declared"),
             Column("filed_at", "备案时间", "Filed"), Column("rejection_reason", "不予备案理由", "Rejection reason"),
             Column("filing_reason", "备案意见", "Filing reasons"),
             Column("verified", "核证减排量(按年份)", "Verified tonnes by vintage"),
             Column("issuances", "签发记录(序列号)", "Issuances (serial ranges)"),
             Column("totals", "按年份合计", "Totals by vintage"),
             Column("flags", "核查存疑", "Flags (art. 32)"), Column("frozen", "冻结", "Frozen")),
    fetch=_projects))


# --- approved organisations (art. 6, 17, 24, 29) ------------------------------------------------------


async def _approved(*, session: AsyncSession, clock: Clock, first: int | None, after: str | None) -> Page:
    stmt = (select(AccountRole.id, AccountRole.role, AccountRole.decided_at, Account.display_name,
                   OrganisationStanding.suspended_until)
            .join(Account, Account.id == AccountRole.account_id)
            .outerjoin(OrganisationStanding, and_(OrganisationStanding.account_id == AccountRole.account_id,
                                                  OrganisationStanding.role == AccountRole.role))
            .where(AccountRole.role.in_(APPROVED_ROLES), AccountRole.status == RoleStatus.ACTIVE.value,
                   Account.kind == AccountKind.ORGANISATION.value, Account.suspended_at.is_(None)))
    page = await keyset_page(session, stmt, keys=[AccountRole.role, Account.display_name, AccountRole.id],
                             first=first, after=after)
    now = clock.now()
    return map_nodes(page, lambda r: {
        "organisation": r.display_name, "role": ROLE_LABELS[r.role],
        "approved_on": business_date(r.decided_at) if r.decided_at else None,
        "standing": (f"暂停至 suspended until {business_date(r.suspended_until)}"
                     if standing.in_force(r.suspended_until, now) else "正常 in good standing")})


APPROVED_ORGANISATIONS = register(DisclosureList(
    name="approved-organisations", title_zh="已登记的运营机构、商家和核查机构",
    title_en="Approved app operators, merchants and verifiers", article="art. 6, 17, 24, 29",
    description_en="Organisations holding a role the regulator approved, with the date of approval.",
    columns=(Column("organisation", "机构名称", "Organisation"), Column("role", "类别", "Role"),
             Column("approved_on", "登记日期", "Approved on"), Column("standing", "状态", "Standing")),
    fetch=_approved))


# --- sanctions in force (art. 31-32) -------------------------------------------------------------------


async def _sanctions(*, session: AsyncSession, clock: Clock, first: int | None, after: str | None) -> Page:
    """Both kinds of sanction in force, paged together newest first: the false-report sanctions of
    verifiers (art. 32, neutrality/cers/verification.py) and the violations of the credit record whose
    suspension runs or whose revocation stands (art. 31, supervision/violations.py)."""
    both = union_all(
        select(literal(FALSE_REPORT).label("source"), VerifierSanction.id.label("id"),
               VerifierSanction.recorded_at.label("recorded_at")).where(VerifierSanction.lifted_at.is_(None)),
        select(literal(VIOLATION).label("source"), Violation.id.label("id"),
               Violation.recorded_at.label("recorded_at")).where(violations.in_force(clock.now())),
    ).subquery()
    page = await keyset_page(session, select(both.c.source, both.c.id, both.c.recorded_at),
                             keys=[both.c.recorded_at, both.c.id], first=first, after=after, descending=True,
                             node=lambda r: (r.source, r.id))
    nodes = [item.node for item in page.items]
    ids = {kind: [i for source, i in nodes if source == kind] for kind in (FALSE_REPORT, VIOLATION)}
    false_reports = {s.id: s for s in await session.scalars(
        select(VerifierSanction).where(VerifierSanction.id.in_(ids[FALSE_REPORT])))} if ids[FALSE_REPORT] else {}
    in_force = await violations.public_sanctions_by_id(session=session, ids=ids[VIOLATION])
    verifiers = {s.verifier_id for s in false_reports.values()}
    names = await public_names(session, verifiers)
    projects: dict[uuid.UUID, list[str]] = defaultdict(list)
    if verifiers:
        for verifier_id, code in await session.execute(
                select(VerifierReport.verifier_id, Project.code).distinct()
                .join(Project, Project.id == VerifierReport.project_id)
                .where(VerifierReport.verifier_id.in_(verifiers)).order_by(VerifierReport.verifier_id, Project.code)):
            projects[verifier_id].append(code)

    def false_report(s: VerifierSanction) -> dict:
        measures = ["不得接受新委托 no new commissions", "项目标注存疑 its projects flagged"]
        if s.froze_unsold:
            measures.append("冻结未售减排量 unsold tonnes frozen")
        return {"subject": names.get(s.verifier_id), "role": ROLE_LABELS[Role.VERIFIER.value],
                "article": "第三十二条 art. 32", "violation": "虚假核查报告 False verification report",
                "finding": s.reason, "sanction": measures, "projects": projects[s.verifier_id],
                "recorded_on": business_date(s.recorded_at)}

    def violation(v: violations.PublicSanction) -> dict:
        # the finding is the regulator's record, not published (supervision/violations.PublicSanction)
        measure = (f"暂停至 suspended until {business_date(v.until)}" if v.until is not None
                   else "撤销登记 registration revoked")
        return {"subject": v.organisation_name, "role": SUPERVISED_ROLE_LABELS[v.role],
                "article": f"第{v.article}条 art. {v.article}", "violation": None, "finding": None,
                "sanction": [measure], "projects": [], "recorded_on": business_date(v.since)}

    return map_nodes(page, lambda node: false_report(false_reports[node[1]]) if node[0] == FALSE_REPORT
                     else violation(in_force[node[1]]))


SANCTIONS = register(DisclosureList(
    name="sanctions", title_zh="生效中的处理措施", title_en="Sanctions in force", article="art. 31-32",
    description_en="Sanctions in force, newest first: who, under which article, what was found and the measures.",
    columns=(Column("subject", "对象", "Subject"), Column("role", "类别", "Role"), Column("article", "条款", "Article"),
             Column("violation", "违规行为", "Violation"), Column("finding", "认定事实", "Finding"),
             Column("sanction", "处理措施", "Sanction"), Column("projects", "涉及项目", "Projects concerned"),
             Column("recorded_on", "记录日期", "Recorded on")),
    fetch=_sanctions))


# --- the yearly ETS offset scope and its use (art. 18) ---------------------------------------------------


async def _offset_scopes(*, session: AsyncSession, clock: Clock, first: int | None, after: str | None) -> Page:
    def row(use: offsets.ScopeUse) -> dict:
        scope = use.scope
        return {"year": scope.year, "version": scope.version, "vintages": [str(v) for v in scope.vintages],
                "project_kinds": list(scope.project_kinds), "methodologies": list(scope.methodology_codes),
                "cap_tonnes": scope.cap_tonnes, "surrendered_tonnes": use.surrendered_tonnes,
                "remaining_tonnes": use.remaining_tonnes, "surrenders": use.surrenders,
                "published_on": business_date(scope.published_at) if scope.published_at else None}

    return map_nodes(await offsets.offset_scope_use(session=session, first=first, after=after), row)


OFFSET_SCOPES = register(DisclosureList(
    name="ets-offset-scopes", title_zh="年度碳排放权交易抵销范围及使用情况",
    title_en="The yearly ETS offset scope and its use", article="art. 18, 29",
    description_en="Per compliance year, newest first: which CERs may offset obligations in the Shenzhen ETS "
                   "(vintages, project kinds, methodologies), the total in tonnes and what has been surrendered.",
    columns=(Column("year", "履约年度", "Year"), Column("version", "版本", "Version"),
             Column("vintages", "减排量年份", "Vintages"), Column("project_kinds", "项目类型", "Project kinds"),
             Column("methodologies", "方法学", "Methodologies"), Column("cap_tonnes", "抵销总量(吨)", "Cap (t)"),
             Column("surrendered_tonnes", "已抵销(吨)", "Surrendered (t)"),
             Column("remaining_tonnes", "剩余(吨)", "Remaining (t)"), Column("surrenders", "抵销笔数", "Surrenders"),
             Column("published_on", "发布日期", "Published on")),
    fetch=_offset_scopes))


# --- scenarios and their marks (art. 25-28) --------------------------------------------------------------


async def _scenarios(*, session: AsyncSession, clock: Clock, first: int | None, after: str | None) -> Page:
    def row(s: scenario_service.PublicScenario) -> dict:
        return {"mark": s.mark_number, "name": s.name, "kind": s.kind, "district": s.district,
                "behaviours": list(s.methodology_codes), "granted_on": business_date(s.granted_at),
                "valid_until": business_date(s.valid_until), "status": s.status, "reason": s.status_reason}

    return map_nodes(await scenario_service.public_scenarios(session=session, clock=clock, first=first, after=after),
                     row)


SCENARIOS = register(DisclosureList(
    name="scenarios", title_zh="碳普惠场景及标识", title_en="Carbon-inclusion scenarios and their marks",
    article="art. 25-29",
    description_en="Every scenario granted a mark, newest first: its mark number, kind, district, the behaviours "
                   "recorded there, validity, and the mark's status with the regulator's reason for a suspension "
                   "or withdrawal.",
    columns=(Column("mark", "标识编号", "Mark"), Column("name", "场景名称", "Scenario"), Column("kind", "类型", "Kind"),
             Column("district", "所在区", "District"), Column("behaviours", "记录的减碳行为", "Behaviours"),
             Column("granted_on", "授予日期", "Granted on"), Column("valid_until", "有效期至", "Valid until"),
             Column("status", "状态", "Status"), Column("reason", "原因", "Reason")),
    fetch=_scenarios))
