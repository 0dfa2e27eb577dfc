"""What the supervision tests share: the contracts they walk by hash (tests/supervision/test_contracts.py)."""

from __future__ import annotations

SUPERVISION_CONTRACTS = {
    "RecordViolation", "RescindViolation", "CreditRecord", "MyCreditRecord", "SanctionsInForce", "RecordInspection",
    "AddInspectionFollowUp", "CompleteFollowUp", "Inspections", "Inspection",
}
