"""The error codes of the point ledger: wallets, lots, holds (art. 22: points are valid for at most
ten years). Raise sites name the members (`WalletCode.INSUFFICIENT_POINTS`), never a bare string
(tests/structure/test_conventions_error_codes.py checks it)."""

from __future__ import annotations

from core.errors import Code


class WalletCode(Code):
    INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"
    # a hold id names one hold: reusing it for another is refused, and a hold settles once
    HOLD_ID_CONFLICT = "HOLD_ID_CONFLICT"
    HOLD_SETTLED = "HOLD_SETTLED"
    INVALID_VALIDITY = "INVALID_VALIDITY"
