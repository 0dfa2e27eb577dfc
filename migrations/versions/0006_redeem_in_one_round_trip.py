"""redemption in one round trip, its stock taken at commit

A redemption took about 20 statements, each a round trip and a piece of ORM work in the API
process (about 6.4 ms of its CPU), which capped a hot listing at a tenth of what PostgreSQL does.
`wallet_place_hold` and `mall_redeem` run the same steps inside PostgreSQL, in the caller's
transaction; accounts/ledger.py and mall/service.py call them and keep the rules' documentation.

The listing's stock is taken by a deferred constraint trigger when the transaction commits, so the
hot listing row is locked only while it commits, not until the API process gets round to sending
COMMIT (a turn of a busy event loop). mall_redeem refuses a listing already sold out; when the last
units went meanwhile, the trigger raises SQLSTATE TPH01 and the commit fails, rolling everything
back, and server/db.py turns that into the OUT_OF_STOCK domain error. The trigger checks under the
row lock, so nothing is ever oversold.

Revision ID: 0006_redeem_in_one_round_trip
Revises: 0005_certificates
Create Date: 2026-11-25 16:00:00
"""
from alembic import op

revision = '0006_redeem_in_one_round_trip'
down_revision = '0005_certificates'
branch_labels = None
depends_on = None

WALLET_PLACE_HOLD = r"""
CREATE OR REPLACE FUNCTION wallet_place_hold(p_wallet uuid, p_hold uuid, p_points bigint, p_reference text,
                                             p_now timestamptz)
RETURNS TABLE (code text, usable bigint) LANGUAGE plpgsql AS $$
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
    PERFORM 1 FROM wallets WHERE account_id = p_wallet FOR UPDATE;
    IF NOT FOUND THEN
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
END $$;
"""

RESERVE_AT_COMMIT = r"""
CREATE OR REPLACE FUNCTION mall_reserve_stock_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    left_in_stock bigint;
BEGIN
    -- NO KEY UPDATE: the redemptions of other transactions hold KEY SHARE on this row (their foreign key)
    SELECT stock_available INTO left_in_stock FROM listings WHERE id = NEW.listing_id FOR NO KEY UPDATE;
    IF left_in_stock IS NULL THEN
        RETURN NULL;  -- unlimited (a service)
    END IF;
    IF left_in_stock < NEW.quantity THEN
        RAISE EXCEPTION 'OUT_OF_STOCK' USING ERRCODE = 'TPH01', DETAIL = 'Not enough stock left.', HINT = 'quantity';
    END IF;
    UPDATE listings SET stock_available = left_in_stock - NEW.quantity WHERE id = NEW.listing_id;
    INSERT INTO stock_movements (id, listing_id, kind, delta, quantity, redemption_id, at)
        VALUES (gen_random_uuid(), NEW.listing_id, 'reserve', -NEW.quantity, NEW.quantity, NEW.id, NEW.created_at);
    RETURN NULL;
END $$;
"""
RESERVE_TRIGGER = """
CREATE CONSTRAINT TRIGGER redemptions_reserve_stock AFTER INSERT ON redemptions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION mall_reserve_stock_at_commit()
"""

MALL_REDEEM = r"""
CREATE OR REPLACE FUNCTION mall_redeem(p_wallet uuid, p_listing uuid, p_quantity integer, p_expected_revision integer,
                                       p_now timestamptz, p_held_until timestamptz, p_redemption uuid, p_hold uuid,
                                       p_voucher text)
RETURNS TABLE (code text, detail bigint, points bigint, merchant_id uuid, channel text, app_operator_id uuid,
               title text, unit_price_points bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
-- One redemption, in the caller's transaction. code: 'ok' (with what the redemption copied from
-- the listing), or the refusal ('NOT_FOUND', 'NOT_AVAILABLE', 'OUTSIDE_WINDOW', 'LISTING_CHANGED',
-- 'LIMIT_REACHED' (detail: the limit), 'INSUFFICIENT_POINTS' (detail: the usable points; points:
-- those needed), 'OUT_OF_STOCK'), after which the caller rolls back. A race for the
-- last units can still fail the commit with SQLSTATE TPH01 (see server/db.py).
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


def upgrade() -> None:
    op.execute(WALLET_PLACE_HOLD)
    op.execute(RESERVE_AT_COMMIT)
    op.execute(RESERVE_TRIGGER)
    op.execute(MALL_REDEEM)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS mall_redeem(uuid, uuid, integer, integer, timestamptz, timestamptz, uuid, "
               "uuid, text)")
    op.execute("DROP TRIGGER IF EXISTS redemptions_reserve_stock ON redemptions")
    op.execute("DROP FUNCTION IF EXISTS mall_reserve_stock_at_commit()")
    op.execute("DROP FUNCTION IF EXISTS wallet_place_hold(uuid, uuid, bigint, text, timestamptz)")
