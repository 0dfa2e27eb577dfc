-- audit_events_append_only: the audit log is append-only in the database, not only in the code
-- (supervision, Measures art. 30-31).
--
-- Rule: the function of the triggers audit_events_no_update_delete and audit_events_no_truncate
-- (audit_log/sql/): any UPDATE, DELETE or TRUNCATE of audit_events is refused, whoever asks.
-- Refusal (the only one): RAISE SQLSTATE TPH30, 'audit_events is append-only: <operation> refused';
-- the statement and its transaction fail.
-- Called by: PostgreSQL, before each UPDATE or DELETE of a row and each TRUNCATE of audit_events.
-- A superuser who drops the triggers can change rows; the hash chain (audit_log/chain.py) and
-- `tanpuhui audit-verify` find what changed.
--
-- Migrations apply a frozen copy of this text (0024_audit_chain); a change here needs a new migration
-- carrying the new text. tests/structure/test_sql_source.py compares this file with the migrated
-- database. Written as pg_get_functiondef prints it (public., $function$).
CREATE OR REPLACE FUNCTION public.audit_events_append_only()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP USING ERRCODE = 'TPH30';
END $function$;
