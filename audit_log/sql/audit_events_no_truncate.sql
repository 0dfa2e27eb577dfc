-- audit_events_no_truncate: the audit log is never emptied (supervision, Measures art. 30-31).
--
-- Rule: before a TRUNCATE of audit_events, run audit_events_append_only
-- (audit_log/sql/audit_events_append_only.sql), which refuses it.
-- Refusal: the function's (SQLSTATE TPH30).
-- Called by: PostgreSQL, for any TRUNCATE of audit_events (the application never issues one).
--
-- Migrations apply a frozen copy of this text (0024_audit_chain); a change here needs a new migration
-- carrying the new text. tests/structure/test_sql_source.py compares this file with the migrated
-- database. Written as pg_get_triggerdef prints it (public.).
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON public.audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
