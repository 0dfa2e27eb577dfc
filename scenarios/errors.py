"""The error codes of scenarios and their marks (scenarios/service.py). Raise sites name the members,
never a bare string (tests/structure/test_conventions_error_codes.py)."""

from __future__ import annotations

from core.errors import Code


class ScenarioCode(Code):
    # the application (art. 27)
    MISSING_ITEM = "MISSING_ITEM"
    INVALID_APPLICATION = "INVALID_APPLICATION"
    UNKNOWN_METHODOLOGY = "UNKNOWN_METHODOLOGY"
    METHODOLOGY_NOT_PUBLISHED = "METHODOLOGY_NOT_PUBLISHED"
    DOCUMENT_TOO_LARGE = "DOCUMENT_TOO_LARGE"
    DOCUMENT_HASH_MISMATCH = "DOCUMENT_HASH_MISMATCH"
    # the data-protection pledge of art. 28 was not accepted as published (version and sha256)
    PLEDGE_NOT_ACCEPTED = "PLEDGE_NOT_ACCEPTED"
    # the regulator's decision and the mark's life
    ALREADY_DECIDED = "ALREADY_DECIDED"
    INVALID_VALIDITY = "INVALID_VALIDITY"
    MARK_NUMBERS_EXHAUSTED = "MARK_NUMBERS_EXHAUSTED"  # the year's 9,999 mark numbers are all taken
    MARK_NOT_ACTIVE = "MARK_NOT_ACTIVE"
    MARK_NOT_SUSPENDED = "MARK_NOT_SUSPENDED"
    MARK_WITHDRAWN = "MARK_WITHDRAWN"
    MARK_EXPIRED = "MARK_EXPIRED"
    REASON_REQUIRED = "REASON_REQUIRED"
