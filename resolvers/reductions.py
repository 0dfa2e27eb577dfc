"""Methodologies and their filing (applicants, the regulator; art. 11-14), exchange rules (regulator),
behaviour reports (operators)."""

from __future__ import annotations

from datetime import date

import strawberry

from accounts.models import ApiKeyScope as S
from accounts.models import Role as R
from core.keyset import MAX_PAGE_SIZE
from accounts import service as accounts
from core.errors import NotFound
from reductions import filing, service
from reductions.errors import ReductionCode
from reductions.models import ApplicationStatus, CalculationKind, MethodologyApplication
from resolvers.common import attachment_from_base64, parse_id
from reviews import service as reviews
from resolvers.runner import Idempotency, run_mutation
from schema import reductions as t
from schema.pagination import Connection
from schema.errors import PublicError
from schema.permissions import APPROVED_ORGANISATIONS, Allow
from schema.wallets import OperatorPointTotals, PointTotals
from wallets import read

# a batch racing another batch with the same report ids is retried once; then they are duplicates
REPORT_ATTEMPTS = 3


@strawberry.type
class ReductionsQuery:
    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="Published (and retired) methodologies, every version, each with its filing: the "
                                  "application, the experts' review and the regulator's reasons (art. 13-14, 29).")
    async def methodologies(self, info: strawberry.Info) -> list[t.Methodology]:
        ctx = info.context
        drafts = ctx.principal is not None and ctx.principal.has(R.REGULATOR.value)
        async with ctx.reading() as session:
            rows = await service.list_methodologies(session=session, include_drafts=drafts)
            filings = await _filings(session, [r.application_id for r in rows if r.application_id])
        return [t.Methodology.from_row(r, filings.get(r.application_id)) for r in rows]

    @strawberry.field(extensions=[Allow(R.ORGANISATION, R.REGULATOR)],
                      description="The caller's own methodology applications, newest first.")
    async def my_methodology_applications(self, info: strawberry.Info, first: int | None = None,
                                          after: str | None = None) -> Connection[t.MethodologyApplication]:
        ctx = info.context
        async with ctx.reading() as session:
            page = await filing.list_applications(session=session, first=first, after=after,
                                                  applicant_id=ctx.principal.account_id)
            return await _applications(session, page)

    @strawberry.field(extensions=[Allow(R.REGULATOR)], description="Every methodology application, newest first.")
    async def methodology_applications(
        self, info: strawberry.Info, status: t.MethodologyApplicationStatus | None = None, first: int | None = None,
        after: str | None = None,
    ) -> Connection[t.MethodologyApplication]:
        async with info.context.reading() as session:
            page = await filing.list_applications(session=session, first=first, after=after,
                                                  status=ApplicationStatus(status.value) if status else None)
            return await _applications(session, page)

    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="One application with its documents' bytes and its journal. A filed one is public "
                                  "(art. 29); before that, only its applicant, the regulator and the experts drawn "
                                  "into its review see it (art. 13).")
    async def methodology_application(self, info: strawberry.Info, id: strawberry.ID) -> t.MethodologyApplication:
        ctx = info.context
        async with ctx.reading() as session:
            try:
                row = await filing.get_application(session=session, application_id=parse_id(id))
            except NotFound:
                row = None
            if row is None or not await _may_read(ctx, session, row):
                raise PublicError("No such methodology application.", "NOT_FOUND")
            documents = await filing.documents_of(session=session, application_ids=[row.id], with_content=True)
            journal = await filing.journal_of(session=session, application_id=row.id)
        return t.MethodologyApplication.from_row(row, documents[row.id], journal, with_content=True)

    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="Published exchange rules; the regulator also sees drafts.")
    async def exchange_rules(self, info: strawberry.Info) -> list[t.ExchangeRule]:
        ctx = info.context
        drafts = ctx.principal is not None and ctx.principal.has(R.REGULATOR.value)
        async with ctx.reading() as session:
            rows = await service.list_exchange_rules(session=session, include_drafts=drafts)
        return [t.ExchangeRule.from_row(r) for r in rows]

    @strawberry.field(extensions=[Allow(R.APP_OPERATOR)], description="This operator's reports and their outcomes, newest first.")
    async def my_reports(self, info: strawberry.Info, first: int | None = None, after: str | None = None,
                         rejected_only: bool = False) -> Connection[t.BehaviourReport]:
        ctx = info.context
        async with ctx.reading() as session:
            page = await service.list_reports(session=session, operator_id=ctx.principal.account_id, first=first,
                                              after=after, outcome="rejected" if rejected_only else None)
        return Connection.from_page(page, t.BehaviourReport.from_row)

    @strawberry.field(extensions=[Allow(R.APP_OPERATOR)],
                      description="This operator's reports per methodology and behaviour day; with byScenario, per "
                                  "scenario named too (art. 25-27).")
    async def report_aggregates(self, info: strawberry.Info, since: date, until: date,
                                by_scenario: bool = False) -> list[t.ReportAggregate]:
        ctx = info.context
        async with ctx.reading() as session:
            rows = await service.operator_aggregates(session=session, operator_id=ctx.principal.account_id,
                                                     since=since, until=until, by_scenario=by_scenario)
        return [t.ReportAggregate(day=r.day, methodology_code=r.methodology_code, reports=r.reports,
                                  credited=r.credited, rejected=r.rejected, points=r.points,
                                  reduction_mg=r.reduction_mg, uncredited_reduction_mg=r.uncredited_reduction_mg,
                                  scenario_id=strawberry.ID(str(r.scenario_id)) if r.scenario_id else None)
                for r in rows]

    @strawberry.field(extensions=[Allow(R.APP_OPERATOR)],
                      description="Expiry notices of lots this operator's reports earned, by its own user ids.")
    async def operator_expiry_notices(self, info: strawberry.Info) -> list[t.OperatorExpiryNotice]:
        ctx = info.context
        notices: list[t.OperatorExpiryNotice] = []
        after = None
        async with ctx.reading() as session:
            while True:  # every notice, a keyset page at a time
                page = await read.operator_expiry_notices(session=session, operator_id=ctx.principal.account_id,
                                                          first=MAX_PAGE_SIZE, after=after)
                notices += [t.OperatorExpiryNotice(external_user_id=n.external_user_id, points=n.points,
                                                   expires_at=n.expires_at, noticed_at=n.noticed_at)
                            for n in (item.node for item in page.items)]
                if not page.has_next_page:
                    return notices
                after = page.end_cursor

    @strawberry.field(extensions=[Allow(R.REGULATOR)], description="Point totals per reporting app operator.")
    async def point_totals_by_operator(self, info: strawberry.Info) -> list[OperatorPointTotals]:
        async with info.context.reading() as session:
            rows = await service.totals_by_operator(session=session)
        return [OperatorPointTotals(operator_id=strawberry.ID(str(o)), operator_name=name,
                                    totals=PointTotals.from_totals(totals)) for o, name, totals in rows]


