"""The error codes of the points mall: listings, redemptions and their fulfilment (mall/service.py
and the mall_redeem SQL function it calls). Raise sites name the members (`MallCode.OUT_OF_STOCK`),
never a bare string (tests/structure/test_conventions_error_codes.py checks it)."""

from __future__ import annotations

from core.errors import Code


class MallCode(Code):
    # listings
    INVALID_PRICE = "INVALID_PRICE"
    INVALID_STOCK = "INVALID_STOCK"
    UNKNOWN_APP_OPERATOR = "UNKNOWN_APP_OPERATOR"
    LISTING_ARCHIVED = "LISTING_ARCHIVED"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    # redeeming
    OUT_OF_STOCK = "OUT_OF_STOCK"
    LIMIT_REACHED = "LIMIT_REACHED"
    NOT_AVAILABLE = "NOT_AVAILABLE"
    LISTING_CHANGED = "LISTING_CHANGED"
    PRICE_CHANGED = "PRICE_CHANGED"
    PRICE_REQUIRED = "PRICE_REQUIRED"
    # withdrawing, declining, fulfilling
    NOT_HELD = "NOT_HELD"
    REASON_REQUIRED = "REASON_REQUIRED"
    UNKNOWN_CODE = "UNKNOWN_CODE"
    RESERVATION_EXPIRED = "RESERVATION_EXPIRED"
