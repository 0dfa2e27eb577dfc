"""The supervision audit log (art. 30-31): every act of the regulator and of reviewers, append-only
and hash-chained. Domain packages call `record_audit_event`; this package imports no domain."""