@strawberry.type
class ReductionsMutation:
    @strawberry.mutation(extensions=[Allow(R.APP_OPERATOR, scope=S.REPORT_BEHAVIOUR)],
                         description="Report up to 1,000 items of entrusted users' behaviour. Idempotent per report id.")
    async def report_behaviour(self, info: strawberry.Info, input: t.ReportBehaviourInput) -> t.ReportBehaviourPayload:
        ctx = info.context
        items = [service.ReportItem(report_id=i.report_id, external_user_id=i.external_user_id,
                                    methodology_code=i.methodology_code, quantity=i.quantity,
                                    occurred_at=i.occurred_at, baseline_quantity=i.baseline_quantity,
                                    actual_quantity=i.actual_quantity, scenario_mark=i.scenario_mark)
                 for i in input.items]

        async def report(session) -> t.ReportBehaviourPayload:
            results = await service.report_behaviour(session=session, clock=ctx.clock,
                                                     operator_id=ctx.principal.account_id, items=items)
            return t.ReportBehaviourPayload(results=[t.ReportItemResult.from_result(r) for r in results])

        return await run_mutation(ctx, t.ReportBehaviourPayload, report,
                                  retry_on=(service.ConcurrentDuplicate,), attempts=REPORT_ATTEMPTS)

    @strawberry.mutation(extensions=[Allow(*APPROVED_ORGANISATIONS, R.REGULATOR, password_session=True)],
                         description="Apply to file a methodology (art. 11-12): an organisation the regulator "
                                     "approved in a role, or the regulator for its own. Complete, "
                                     "it opens a review by drawn methodology experts (art. 13); incomplete, it is "
                                     "refused naming every missing item.")
    async def apply_for_methodology_filing(self, info: strawberry.Info,
                                           input: t.ApplyForMethodologyFilingInput) -> t.ApplyForMethodologyFilingPayload:
        ctx = info.context
        decoded: list[filing.ApplicationFields] = []  # once, before the transaction (the fingerprint names sha256s)

        def fields() -> filing.ApplicationFields:
            if not decoded:
                decoded.append(filing.ApplicationFields(
                    code=input.code, name=input.name, behaviour_domain=input.behaviour_domain,
                    activity_unit=input.activity_unit,
                    calculation=CalculationKind(input.calculation.value) if input.calculation else None,
                    factor_mg_per_unit=input.factor_mg_per_unit, max_quantity=input.max_quantity,
                    **{name: _document(getattr(input, name), name)
                       for name in ("application_form", "methodology_text", "drafting_notes")}))
            return decoded[0]

        async def apply(session) -> dict:
            row = await filing.apply(session=session, clock=ctx.clock, applicant_id=ctx.principal.account_id,
                                     fields=fields())
            return {"application_id": str(row.id)}

        async def answer(session, result: dict) -> t.ApplyForMethodologyFilingPayload:
            return t.ApplyForMethodologyFilingPayload(application=await _application(session, result))

        def idempotency() -> Idempotency:
            f = fields()
            request = {k: [v.document.name, v.media_type, v.document.sha256] if isinstance(v, filing.Attachment)
                       else v for k, v in vars(f).items()}
            return Idempotency("applyForMethodologyFiling", input.idempotency_key, request)

        return await run_mutation(ctx, t.ApplyForMethodologyFilingPayload, apply, answer=answer,
                                  idempotency=idempotency)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)],
                         description="File (备案) and publish an application after its experts' opinions are in, "
                                     "giving reasons: a new published version of its code (art. 13-14).")
    async def file_methodology(self, info: strawberry.Info, input: t.FileMethodologyInput) -> t.FileMethodologyPayload:
        ctx = info.context

        async def file(session) -> dict:
            row, methodology = await filing.file_application(
                session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                application_id=parse_id(input.application_id, "applicationId"), reason=input.reason,
                effective_from=input.effective_from)
            return {"application_id": str(row.id)}

        async def answer(session, result: dict) -> t.FileMethodologyPayload:
            # the application and its documents, read once for both the application and the filing record
            row, documents, journal = await _application_rows(session, result)
            methodology = await service.get_methodology(session=session, methodology_id=row.methodology_id)
            filings = await _filing_records(session, {row.id: row}, documents)
            return t.FileMethodologyPayload(
                application=t.MethodologyApplication.from_row(row, documents[row.id], journal),
                methodology=t.Methodology.from_row(methodology, filings[row.id]))

        def idempotency() -> Idempotency:
            return Idempotency("fileMethodology", input.idempotency_key,
                               {"applicationId": str(parse_id(input.application_id, "applicationId")),
                                "reason": input.reason, "effectiveFrom": input.effective_from})

        return await run_mutation(ctx, t.FileMethodologyPayload, file, answer=answer, idempotency=idempotency)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)],
                         description="Refuse an application after its experts' opinions are in, giving reasons.")
    async def refuse_methodology_application(
        self, info: strawberry.Info, input: t.RefuseMethodologyApplicationInput,
    ) -> t.RefuseMethodologyApplicationPayload:
        ctx = info.context

        async def refuse(session) -> dict:
            row = await filing.refuse_application(
                session=session, clock=ctx.clock, regulator_id=ctx.principal.account_id,
                application_id=parse_id(input.application_id, "applicationId"), reason=input.reason)
            return {"application_id": str(row.id)}

        async def answer(session, result: dict) -> t.RefuseMethodologyApplicationPayload:
            return t.RefuseMethodologyApplicationPayload(application=await _application(session, result))

        def idempotency() -> Idempotency:
            return Idempotency("refuseMethodologyApplication", input.idempotency_key,
                               {"applicationId": str(parse_id(input.application_id, "applicationId")),
                                "reason": input.reason})

        return await run_mutation(ctx, t.RefuseMethodologyApplicationPayload, refuse, answer=answer,
                                  idempotency=idempotency)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)],
                         description="Retire a published methodology version (publication is only by filing).")
    async def retire_methodology(self, info: strawberry.Info, input: t.RetireMethodologyInput) -> t.RetireMethodologyPayload:
        ctx = info.context

        async def retire(session) -> t.RetireMethodologyPayload:
            row = await service.retire_methodology(session=session, clock=ctx.clock, methodology_id=parse_id(input.id),
                                                   regulator_id=ctx.principal.account_id)
            filings = await _filings(session, [row.application_id] if row.application_id else [])
            return t.RetireMethodologyPayload(methodology=t.Methodology.from_row(row, filings.get(row.application_id)))

        return await run_mutation(ctx, t.RetireMethodologyPayload, retire)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)], description="Draft an exchange rule (validity at most 10 years).")
    async def create_exchange_rule(self, info: strawberry.Info, input: t.CreateExchangeRuleInput) -> t.ExchangeRulePayload:
        ctx = info.context

        async def create(session) -> t.ExchangeRulePayload:
            row = await service.create_exchange_rule(
                session=session, clock=ctx.clock, points=input.points, reduction_mg=input.reduction_mg,
                daily_cap_points=input.daily_cap_points, acceptance_window_days=input.acceptance_window_days,
                effective_from=input.effective_from, validity_years=input.validity_years,
                methodology_code=input.methodology_code, note=input.note, regulator_id=ctx.principal.account_id)
            return t.ExchangeRulePayload(rule=t.ExchangeRule.from_row(row))

        return await run_mutation(ctx, t.ExchangeRulePayload, create)

    @strawberry.mutation(extensions=[Allow(R.REGULATOR, password_session=True)], description="Publish a draft exchange rule; it applies from its effectiveFrom.")
    async def publish_exchange_rule(self, info: strawberry.Info, input: t.PublishExchangeRuleInput) -> t.ExchangeRulePayload:
        ctx = info.context

        async def publish(session) -> t.ExchangeRulePayload:
            row = await service.publish_exchange_rule(session=session, clock=ctx.clock, rule_id=parse_id(input.id),
                                                      regulator_id=ctx.principal.account_id)
            return t.ExchangeRulePayload(rule=t.ExchangeRule.from_row(row))

        return await run_mutation(ctx, t.ExchangeRulePayload, publish)


