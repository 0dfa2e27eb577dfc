-- redemptions_reserve_stock: the trigger that takes a redemption's stock when its transaction
-- commits (the points mall, Measures art. 23-24).
--
-- Rule: a constraint trigger, DEFERRABLE INITIALLY DEFERRED, after each redemption inserted: it
-- runs mall_reserve_stock_at_commit (mall/sql/mall_reserve_stock_at_commit.sql) at commit, so the
-- hot listing row is locked only while the transaction commits.
-- Refusal: the function's (not enough stock left: SQLSTATE TPH01, OUT_OF_STOCK on quantity).
-- Called by: PostgreSQL, for the redemptions mall_redeem inserts (mall/service.py redeem).
--
-- Migrations apply a frozen copy of this text (0006_redeem_in_one_round_trip); a change here needs
-- a new migration carrying the new text. tests/test_sql_source.py compares this file with the
-- migrated database. Written as pg_get_triggerdef prints it (public.).
CREATE CONSTRAINT TRIGGER redemptions_reserve_stock AFTER INSERT ON public.redemptions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION mall_reserve_stock_at_commit();
