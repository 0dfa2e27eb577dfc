"""The error codes of supervision: violations, sanctions and inspections (art. 30-32). Raise sites
name the members (`SupervisionCode.ALREADY_RESCINDED`), never a bare string."""

from __future__ import annotations

from core.errors import Code


class SupervisionCode(Code):
    # recording a violation
    ROLE_NOT_HELD = "ROLE_NOT_HELD"
    INVALID_ARTICLE = "INVALID_ARTICLE"
    FINDING_REQUIRED = "FINDING_REQUIRED"
    INVALID_DOCUMENT = "INVALID_DOCUMENT"
    INVALID_PERIOD = "INVALID_PERIOD"
    REVOCATION_NOT_APPLICABLE = "REVOCATION_NOT_APPLICABLE"
    # rescinding
    ALREADY_RESCINDED = "ALREADY_RESCINDED"
    REASON_REQUIRED = "REASON_REQUIRED"
    # inspections
    SCOPE_REQUIRED = "SCOPE_REQUIRED"
    INVALID_DATE = "INVALID_DATE"
    ALREADY_DONE = "ALREADY_DONE"
    NOTE_REQUIRED = "NOTE_REQUIRED"
