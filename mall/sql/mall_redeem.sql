-- mall_redeem: one redemption in one round trip, in the caller's transaction
-- (the points mall, Measures art. 23-24).
--
-- Rule: the person's wallet is created if need be and locked first (wallet_lock), which
-- serialises their own redemptions (per-person limit, points); the listing is read, the refusals
-- below are checked in this order, the points are held (wallet_place_hold: soonest-expiring lots
-- first) and the redemption is written at the price read here, the one the person agreed to. The
-- stock is taken at commit by the redemptions_reserve_stock trigger
-- (mall/sql/mall_reserve_stock_at_commit.sql), so the hot listing row is locked only that long.
-- Refusals, in the order they are checked (code; detail, points):
--   1. 'NOT_FOUND'           no such listing, or a draft
--   2. 'NOT_AVAILABLE'       the listing is not active
--   3. 'OUTSIDE_WINDOW'      p_now is outside available_from .. available_until
--   4. 'SUSPENDED'           p_now is before suspended_until: its merchant or app mall is suspended
--                            (art. 31-32; supervision/standing.py keeps the column)
--   5. 'PRICE_CHANGED'       the price is not p_expected_price (detail: the price now)
--   6. 'LISTING_CHANGED'     the revision is not p_expected_revision
--   7. 'LIMIT_REACHED'       over the per-person limit with this quantity (detail: the limit)
--   8. 'INSUFFICIENT_POINTS' too few usable points (detail: the usable points; points: those needed)
--   9. 'OUT_OF_STOCK'        sold out already; the decisive check runs at commit (SQLSTATE TPH01)
-- then 'ok', with what the redemption copied from the listing. After a refusal the caller rolls
-- back (the hold of a refusal at 9 is in this transaction too).
-- Called by: mall/service.py redeem, whose REFUSALS table turns each code into its DomainError.
--
-- Migrations apply a frozen copy of this text (last: 0018_supervision); a change here needs a
-- new migration carrying the new text. tests/test_sql_source.py compares this file with the
-- migrated database. Written as pg_get_functiondef prints it (public., full type names, $function$).
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
-- the listing), or the refusal ('NOT_FOUND', 'NOT_AVAILABLE', 'OUTSIDE_WINDOW', 'SUSPENDED', 'PRICE_CHANGED'
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
    IF l.suspended_until IS NOT NULL AND p_now < l.suspended_until THEN
        code := 'SUSPENDED'; RETURN NEXT; RETURN;
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
END $function$;
