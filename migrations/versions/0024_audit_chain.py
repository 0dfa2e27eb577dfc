"""The supervision audit log (issue 11, art. 30-31): audit_events becomes an append-only, gap-free,
hash-chained log. Adds seq, the actor's roles, before/after, prev_hash and hash; chains the rows
already there in (at, id) order; a trigger refuses UPDATE, DELETE and TRUNCATE.

The trigger stops the application and anyone without the right to drop it. A superuser can drop
it; what they change then is found by `tanpuhui audit-verify` (the chain, audit_log/chain.py),
and a wholesale rewrite of the chain by comparing with a head recorded outside the database
(`audit-verify --anchor SEQ:HASH`). README, "Supervision: the audit log".

Revision ID: 0024_audit_chain
Revises: 0023_supervision
Create Date: 2026-12-02 17:40:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from audit_log.chain import GENESIS, entry_fields, entry_hash

revision = '0024_audit_chain'
down_revision = '0023_supervision'
branch_labels = None
depends_on = None

# frozen copies of audit_log/sql/*.sql as they are at this migration (core/sql_source.py)
APPEND_ONLY = ("""
CREATE OR REPLACE FUNCTION public.audit_events_append_only()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP USING ERRCODE = 'TPH30';
END $function$""", """
CREATE TRIGGER audit_events_no_update_delete BEFORE DELETE OR UPDATE ON public.audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()""", """
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON public.audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()""")


def _chain_existing_rows() -> None:
    """Number and chain the rows written before the chain, in (at, id) order, a page at a time.
    Their actor_roles stay empty: who held which role then is not known."""
    bind = op.get_bind()
    events = sa.table('audit_events', *(sa.column(c) for c in (
        'id', 'seq', 'actor_account_id', 'actor_roles', 'action', 'subject_type', 'subject_id', 'details',
        'before', 'after', 'at', 'prev_hash', 'hash')))
    seq, prev_hash, last = 0, GENESIS, None
    while True:
        stmt = sa.select(events.c.id, events.c.at, events.c.actor_account_id, events.c.action,
                         events.c.subject_type, events.c.subject_id, events.c.details)
        if last is not None:
            stmt = stmt.where(sa.tuple_(events.c.at, events.c.id) > sa.tuple_(*last))
        rows = bind.execute(stmt.order_by(events.c.at, events.c.id).limit(1000)).all()
        for row in rows:
            seq += 1
            digest = entry_hash(entry_fields(
                seq=seq, id=row.id, at=row.at, actor_account_id=row.actor_account_id, actor_roles=[],
                action=row.action, subject_type=row.subject_type, subject_id=row.subject_id,
                details=row.details, before=None, after=None, prev_hash=prev_hash))
            bind.execute(events.update().where(events.c.id == row.id).values(
                seq=seq, prev_hash=prev_hash, hash=digest))
            prev_hash = digest
        if len(rows) < 1000:
            break
        last = (rows[-1].at, rows[-1].id)


def upgrade() -> None:
    op.add_column('audit_events', sa.Column('seq', sa.BigInteger(), nullable=True))
    op.add_column('audit_events', sa.Column('actor_roles', postgresql.ARRAY(sa.String(length=20)),
                                            server_default=sa.text("'{}'::varchar[]"), nullable=False))
    op.add_column('audit_events', sa.Column('before', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column('audit_events', sa.Column('after', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column('audit_events', sa.Column('prev_hash', sa.String(length=64), nullable=True))
    op.add_column('audit_events', sa.Column('hash', sa.String(length=64), nullable=True))
    _chain_existing_rows()
    for column in ('seq', 'prev_hash', 'hash'):
        op.alter_column('audit_events', column, nullable=False)
    op.create_unique_constraint(op.f('uq_audit_events_seq'), 'audit_events', ['seq'])
    op.create_check_constraint(op.f('ck_audit_events_seq_positive'), 'audit_events', 'seq >= 1')
    op.create_check_constraint(op.f('ck_audit_events_hashes_sha256'), 'audit_events',
                               'length(hash) = 64 AND length(prev_hash) = 64')
    op.create_index('ix_audit_events_actor_seq', 'audit_events', ['actor_account_id', 'seq'], unique=False)
    op.create_index('ix_audit_events_subject_seq', 'audit_events', ['subject_type', 'subject_id', 'seq'],
                    unique=False)
    op.create_index('ix_audit_events_action_seq', 'audit_events', ['action', 'seq'], unique=False)
    for statement in APPEND_ONLY:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_events_no_truncate ON audit_events")
    op.execute("DROP TRIGGER audit_events_no_update_delete ON audit_events")
    op.execute("DROP FUNCTION audit_events_append_only()")
    op.drop_index('ix_audit_events_action_seq', table_name='audit_events')
    op.drop_index('ix_audit_events_subject_seq', table_name='audit_events')
    op.drop_index('ix_audit_events_actor_seq', table_name='audit_events')
    op.drop_constraint(op.f('ck_audit_events_hashes_sha256'), 'audit_events', type_='check')
    op.drop_constraint(op.f('ck_audit_events_seq_positive'), 'audit_events', type_='check')
    op.drop_constraint(op.f('uq_audit_events_seq'), 'audit_events', type_='unique')
    for column in ('hash', 'prev_hash', 'after', 'before', 'actor_roles', 'seq'):
        op.drop_column('audit_events', column)
