"""The error codes of the technical review (reviews/experts.py, draws.py, service.py). Raise sites
name the members, never a bare string (tests/structure/test_conventions_error_codes.py)."""

from __future__ import annotations

from core.errors import Code


class ReviewCode(Code):
    WRONG_STATUS = "WRONG_STATUS"
    # fewer active, unconflicted experts of the field than seats to fill
    TOO_FEW_EXPERTS = "TOO_FEW_EXPERTS"
    # the regulator decides only once every seat has an opinion
    OPINIONS_OUTSTANDING = "OPINIONS_OUTSTANDING"
    REASON_REQUIRED = "REASON_REQUIRED"
    ALREADY_ANSWERED = "ALREADY_ANSWERED"
    NOT_AN_EXPERT = "NOT_AN_EXPERT"
    ALREADY_AN_EXPERT = "ALREADY_AN_EXPERT"
    INVALID_FIELD = "INVALID_FIELD"
