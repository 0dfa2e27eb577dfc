"""Set-up for methodology filing tests (issue 10, art. 11-13): complete applications, documents."""

from __future__ import annotations

import base64

from sqlalchemy import select

from reductions.filing import ApplicationFields, Attachment
from reductions.models import CalculationKind
from reviews.models import Expert

# the front-end contracts tests/reductions/test_methodology_filing_api.py walks
METHODOLOGY_CONTRACTS = {
    "ApplyForMethodologyFiling", "MyMethodologyApplications", "MethodologyApplication", "MethodologyApplications",
    "FileMethodology", "RefuseMethodologyApplication", "RetireMethodology", "MethodologyFilingRecord",
}

FORM = "备案申请表：深圳市共享单车骑行碳普惠方法学".encode()
TEXT = "1 适用范围 ... 5 减排量计算：E = Q × EF".encode()
NOTES = "编制说明：因子依据 2024 年城市交通排放清单".encode()


def complete_fields(code: str = "SZ-BIKE", calculation: CalculationKind = CalculationKind.FACTOR_PER_UNIT,
                    factor: int = 64_000, **overrides) -> ApplicationFields:
    fields = dict(
        code=code, name="深圳市共享单车骑行碳普惠方法学 Shared-bicycle riding", behaviour_domain="cycling",
        activity_unit="person_km", calculation=calculation, factor_mg_per_unit=factor, max_quantity="60",
        application_form=Attachment.of("form.pdf", "application/pdf", FORM),
        methodology_text=Attachment.of("text.pdf", "application/pdf", TEXT),
        drafting_notes=Attachment.of("notes.txt", "text/plain", NOTES))
    fields.update(overrides)
    return ApplicationFields(**fields)


def document_input(name: str, content: bytes, media_type: str = "application/pdf") -> dict:
    return {"fileName": name, "mediaType": media_type, "contentBase64": base64.b64encode(content).decode()}


def application_input(key: str, code: str = "SZ-BIKE", **overrides) -> dict:
    values = {"idempotencyKey": key, "code": code, "name": "深圳市共享单车骑行碳普惠方法学",
              "behaviourDomain": "cycling", "activityUnit": "person_km", "calculation": "FACTOR_PER_UNIT",
              "factorMgPerUnit": 64_000, "maxQuantity": "60",
              "applicationForm": document_input("form.pdf", FORM),
              "methodologyText": document_input("text.pdf", TEXT),
              "draftingNotes": document_input("notes.txt", NOTES, "text/plain")}
    values.update(overrides)
    return values


async def seat_and_opine(services, regulator_id, application, *, opinions: int | None = None,
                         verdict: str = "pass") -> None:
    """Three more methodology experts in the library, three drawn into the application's review by the
    regulator; the first `opinions` of them (all by default) give `verdict`."""
    from reviews import service as reviews
    from reviews.models import Opinion
    from tests.reviews.fixtures import in_transaction, library

    await library(services, 3, fields=("methodology",))
    await in_transaction(services, reviews.draw_experts, regulator_id=regulator_id, review_id=application.review_id)
    async with services.session_factory() as session:
        seats = (await reviews.seats_of(session=session, review_ids=[application.review_id]))[application.review_id]
        accounts = dict((await session.execute(
            select(Expert.id, Expert.account_id).where(Expert.id.in_([s.expert_id for s in seats])))).all())
    for seat in seats[:len(seats) if opinions is None else opinions]:
        await in_transaction(services, reviews.submit_opinion, account_id=accounts[seat.expert_id],
                             review_id=application.review_id, opinion=Opinion(verdict.lower()),
                             text="计算方法与基准线论证充分 (sound calculation and baseline)")

