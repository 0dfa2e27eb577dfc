"""exact to the last fraction: a wallet's reported reduction beside its credited one; a redemption
at the price the person agreed to; refusals kept as an idempotency key's answer

`wallets.lifetime_reduction_mg` counts the CO2e points were credited for; the part of a report
over a daily cap earned nothing and was left out, though the wallet said "all the CO2e avoided".
`lifetime_reported_reduction_mg` counts every credited report's whole reduction; existing wallets
get theirs from the reports' uncredited reductions.

`mall_redeem` takes the unit price in points the person agreed to (p_expected_price) beside the
listing revision they saw, and refuses with PRICE_CHANGED, before anything is held, when the
listing's price is another: a merchant raising the price while someone is at the checkout no
longer makes them pay the new one. mall/service.py insists on one of the two.

`idempotency_records.refusal` holds a key's first answer when it was a refusal, so the same key
and input get that refusal again (core/idempotency.py) instead of a later success.

Revision ID: 0008_exact_to_the_last_fraction
Revises: 0006_redeem_in_one_round_trip
Create Date: 2026-11-26 10:00:00
"""
import importlib.util
from pathlib import Path

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0008_exact_to_the_last_fraction'
down_revision = '0006_redeem_in_one_round_trip'
branch_labels = None
depends_on = None


MALL_REDEEM = r"""
CREATE OR REPLACE FUNCTION mall_redeem(p_wallet uuid, p_listing uuid, p_quantity integer, p_expected_revision integer,
                                       p_expected_price bigint, p_now timestamptz, p_held_until timestamptz,
                                       p_redemption uuid, p_hold uuid, p_voucher text)
RETURNS TABLE (code text, detail bigint, points bigint, merchant_id uuid, channel text, app_operator_id uuid,
               title text, unit_price_points bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
-- One redemption, in the caller's transaction. code: 'ok' (with what the redemption copied from
-- the listing), or the refusal ('NOT_FOUND', 'NOT_AVAILABLE', 'OUTSIDE_WINDOW', 'PRICE_CHANGED'
-- (detail: the price now), 'LISTING_CHANGED', 'LIMIT_REACHED' (detail: the limit),
-- 'INSUFFICIENT_POINTS' (detail: the usable points; points: those needed), 'OUT_OF_STOCK'), after
-- which the caller rolls back. A race for the last units can still fail the commit with SQLSTATE
-- TPH01 (see server/db.py). The redemption is made at the price read here, which is the agreed one.
DECLARE
    l listings%ROWTYPE;
    taken bigint;
    hold_code text;
    hold_usable bigint;
BEGIN
    -- the person's wallet first: serialises their own redemptions (per-person limit, points)
    INSERT INTO wallets (account_id, available_points, held_points, lifetime_points, lifetime_reduction_mg,
                         remainder_num, remainder_den, created_at)
        VALUES (p_wallet, 0, 0, 0, 0, 0, 1, p_now) ON CONFLICT DO NOTHING;
    PERFORM 1 FROM wallets WHERE account_id = p_wallet FOR UPDATE;
    SELECT * INTO l FROM listings WHERE id = p_listing;
    IF NOT FOUND OR l.status = 'draft' THEN
        code := 'NOT_FOUND'; RETURN NEXT; RETURN;
    END IF;
    IF l.status <> 'active' THEN
        code := 'NOT_AVAILABLE'; RETURN NEXT; RETURN;
    END IF;
    IF (l.available_from IS NOT NULL AND p_now < l.available_from)
       OR (l.available_until IS NOT NULL AND p_now >= l.available_until) THEN
        code := 'OUTSIDE_WINDOW'; RETURN NEXT; RETURN;
    END IF;
    IF p_expected_price IS NOT NULL AND p_expected_price <> l.price_points THEN
        code := 'PRICE_CHANGED'; detail := l.price_points; RETURN NEXT; RETURN;
    END IF;
    IF p_expected_revision IS NOT NULL AND p_expected_revision <> l.revision THEN
        code := 'LISTING_CHANGED'; RETURN NEXT; RETURN;
    END IF;
    IF l.per_person_limit IS NOT NULL THEN
        SELECT coalesce(sum(quantity), 0) INTO taken FROM redemptions
            WHERE wallet_id = p_wallet AND listing_id = p_listing AND status IN ('held', 'fulfilled');
        IF taken + p_quantity > l.per_person_limit THEN
            code := 'LIMIT_REACHED'; detail := l.per_person_limit; RETURN NEXT; RETURN;
        END IF;
    END IF;
    SELECT h.code, h.usable INTO hold_code, hold_usable
        FROM wallet_place_hold(p_wallet, p_hold, l.price_points * p_quantity, 'redemption:' || p_redemption, p_now) h;
    IF hold_code = 'insufficient' THEN
        code := 'INSUFFICIENT_POINTS'; detail := hold_usable; points := l.price_points * p_quantity;
        RETURN NEXT; RETURN;
    ELSIF hold_code <> 'ok' THEN
        RAISE EXCEPTION 'mall_redeem: hold % came back %', p_hold, hold_code;
    END IF;
    IF l.stock_available IS NOT NULL AND l.stock_available < p_quantity THEN
        -- sold out already (the refusals keep their order: limit, points, stock); the decisive
        -- check runs at commit, under the row lock
        code := 'OUT_OF_STOCK'; RETURN NEXT; RETURN;
    END IF;
    INSERT INTO redemptions (id, wallet_id, listing_id, merchant_id, channel, app_operator_id, title, quantity,
                             unit_price_points, points, hold_id, voucher_code, status, held_until, created_at)
        VALUES (p_redemption, p_wallet, l.id, l.merchant_id, l.channel, l.app_operator_id, l.title, p_quantity,
                l.price_points, l.price_points * p_quantity, p_hold, p_voucher, 'held', p_held_until, p_now);
    -- the stock is taken at commit, by the redemptions_reserve_stock trigger
    code := 'ok'; points := l.price_points * p_quantity; merchant_id := l.merchant_id; channel := l.channel;
    app_operator_id := l.app_operator_id; title := l.title; unit_price_points := l.price_points;
    RETURN NEXT;
END $$;
"""
OLD_SIGNATURE = "mall_redeem(uuid, uuid, integer, integer, timestamptz, timestamptz, uuid, uuid, text)"
NEW_SIGNATURE = "mall_redeem(uuid, uuid, integer, integer, bigint, timestamptz, timestamptz, uuid, uuid, text)"


def _revision_0006():
    path = Path(__file__).with_name("0006_redeem_in_one_round_trip.py")
    spec = importlib.util.spec_from_file_location("_tanpuhui_revision_0006", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {OLD_SIGNATURE}")
    op.execute(MALL_REDEEM)
    op.add_column('idempotency_records', sa.Column('refusal', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column('wallets', sa.Column('lifetime_reported_reduction_mg', sa.BigInteger(), nullable=False,
                                       server_default=sa.text('0')))
    op.execute(
        "UPDATE wallets w SET lifetime_reported_reduction_mg = w.lifetime_reduction_mg + coalesce(r.uncredited, 0)"
        " FROM wallets x LEFT JOIN (SELECT wallet_id, sum(uncredited_reduction_mg) AS uncredited"
        "  FROM behaviour_reports WHERE outcome = 'credited' GROUP BY wallet_id) r ON r.wallet_id = x.account_id"
        " WHERE x.account_id = w.account_id")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {NEW_SIGNATURE}")
    op.execute(_revision_0006().MALL_REDEEM)
    op.drop_column('wallets', 'lifetime_reported_reduction_mg')
    op.drop_column('idempotency_records', 'refusal')