# --- methodology filing ------------------------------------------------------------------------


def _document(value: t.MethodologyDocumentInput | None, name: str) -> filing.Attachment | None:
    if value is None:
        return None
    field = {"application_form": "applicationForm", "methodology_text": "methodologyText",
             "drafting_notes": "draftingNotes"}[name]
    return attachment_from_base64(value.file_name, value.media_type, value.content_base64, field=field,
                                  too_large=ReductionCode.DOCUMENT_TOO_LARGE, invalid=ReductionCode.INVALID_APPLICATION)


async def _filings(session, application_ids: list) -> dict:
    """application id -> the public MethodologyFiling of each filed application."""
    rows = await filing.applications_by_id(session=session, ids=application_ids)
    if not rows:
        return {}
    documents = await filing.documents_of(session=session, application_ids=list(rows))
    return await _filing_records(session, rows, documents)


async def _filing_records(session, rows: dict, documents: dict) -> dict:
    """The public MethodologyFiling of each of these loaded applications, with their loaded documents."""
    names = await accounts.account_names(session=session, ids=list({r.applicant_id for r in rows.values()}))
    review_ids = [r.review_id for r in rows.values() if r.review_id]
    decided = await reviews.reviews_by_id(session=session, review_ids=review_ids)
    opinions = await reviews.opinion_counts(session=session, review_ids=review_ids)
    return {i: t.MethodologyFiling.from_row(r, names.get(r.applicant_id, ""), documents[i], decided.get(r.review_id),
                                            opinions.get(r.review_id, {}))
            for i, r in rows.items()}


