-- wallet_place_hold: a hold on a wallet's points, drawn from its soonest-expiring usable lots first
-- (the point ledger, Measures art. 20-23).
--
-- Rule: p_points are set aside from the wallet's usable lots (points left, not expired at p_now)
-- in the order expires_at, issue_date, id: the soonest-expiring lot first. The hold, its draws per
-- lot, one 'hold' journal entry per lot and the wallet's available/held totals are written
-- together, or nothing is. The hold id is the caller's: the same hold placed again is 'exists'.
-- Lock order: the wallet row (wallet_lock), then the lots it draws from, in the order above.
-- Refusals, then success, in the order they are checked (code, usable):
--   1. 'no_wallet'    there is no such wallet (nothing locked, nothing written)
--   2. 'exists'       this very hold (same wallet, points and reference) was placed before
--   3. 'conflict'     the hold id names another hold
--   4. 'insufficient' fewer usable points than p_points (usable: how many there are); nothing written
--   5. 'ok'           placed (usable: p_points)
-- Called by: place_hold in the point ledger (Python turns the codes into INSUFFICIENT_POINTS and
-- HOLD_ID_CONFLICT), and mall_redeem (mall/sql/mall_redeem.sql).
--
-- Migrations apply a frozen copy of this text (last: 0010_rules_as_source); a change here needs a
-- new migration carrying the new text. tests/test_sql_source.py compares this file with the
-- migrated database. Written as pg_get_functiondef prints it (public., full type names, $function$).
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
END $function$;
