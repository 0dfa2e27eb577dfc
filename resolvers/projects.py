"""Reduction projects and CER issuance: the owner's lifecycle (register, publish with the pledge,
declare, attach the verifier's report), the regulator's filing, rejection, issuance, cancellation
and audit, the public registry and serial trace (art. 29), and the working-day calendar of the
public notice (art. 16)."""

from __future__ import annotations

import uuid

import strawberry

from accounts.models import ApiKeyScope as S
from accounts.models import Role as R
from core.errors import DomainError, NotFound
from accounts.service import account_names
from core.documents import Document
from neutrality.cers import notice, projects, registry, verification
from neutrality.cers.models import CerCancellation, Issuance, Project, VerifierCommission, VerifierSanction
from resolvers.common import parse_id
from resolvers.runner import Idempotency, run_mutation
from schema import projects as t
from schema.context import Context
from schema.pagination import Connection
from schema.permissions import CER_HOLDERS as HOLDERS
from schema.permissions import Allow


def _viewer(ctx: Context) -> uuid.UUID | None:
    return ctx.principal.account_id if ctx.principal else None


def _is_regulator(ctx: Context) -> bool:
    return ctx.principal is not None and R.REGULATOR.value in ctx.principal.roles


async def _views(session, rows: list[Project], viewer) -> list[t.CerProject]:
    ids = [p.id for p in rows]
    reports = await registry.verifier_reports(session=session, project_ids=ids)
    issued = await registry.issuances(session=session, project_ids=ids)
    totals = await registry.totals(session=session, project_ids=ids)
    commissions = await verification.commissions_of(session=session, project_ids=ids)
    commission_views = iter(await _commissions(session, [c for p in rows for c in commissions[p.id]]))
    flags = await verification.flags(session=session, project_ids=ids)
    notices = await notice.notices_of(session=session, projects=rows)
    return [t.CerProject.from_row(p, notice=notices[p.id], reports=reports[p.id], issuances=issued[p.id],
                                  totals=totals[p.id], viewer=viewer, flags=flags[p.id],
                                  commissions=[next(commission_views) for _ in commissions[p.id]])
            for p in rows]


async def _commissions(session, rows: list[VerifierCommission]) -> list[t.VerifierCommission]:
    names = await account_names(session=session, ids=list({r.verifier_id for r in rows}))
    return [t.VerifierCommission.from_row(r, names.get(r.verifier_id, "")) for r in rows]


async def _commission(session, row: VerifierCommission) -> t.VerifierCommission:
    return (await _commissions(session, [row]))[0]


async def _view(session, row: Project, viewer) -> t.CerProject:
    return (await _views(session, [row], viewer))[0]


async def _connection(session, page, viewer) -> Connection[t.CerProject]:
    views = dict(zip([i.node.id for i in page.items], await _views(session, [i.node for i in page.items], viewer)))
    return Connection.from_page(page, lambda row: views[row.id])


def _project(ctx: Context, payload: type):
    """The answer of a project lifecycle mutation: the project as it is now."""
    async def answer(session, row: Project):
        return payload(project=await _view(session, row, _viewer(ctx)))

    return answer


def _project_id(input) -> uuid.UUID:
    return parse_id(input.project_id, "projectId")


def _fields(input) -> projects.ProjectFields:
    return projects.ProjectFields(title=input.title, methodology_code=input.methodology_code, location=input.location,
                                  description=input.description,
                                  expected_tonnes_per_year=input.expected_tonnes_per_year,
                                  benefit_sharing=input.benefit_sharing)


