-- wallet_lock: the wallet row lock of the database functions (the point ledger, Measures art. 20-23).
--
-- Rule: a wallet is locked FOR UPDATE before anything else of it is read or written, so one
-- person's holds and redemptions take turns (lock order everywhere: the wallet row, then its lots,
-- then a listing row).
-- Refusals: none of its own. It returns false, having locked nothing, when there is no such
-- wallet; the caller decides what that means (wallet_place_hold answers 'no_wallet').
-- Called by: wallet_place_hold (wallets/sql/wallet_place_hold.sql) and mall_redeem
-- (mall/sql/mall_redeem.sql). Python takes the same lock in wallets/lock.py.
--
-- Migrations apply a frozen copy of this text (first 0010_rules_as_source); a change here needs a
-- new migration carrying the new text. tests/test_sql_source.py compares this file with the
-- migrated database. Written as pg_get_functiondef prints it (public., full type names, $function$).
CREATE OR REPLACE FUNCTION public.wallet_lock(p_wallet uuid)
 RETURNS boolean
 LANGUAGE plpgsql
AS $function$
-- Lock the wallet row; false (nothing locked) when there is no such wallet.
BEGIN
    PERFORM 1 FROM wallets WHERE account_id = p_wallet FOR UPDATE;
    RETURN FOUND;
END $function$;
