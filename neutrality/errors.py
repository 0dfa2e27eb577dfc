"""The error codes of carbon neutrality, one enum per part: registry, offsets, market, retirement.

The CER registry (projects, issuance, serial blocks, cancellation: neutrality/cers/projects.py,
registry.py, blocks.py), the ETS offset scope and surrenders (neutrality/cers/offsets.py), the CER
market (neutrality/market/offers.py, purchases.py, settlement.py, payments.py) and neutrality itself
(applications, their review, retirements and certificates: neutrality/retirement/retirements.py,
review.py, certificates.py). Raise sites
name the members (`MarketCode.OFFER_NOT_ACTIVE`), never a bare string
(tests/structure/test_conventions_error_codes.py checks it)."""

from __future__ import annotations

from core.errors import Code


class RegistryCode(Code):
    WRONG_STATUS = "WRONG_STATUS"
    PLEDGE_REQUIRED = "PLEDGE_REQUIRED"
    NOTICE_NOT_OVER = "NOTICE_NOT_OVER"
    REASON_REQUIRED = "REASON_REQUIRED"
    EXCEEDS_VERIFIED = "EXCEEDS_VERIFIED"
    SERIALS_NOT_CANCELLABLE = "SERIALS_NOT_CANCELLABLE"
    INVALID_SERIAL = "INVALID_SERIAL"
    # a holder's live blocks have fewer free tonnes than asked for
    INSUFFICIENT_TONNES = "INSUFFICIENT_TONNES"
    # independent verification (neutrality/cers/verification.py, art. 17, 32)
    NOT_A_VERIFIER = "NOT_A_VERIFIER"
    VERIFIER_SANCTIONED = "VERIFIER_SANCTIONED"
    VERIFIER_NOT_INDEPENDENT = "VERIFIER_NOT_INDEPENDENT"
    ALREADY_COMMISSIONED = "ALREADY_COMMISSIONED"
    PROJECT_FROZEN = "PROJECT_FROZEN"
    INVALID_DOCUMENT = "INVALID_DOCUMENT"
    # the notice's count reached a year whose official working-day schedule is not known yet (art. 16)
    CALENDAR_NOT_PUBLISHED = "CALENDAR_NOT_PUBLISHED"
    # a project names no published methodology (art. 14)
    METHODOLOGY_NOT_PUBLISHED = "METHODOLOGY_NOT_PUBLISHED"


class OffsetCode(Code):
    """The yearly ETS offset scope and compliance surrenders (neutrality/cers/offsets.py, art. 18)."""
    INVALID_SCOPE = "INVALID_SCOPE"
    SCOPE_NOT_DRAFT = "SCOPE_NOT_DRAFT"
    # a correction may not set the year's cap below the tonnes already surrendered
    CAP_BELOW_SURRENDERED = "CAP_BELOW_SURRENDERED"
    # no scope is published for the compliance year named
    SCOPE_NOT_PUBLISHED = "SCOPE_NOT_PUBLISHED"
    VINTAGE_NOT_IN_SCOPE = "VINTAGE_NOT_IN_SCOPE"
    PROJECT_NOT_IN_SCOPE = "PROJECT_NOT_IN_SCOPE"
    # the year's total would be exceeded
    OVER_CAP = "OVER_CAP"
    INVALID_ENTITY_NAME = "INVALID_ENTITY_NAME"
    INVALID_ENTITY_CODE = "INVALID_ENTITY_CODE"
    # a named serial range is not all live, held and the caller's
    SERIALS_NOT_HELD = "SERIALS_NOT_HELD"


class MarketCode(Code):
    INVALID_PRICE = "INVALID_PRICE"
    INSUFFICIENT_TONNES = "INSUFFICIENT_TONNES"
    OFFER_NOT_ACTIVE = "OFFER_NOT_ACTIVE"
    BELOW_MINIMUM = "BELOW_MINIMUM"
    CANNOT_BUY_OWN_OFFER = "CANNOT_BUY_OWN_OFFER"
    PAYMENT_PROVIDER_UNAVAILABLE = "PAYMENT_PROVIDER_UNAVAILABLE"
    PAYMENT_REFUSED = "PAYMENT_REFUSED"


class NeutralityCode(Code):
    INVALID_BENEFICIARY = "INVALID_BENEFICIARY"
    INVALID_SUBJECT = "INVALID_SUBJECT"
    INVALID_FOOTPRINT = "INVALID_FOOTPRINT"
    INVALID_PERIOD = "INVALID_PERIOD"
    TONNES_BELOW_FOOTPRINT = "TONNES_BELOW_FOOTPRINT"
    # the review of applications (art. 19): decided once, a rejection or revocation says why
    NOT_PENDING_REVIEW = "NOT_PENDING_REVIEW"
    OWN_APPLICATION = "OWN_APPLICATION"
    REASON_REQUIRED = "REASON_REQUIRED"
    INVALID_POLICY = "INVALID_POLICY"
    CERTIFICATE_ALREADY_REVOKED = "CERTIFICATE_ALREADY_REVOKED"