@strawberry.type
class ProjectsQuery:
    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="The public registry: published projects with issued, held, retired and cancelled "
                                  "totals, by project code.")
    async def cer_registry(self, info: strawberry.Info, status: t.CerProjectStatus | None = None,
                           first: int | None = None, after: str | None = None) -> Connection[t.CerProject]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await registry.public_projects(session=session, status=status.value if status else None,
                                                  first=first, after=after)
            return await _connection(session, page, _viewer(ctx))

    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="One project by id or code: anyone once published; drafts and rejected projects "
                                  "only to their owner and the regulator.")
    async def cer_project(self, info: strawberry.Info, id: strawberry.ID | None = None,
                          code: str | None = None) -> t.CerProject | None:
        ctx: Context = info.context
        if id is None and not code:
            return None
        try:
            project_id = parse_id(id) if id is not None else None
            async with ctx.reading() as session:
                row = await projects.get_project(session=session, project_id=project_id, code=code)
                if not (registry.is_public(row) or row.owner_id == _viewer(ctx) or _is_regulator(ctx)):
                    return None
                return await _view(session, row, _viewer(ctx))
        except NotFound:
            return None

    @strawberry.field(extensions=[Allow(R.PROJECT_OWNER)], description="The caller's projects, newest first.")
    async def my_cer_projects(self, info: strawberry.Info, first: int | None = None,
                              after: str | None = None) -> Connection[t.CerProject]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await registry.owner_projects(session=session, owner_id=ctx.principal.account_id, first=first,
                                                 after=after)
            return await _connection(session, page, _viewer(ctx))

    @strawberry.field(extensions=[Allow(R.REGULATOR)], description="Every project, drafts included, by code.")
    async def cer_projects_for_review(self, info: strawberry.Info, status: t.CerProjectStatus | None = None,
                                      first: int | None = None, after: str | None = None) -> Connection[t.CerProject]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await registry.review_projects(session=session, status=status.value if status else None,
                                                  first=first, after=after)
            return await _connection(session, page, _viewer(ctx))

    @strawberry.field(extensions=[Allow(R.VERIFIER)],
                      description="The caller's commissions as a verifier, newest first: only its own.")
    async def my_verifier_commissions(self, info: strawberry.Info, first: int | None = None,
                                      after: str | None = None) -> Connection[t.VerifierCommission]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await verification.verifier_commissions(session=session, verifier_id=ctx.principal.account_id,
                                                           first=first, after=after)
            views = dict(zip([i.node.id for i in page.items],
                             await _commissions(session, [i.node for i in page.items])))
        return Connection.from_page(page, lambda row: views[row.id])

    @strawberry.field(extensions=[Allow(*HOLDERS)],
                      description="The caller's CER account: live tonnes per project, vintage and state, with serials.")
    async def my_cer_holdings(self, info: strawberry.Info) -> list[t.CerHolding]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            rows = await registry.holdings(session=session, holder_id=ctx.principal.account_id)
        return [t.CerHolding.from_row(r) for r in rows]

    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="Trace one tonne by serial (SZCER-P000001-2025-000000001) from its issuance to "
                                  "where it is now; null for a serial that was never issued.")
    async def trace_cer_serial(self, info: strawberry.Info, serial: str) -> t.CerTrace | None:
        ctx: Context = info.context
        try:
            async with ctx.reading() as session:
                found = await registry.trace_serial(session=session, label=serial)
        except DomainError:
            return None
        return t.CerTrace.from_row(found) if found else None

    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="The working-day calendar the public notice counts on (art. 16): each year known, "
                                  "from the chinesecalendar package or entered by the regulator, and up to next year "
                                  "those still provisional.")
    async def working_day_calendar(self, info: strawberry.Info) -> list[t.WorkingDayCalendarYear]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            rows = await notice.calendar_years(session=session, clock=ctx.clock)
        return [t.WorkingDayCalendarYear.from_row(r) for r in rows]

    @strawberry.field(extensions=[Allow(R.REGULATOR)],
                      description="Conservation recomputed: issued = held + reserved + retired + cancelled per project "
                                  "and vintage, against the issuance records, and no serial in two places.")
    async def cer_audit(self, info: strawberry.Info) -> t.CerAudit:
        ctx: Context = info.context
        async with ctx.reading() as session:
            return t.CerAudit.from_row(await registry.audit(session=session))


