"""Set-up for methodology filing tests (issue 10, art. 11-13): complete applications, documents."""

from __future__ import annotations

import base64

from reductions.filing import ApplicationFields, Document
from reductions.models import CalculationKind

# the front-end contracts tests/reductions/test_methodology_filing_api.py walks
METHODOLOGY_CONTRACTS = {
    "ApplyForMethodologyFiling", "MyMethodologyApplications", "MethodologyApplication", "MethodologyApplications",
    "FileMethodology", "RefuseMethodologyApplication", "RetireMethodology",
}

FORM = "备案申请表：深圳市共享单车骑行碳普惠方法学".encode()
TEXT = "1 适用范围 ... 5 减排量计算：E = Q × EF".encode()
NOTES = "编制说明：因子依据 2024 年城市交通排放清单".encode()


def complete_fields(code: str = "SZ-BIKE", calculation: CalculationKind = CalculationKind.FACTOR_PER_UNIT,
                    factor: int = 64_000, **overrides) -> ApplicationFields:
    fields = dict(
        code=code, name="深圳市共享单车骑行碳普惠方法学 Shared-bicycle riding", behaviour_domain="cycling",
        activity_unit="person_km", calculation=calculation, factor_mg_per_unit=factor, max_quantity="60",
        application_form=Document("form.pdf", "application/pdf", FORM),
        methodology_text=Document("text.pdf", "application/pdf", TEXT),
        drafting_notes=Document("notes.txt", "text/plain", NOTES))
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
