-- mall_reserve_stock_at_commit: a redemption's stock is taken when its transaction commits
-- (the points mall, Measures art. 23-24).
--
-- Rule: the function of the deferred constraint trigger redemptions_reserve_stock
-- (mall/sql/redemptions_reserve_stock.sql). At commit it locks the listing row (FOR NO KEY UPDATE:
-- other redemptions hold KEY SHARE on it through their foreign key), takes the redeemed quantity
-- from stock_available and writes a 'reserve' stock movement. A listing without stock (a service)
-- is unlimited. The hot listing row is locked only while the transaction commits, and the check
-- runs under that lock, so nothing is ever oversold.
-- Refusal (the only one): not enough stock left -> RAISE SQLSTATE TPH01, message 'OUT_OF_STOCK',
-- detail 'Not enough stock left.', hint 'quantity'; the commit fails and everything rolls back.
-- core/deferred_refusal.py turns SQLSTATE TPH01 into that DomainError (OUT_OF_STOCK on quantity),
-- the same error mall_redeem's earlier check gives.
-- Called by: PostgreSQL, at the commit of a transaction in which mall_redeem
-- (mall/sql/mall_redeem.sql, called by mall/service.py redeem) inserted a redemption.
--
-- Migrations apply a frozen copy of this text (0006_redeem_in_one_round_trip); a change here needs
-- a new migration carrying the new text. tests/test_sql_source.py compares this file with the
-- migrated database. Written as pg_get_functiondef prints it (public., full type names, $function$).
CREATE OR REPLACE FUNCTION public.mall_reserve_stock_at_commit()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
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
END $function$;