@strawberry.type
class ProjectsMutation:
    @strawberry.mutation(extensions=[Allow(R.PROJECT_OWNER, scope=S.MANAGE_CER_PROJECTS)], description="Register a reduction project as a draft.")
    async def register_cer_project(self, info: strawberry.Info,
                                   input: t.RegisterCerProjectInput) -> t.RegisterCerProjectPayload:
        ctx: Context = info.context
        return await run_mutation(
            ctx, t.RegisterCerProjectPayload, lambda session: projects.register_project(
                session=session, clock=ctx.clock, owner_id=ctx.principal.account_id, fields=_fields(input)),
            answer=_project(ctx, t.RegisterCerProjectPayload))

    @strawberry.mutation(extensions=[Allow(R.PROJECT_OWNER, scope=S.MANAGE_CER_PROJECTS)], description="Edit a draft project.")
    async def update_cer_project(self, info: strawberry.Info,
                                 input: t.UpdateCerProjectInput) -> t.UpdateCerProjectPayload:
        ctx: Context = info.context
        return await run_mutation(
            ctx, t.UpdateCerProjectPayload, lambda session: projects.update_project(
                session=session, clock=ctx.clock, owner_id=ctx.principal.account_id, project_id=_project_id(input),
                fields=_fields(input)),
            answer=_project(ctx, t.UpdateCerProjectPayload))

    @strawberry.mutation(extensions=[Allow(R.PROJECT_OWNER, scope=S.MANAGE_CER_PROJECTS)],
                         description="Publish a draft for public notice (公示), taking the pledge that its reductions "
                                     "are in no other mechanism. The declaration may follow 7 working days later.")
    async def publish_cer_project(self, info: strawberry.Info,
                                  input: t.PublishCerProjectInput) -> t.PublishCerProjectPayload:
        ctx: Context = info.context
        return await run_mutation(
            ctx, t.PublishCerProjectPayload, lambda session: projects.publish_for_notice(
                session=session, clock=ctx.clock, owner_id=ctx.principal.account_id, project_id=_project_id(input),
                pledge_accepted=input.pledge_accepted),
            answer=_project(ctx, t.PublishCerProjectPayload))

    @strawberry.mutation(extensions=[Allow(R.PROJECT_OWNER, scope=S.MANAGE_CER_PROJECTS)],
                         description="Submit the declaration (申报) once the notice has run 7 working days.")
    async def declare_cer_project(self, info: strawberry.Info,
                                  input: t.DeclareCerProjectInput) -> t.DeclareCerProjectPayload:
        ctx: Context = info.context
        return await run_mutation(
            ctx, t.DeclareCerProjectPayload, lambda session: projects.declare_project(
                session=session, clock=ctx.clock, owner_id=ctx.principal.account_id, project_id=_project_id(input)),
            answer=_project(ctx, t.DeclareCerProjectPayload))

    @strawberry.mutation(extensions=[Allow(R.REGULATOR)],
                         description="File (备案) a verified project once every drawn expert's opinion on the verifier's "
                                     "report is in, giving reasons (note); its verified tonnes may then be issued.")
    async def file_cer_project(self, info: strawberry.Info, input: t.FileCerProjectInput) -> t.FileCerProjectPayload:
        ctx: Context = info.context
        return await run_mutation(
            ctx, t.FileCerProjectPayload, lambda session: projects.file_project(
                session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id, project_id=_project_id(input),
                note=input.note),
            answer=_project(ctx, t.FileCerProjectPayload))

    @strawberry.mutation(extensions=[Allow(R.REGULATOR)],
                         description="Reject a project before filing, saying why; it leaves the public registry.")
    async def reject_cer_project(self, info: strawberry.Info,
                                 input: t.RejectCerProjectInput) -> t.RejectCerProjectPayload:
        ctx: Context = info.context
        return await run_mutation(
            ctx, t.RejectCerProjectPayload, lambda session: projects.reject_project(
                session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id, project_id=_project_id(input),
                reason=input.reason),
            answer=_project(ctx, t.RejectCerProjectPayload))

    @strawberry.mutation(extensions=[Allow(R.REGULATOR)],
                         description="Issue whole tonnes of a filed project's verifier's report to its owner's CER "
                                     "account, as a new serial block; serial numbers are never reused.")
    async def issue_cers(self, info: strawberry.Info, input: t.IssueCersInput) -> t.IssueCersPayload:
        ctx: Context = info.context

        async def issue(session) -> dict:
            issuance = await projects.issue_cers(
                session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                verifier_report_id=parse_id(input.verifier_report_id, "verifierReportId"), tonnes=input.tonnes)
            return {"issuance_id": str(issuance.id)}

        async def answer(session, result: dict) -> t.IssueCersPayload:
            issuance = await session.get(Issuance, parse_id(result["issuance_id"]))
            row = await session.get(Project, issuance.project_id)
            return t.IssueCersPayload(issuance=t.CerIssuance.from_row(issuance, row.code),
                                      project=await _view(session, row, _viewer(ctx)))

        def idempotency() -> Idempotency:
            return Idempotency("issueCers", input.idempotency_key,
                               {"verifierReportId": str(parse_id(input.verifier_report_id, "verifierReportId")),
                                "tonnes": input.tonnes})

        return await run_mutation(ctx, t.IssueCersPayload, issue, answer=answer, idempotency=idempotency)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR)],
                         description="Cancel held CERs of a serial range without a claim (e.g. a fraudulent "
                                     "issuance), saying why. Unlike retirement, nobody may claim these tonnes.")
    async def cancel_cers(self, info: strawberry.Info, input: t.CancelCersInput) -> t.CancelCersPayload:
        ctx: Context = info.context

        async def cancel(session) -> dict:
            row = await projects.cancel_cers(session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                                             project_id=_project_id(input), vintage=input.vintage,
                                             first_serial=input.first_serial, last_serial=input.last_serial,
                                             reason=input.reason)
            return {"cancellation_id": str(row.id)}

        async def answer(session, result: dict) -> t.CancelCersPayload:
            row = await session.get(CerCancellation, parse_id(result["cancellation_id"]))
            project = await session.get(Project, row.project_id)
            return t.CancelCersPayload(cancellation=t.CerCancellation.from_row(row, project))

        def idempotency() -> Idempotency:
            return Idempotency("cancelCers", input.idempotency_key,
                               {"projectId": str(_project_id(input)), "vintage": input.vintage,
                                "first": input.first_serial, "last": input.last_serial, "reason": input.reason})

        return await run_mutation(ctx, t.CancelCersPayload, cancel, answer=answer, idempotency=idempotency)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR)],
                         description="Commission an approved, independent verifier (核查机构) for a declared project "
                                     "(art. 17); only it may submit the project's verification report.")
    async def commission_verifier(self, info: strawberry.Info,
                                  input: t.CommissionVerifierInput) -> t.CommissionVerifierPayload:
        ctx: Context = info.context

        async def commission(session) -> t.CommissionVerifierPayload:
            row = await verification.commission_verifier(
                session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                project_id=_project_id(input), verifier_id=parse_id(input.verifier_id, "verifierId"),
                experts_wanted=input.experts_wanted)
            return t.CommissionVerifierPayload(commission=await _commission(session, row))

        return await run_mutation(ctx, t.CommissionVerifierPayload, commission)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR)],
                         description="Withdraw a commission whose report has not come in, saying why.")
    async def withdraw_verifier_commission(self, info: strawberry.Info, input: t.WithdrawVerifierCommissionInput
                                           ) -> t.WithdrawVerifierCommissionPayload:
        ctx: Context = info.context

        async def withdraw(session) -> t.WithdrawVerifierCommissionPayload:
            row = await verification.withdraw_commission(
                session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                commission_id=parse_id(input.commission_id, "commissionId"), reason=input.reason)
            return t.WithdrawVerifierCommissionPayload(commission=await _commission(session, row))

        return await run_mutation(ctx, t.WithdrawVerifierCommissionPayload, withdraw)

    @strawberry.mutation(extensions=[Allow(R.VERIFIER)],
                         description="The commissioned verifier's validation and verification report: tonnes per "
                                     "vintage and its documents by sha256. Opens the drawn experts' review.")
    async def submit_verification_report(self, info: strawberry.Info, input: t.SubmitVerificationReportInput
                                         ) -> t.SubmitVerificationReportPayload:
        ctx: Context = info.context

        async def submit(session) -> dict:
            row = await verification.submit_report(
                session=session, clock=ctx.clock, verifier_id=ctx.principal.account_id,
                commission_id=parse_id(input.commission_id, "commissionId"),
                vintages=[verification.VintageTonnes(vintage=v.vintage, tonnes=v.tonnes) for v in input.vintages],
                documents=[Document(name=d.name, sha256=d.sha256, byte_size=d.byte_size) for d in input.documents])
            return {"commission_id": str(row.id)}

        async def answer(session, result: dict) -> t.SubmitVerificationReportPayload:
            row = await verification.get_commission(session=session, commission_id=parse_id(result["commission_id"]))
            return t.SubmitVerificationReportPayload(commission=await _commission(session, row))

        def idempotency() -> Idempotency:
            return Idempotency("submitVerificationReport", input.idempotency_key, {
                "commissionId": str(parse_id(input.commission_id, "commissionId")),
                "vintages": [[v.vintage, v.tonnes] for v in input.vintages],
                "documents": [[d.name, d.sha256, d.byte_size] for d in input.documents]})

        return await run_mutation(ctx, t.SubmitVerificationReportPayload, submit, answer=answer,
                                  idempotency=idempotency)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR)],
                         description="Record a false verification report against a verifier (art. 32): it takes no "
                                     "new commission, its projects are flagged publicly, and their unsold tonnes "
                                     "frozen pending review if asked. Retired tonnes stay retired, flagged.")
    async def record_false_verification_report(self, info: strawberry.Info, input: t.RecordFalseVerificationReportInput
                                               ) -> t.RecordFalseVerificationReportPayload:
        ctx: Context = info.context

        async def record(session) -> dict:
            sanction, frozen = await verification.record_false_report(
                session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                verifier_id=parse_id(input.verifier_id, "verifierId"),
                commission_id=parse_id(input.commission_id, "commissionId") if input.commission_id else None,
                reason=input.reason, freeze_unsold=input.freeze_unsold)
            return {"sanction_id": str(sanction.id), "frozen": frozen}

        async def answer(session, result: dict) -> t.RecordFalseVerificationReportPayload:
            row = await session.get(VerifierSanction, parse_id(result["sanction_id"]))
            return t.RecordFalseVerificationReportPayload(sanction=t.VerifierSanction(
                id=strawberry.ID(str(row.id)), verifier_id=strawberry.ID(str(row.verifier_id)),
                commission_id=strawberry.ID(str(row.commission_id)) if row.commission_id else None,
                reason=row.reason, froze_unsold=row.froze_unsold, recorded_at=row.recorded_at,
                frozen_projects=result["frozen"]))

        def idempotency() -> Idempotency:
            return Idempotency("recordFalseVerificationReport", input.idempotency_key, {
                "verifierId": str(parse_id(input.verifier_id, "verifierId")), "commissionId": input.commission_id,
                "reason": input.reason, "freezeUnsold": input.freeze_unsold})

        return await run_mutation(ctx, t.RecordFalseVerificationReportPayload, record, answer=answer,
                                  idempotency=idempotency)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR)],
                         description="End a project's freeze after review, saying what the review found.")
    async def unfreeze_cer_project(self, info: strawberry.Info,
                                   input: t.UnfreezeCerProjectInput) -> t.UnfreezeCerProjectPayload:
        ctx: Context = info.context
        return await run_mutation(
            ctx, t.UnfreezeCerProjectPayload, lambda session: verification.unfreeze_project(
                session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                project_id=_project_id(input), reason=input.reason),
            answer=_project(ctx, t.UnfreezeCerProjectPayload))

    @strawberry.mutation(extensions=[Allow(R.REGULATOR)],
                         description="Enter a year's official holidays and make-up working days (调休) as the State "
                                     "Council published them, for a year the package does not cover; a later entry "
                                     "for the year is a correction that replaces it. Notices count on it at once.")
    async def enter_working_day_schedule(self, info: strawberry.Info, input: t.EnterWorkingDayScheduleInput
                                         ) -> t.EnterWorkingDaySchedulePayload:
        ctx: Context = info.context

        async def enter(session) -> dict:
            row = await notice.enter_schedule(
                session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id, year=input.year,
                holidays=list(input.holidays), makeup_workdays=list(input.make_up_workdays),
                source_reference=input.source_reference)
            return {"year": row.year}

        async def answer(session, result: dict) -> t.EnterWorkingDaySchedulePayload:
            years = await notice.calendar_years(session=session, clock=ctx.clock)
            found = next(y for y in years if y.year == result["year"])
            return t.EnterWorkingDaySchedulePayload(calendar_year=t.WorkingDayCalendarYear.from_row(found))

        def idempotency() -> Idempotency:
            return Idempotency("enterWorkingDaySchedule", input.idempotency_key,
                               {"year": input.year, "holidays": sorted(d.isoformat() for d in input.holidays),
                                "makeUpWorkdays": sorted(d.isoformat() for d in input.make_up_workdays),
                                "sourceReference": input.source_reference})

        return await run_mutation(ctx, t.EnterWorkingDaySchedulePayload, enter, answer=answer,
                                  idempotency=idempotency)
