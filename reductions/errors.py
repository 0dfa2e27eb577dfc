"""The error codes of methodologies, their filing (reductions/filing.py), exchange rules and behaviour
reports (reductions/service.py).
A refused item of a report batch is no error: its outcome is in the batch's results
(reductions.service.Reject). Raise sites name the members (`ReductionCode.INVALID_QUANTITY`), never a bare string
(tests/structure/test_conventions_error_codes.py checks it)."""

from __future__ import annotations

from core.errors import Code


class ReductionCode(Code):
    INVALID_BATCH = "INVALID_BATCH"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    QUANTITY_TOO_LARGE = "QUANTITY_TOO_LARGE"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    VALIDITY_TOO_LONG = "VALIDITY_TOO_LONG"
    UNKNOWN_METHODOLOGY = "UNKNOWN_METHODOLOGY"
    # a rule names a methodology with no published version (art. 14)
    METHODOLOGY_NOT_PUBLISHED = "METHODOLOGY_NOT_PUBLISHED"
    EFFECTIVE_IN_PAST = "EFFECTIVE_IN_PAST"
    # methodology filing (reductions/filing.py, art. 11-13)
    MISSING_ITEM = "MISSING_ITEM"
    INVALID_APPLICATION = "INVALID_APPLICATION"
    DOCUMENT_TOO_LARGE = "DOCUMENT_TOO_LARGE"
    OPERATOR_SUSPENDED = "OPERATOR_SUSPENDED"  # a suspension in force (art. 31; supervision/standing.py)
