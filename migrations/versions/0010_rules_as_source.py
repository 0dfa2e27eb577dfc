"""the database rules as source: one wallet row lock in plpgsql (wallet_lock)

The plpgsql functions and triggers now live as `.sql` files next to the Python module that owns
each rule (wallets/sql/, mall/sql/; core/sql_source.py says how), and tests/structure/test_sql_source.py
holds a migrated database to them. This migration applies them as they are today:

- `wallet_lock(p_wallet)`, new: the wallet row lock that wallet_place_hold and mall_redeem each
  wrote out (PERFORM ... FOR UPDATE); it returns false, having locked nothing, when there is no
  wallet, and wallet_place_hold still answers 'no_wallet' then.
- `wallet_place_hold` and `mall_redeem` take the lock through it; nothing else changes in what
  they do, check or return, nor in the order of their refusals. mall_redeem's comment points to
  the trigger's file for SQLSTATE TPH01 (core/deferred_refusal.py turns it into the DomainError).
- `mall_reserve_stock_at_commit` and the `redemptions_reserve_stock` trigger stay as 0006 made them.

The text below is a FROZEN COPY of the files as of this revision: a later change to a `.sql` file
needs a migration of its own carrying the new text; this one must never change.

Revision ID: 0010_rules_as_source
Revises: 0009_api_key_scopes
Create Date: 2026-12-02 14:00:00
"""
import importlib.util
from pathlib import Path

from alembic import op

revision = '0010_rules_as_source'
down_revision = '0009_api_key_scopes'
branch_labels = None
depends_on = None

# wallets/sql/wallet_lock.sql as of this revision
WALLET_LOCK = r"""
CREATE OR REPLACE FUNCTION public.wallet_lock(p_wallet uuid)
 RETURNS boolean
 LANGUAGE plpgsql
AS $function$
-- Lock the wallet row; false (nothing locked) when there is no such wallet.
BEGIN
    PERFORM 1 FROM wallets WHERE account_id = p_wallet FOR UPDATE;
    RETURN FOUND;
END $function$
"""

# wallets/sql/wallet_place_hold.sql as of this revision
WALLET_PLACE_HOLD = r"""
CREATE OR REPLACE FUNCTION public.wallet_place_hold(p_wallet uuid, p_hold uuid, p_points bigint, p_reference text,
                                                    p_now timestamp with time zone)
 RETURNS TABLE(code text, usable bigint)
 LANGUAGE plpgsql
AS $function$
-- Set p_points aside from the wallet's soonest-expiring usable lots. code: 'ok' (placed),
-- 'exists' (this very hold was placed before), 'conflict' (the id names another hold), 'no_wallet',
-- or 'insufficient' (nothing written; usable says how many points there are).
DECLARE
    existing point_holds%ROWTYPE;
    lot record;
    needed bigint := p_points;
    take bigint;
    lot_ids uuid[] := '{}';
    amounts bigint[] := '{}';
BEGIN
    IF NOT wallet_lock(p_wallet) THEN
        RETURN QUERY SELECT 'no_wallet'::text, 0::bigint;
        RETURN;
    END IF;
    SELECT * INTO existing FROM point_holds WHERE id = p_hold;
    IF FOUND THEN
        IF existing.wallet_id = p_wallet AND existing.points = p_points AND existing.reference = p_reference THEN
            RETURN QUERY SELECT 'exists'::text, 0::bigint;
        ELSE
            RETURN QUERY SELECT 'conflict'::text, 0::bigint;
        END IF;
        RETURN;
    END IF;
    FOR lot IN SELECT id, points_remaining FROM point_lots
               WHERE wallet_id = p_wallet AND points_remaining > 0 AND expires_at > p_now
               ORDER BY expires_at, issue_date, id FOR UPDATE LOOP
        EXIT WHEN needed = 0;
        take := least(needed, lot.points_remaining);
        lot_ids := lot_ids || lot.id;
        amounts := amounts || take;
        needed := needed - take;
    END LOOP;
    IF needed > 0 THEN
        RETURN QUERY SELECT 'insufficient'::text, p_points - needed;
        RETURN;
    END IF;
    INSERT INTO point_holds (id, wallet_id, points, status, reference, created_at)
        VALUES (p_hold, p_wallet, p_points, 'pending', p_reference, p_now);
    UPDATE point_lots SET points_remaining = points_remaining - t.p, points_held = points_held + t.p
        FROM unnest(lot_ids, amounts) AS t(l, p) WHERE point_lots.id = t.l;
    INSERT INTO hold_draws (hold_id, lot_id, wallet_id, points)
        SELECT p_hold, l, p_wallet, p FROM unnest(lot_ids, amounts) AS t(l, p);
    INSERT INTO wallet_entries (id, wallet_id, lot_id, kind, points, reduction_mg, at, hold_id)
        SELECT gen_random_uuid(), p_wallet, l, 'hold', p, 0, p_now, p_hold FROM unnest(lot_ids, amounts) AS t(l, p);
    UPDATE wallets SET available_points = available_points - p_points, held_points = held_points + p_points
        WHERE account_id = p_wallet;
    RETURN QUERY SELECT 'ok'::text, p_points;
END $function$
"""

# mall/sql/mall_redeem.sql as of this revision
MALL_REDEEM = r"""
CREATE OR REPLACE FUNCTION public.mall_redeem(p_wallet uuid, p_listing uuid, p_quantity integer,
                                              p_expected_revision integer, p_expected_price bigint,
                                              p_now timestamp with time zone,
                                              p_held_until timestamp with time zone, p_redemption uuid,
                                              p_hold uuid, p_voucher text)
 RETURNS TABLE(code text, detail bigint, points bigint, merchant_id uuid, channel text, app_operator_id uuid,
               title text, unit_price_points bigint)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
-- One redemption, in the caller's transaction. code: 'ok' (with what the redemption copied from
-- the listing), or the refusal ('NOT_FOUND', 'NOT_AVAILABLE', 'OUTSIDE_WINDOW', 'PRICE_CHANGED'
-- (detail: the price now), 'LISTING_CHANGED', 'LIMIT_REACHED' (detail: the limit),
-- 'INSUFFICIENT_POINTS' (detail: the usable points; points: those needed), 'OUT_OF_STOCK'), after
-- which the caller rolls back. A race for the last units can still fail the commit with SQLSTATE
-- TPH01 (see mall/sql/mall_reserve_stock_at_commit.sql). The redemption is made at the price read
-- here, which is the agreed one.
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
    PERFORM wallet_lock(p_wallet);
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
END $function$
"""


def _revision(file_name: str, module_name: str):
    path = Path(__file__).with_name(file_name)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    # the lock first: the other two call it
    op.execute(WALLET_LOCK)
    op.execute(WALLET_PLACE_HOLD)
    op.execute(MALL_REDEEM)


def downgrade() -> None:
    # back to 0008's state: wallet_place_hold as 0006 made it, mall_redeem as 0008 made it
    op.execute(_revision("0006_redeem_in_one_round_trip.py", "_tanpuhui_revision_0006").WALLET_PLACE_HOLD)
    op.execute(_revision("0008_exact_to_the_last_fraction.py", "_tanpuhui_revision_0008").MALL_REDEEM)
    op.execute("DROP FUNCTION IF EXISTS wallet_lock(uuid)")