async def _application_rows(session, result: dict) -> tuple[MethodologyApplication, dict, list]:
    """A mutation's application, its documents (without bytes) and its journal."""
    row = await filing.get_application(session=session, application_id=parse_id(result["application_id"]))
    documents = await filing.documents_of(session=session, application_ids=[row.id])
    journal = await filing.journal_of(session=session, application_id=row.id)
    return row, documents, journal


async def _application(session, result: dict) -> t.MethodologyApplication:
    row, documents, journal = await _application_rows(session, result)
    return t.MethodologyApplication.from_row(row, documents[row.id], journal)


async def _applications(session, page) -> Connection[t.MethodologyApplication]:
    documents = await filing.documents_of(session=session, application_ids=[i.node.id for i in page.items])
    return Connection.from_page(page, lambda row: t.MethodologyApplication.from_row(row, documents[row.id]))


async def _may_read(ctx, session, application: MethodologyApplication) -> bool:
    """Anyone once filed; before, the applicant, the regulator and the experts drawn into its review."""
    if application.status == ApplicationStatus.FILED.value:
        return True
    if ctx.principal is None:
        return False
    if ctx.principal.has(R.REGULATOR.value):
        return True
    return await reviews.may_read_subject(session=session, review_id=application.review_id,
                                          applicant_id=application.applicant_id, account_id=ctx.principal.account_id)
