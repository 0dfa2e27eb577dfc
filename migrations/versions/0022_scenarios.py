"""Scenarios and their marks (issue 11, art. 25-28): applications with documents and journal, marks
numbered per year, the marks' status history, and the scenario a behaviour report names

Revision ID: 0022_scenarios
Revises: 0021_ets_offsets
Create Date: 2026-12-02 17:40:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0022_scenarios'
down_revision = '0021_ets_offsets'
branch_labels = None
depends_on = None

KINDS = "'mall', 'park', 'metro_line', 'bus_route', 'campus', 'office', 'community', 'public_institution', 'other'"
DISTRICTS = ("'futian', 'luohu', 'yantian', 'nanshan', 'baoan', 'longgang', 'longhua', 'pingshan', 'guangming', "
             "'dapeng', 'shenshan', 'citywide'")


def upgrade() -> None:
    op.create_table('scenarios',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('applicant_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=False),
    sa.Column('district', sa.String(length=16), nullable=False),
    sa.Column('methodology_codes', postgresql.ARRAY(sa.String(length=40)), nullable=False),
    sa.Column('pledge_version', sa.String(length=20), nullable=False),
    sa.Column('pledge_sha256', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('review_id', sa.Uuid(), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.Uuid(), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('under_review', 'granted', 'refused')", name=op.f('ck_scenarios_status_valid')),
    sa.CheckConstraint(f"kind IN ({KINDS})", name=op.f('ck_scenarios_kind_valid')),
    sa.CheckConstraint(f"district IN ({DISTRICTS})", name=op.f('ck_scenarios_district_valid')),
    sa.CheckConstraint('cardinality(methodology_codes) BETWEEN 1 AND 20', name=op.f('ck_scenarios_behaviours_listed')),
    sa.ForeignKeyConstraint(['applicant_id'], ['accounts.id'], name=op.f('fk_scenarios_applicant_id_accounts')),
    sa.ForeignKeyConstraint(['decided_by'], ['accounts.id'], name=op.f('fk_scenarios_decided_by_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scenarios'))
    )
    op.create_index('ix_scenarios_applicant', 'scenarios', ['applicant_id', 'submitted_at', 'id'], unique=False)
    op.create_index('ix_scenarios_status', 'scenarios', ['status', 'submitted_at', 'id'], unique=False)
    op.create_table('scenario_documents',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('scenario_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('file_name', sa.String(length=200), nullable=False),
    sa.Column('media_type', sa.String(length=100), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.CheckConstraint('size_bytes > 0', name=op.f('ck_scenario_documents_size_positive')),
    sa.ForeignKeyConstraint(['scenario_id'], ['scenarios.id'], name=op.f('fk_scenario_documents_scenario_id_scenarios')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scenario_documents')),
    sa.UniqueConstraint('scenario_id', 'file_name', name='uq_scenario_documents_scenario_name')
    )
    op.create_table('scenario_events',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('scenario_id', sa.Uuid(), nullable=False),
    sa.Column('event', sa.String(length=20), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['accounts.id'], name=op.f('fk_scenario_events_actor_id_accounts')),
    sa.ForeignKeyConstraint(['scenario_id'], ['scenarios.id'], name=op.f('fk_scenario_events_scenario_id_scenarios')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scenario_events')),
    sa.UniqueConstraint('seq', name=op.f('uq_scenario_events_seq'))
    )
    op.create_index('ix_scenario_events_scenario', 'scenario_events', ['scenario_id', 'seq'], unique=False)
    op.create_table('scenario_marks',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('scenario_id', sa.Uuid(), nullable=False),
    sa.Column('number', sa.String(length=16), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('status_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'suspended', 'withdrawn')", name=op.f('ck_scenario_marks_status_valid')),
    sa.CheckConstraint('valid_until > granted_at', name=op.f('ck_scenario_marks_validity_positive')),
    sa.CheckConstraint('sequence BETWEEN 1 AND 9999', name=op.f('ck_scenario_marks_sequence_range')),
    sa.ForeignKeyConstraint(['scenario_id'], ['scenarios.id'], name=op.f('fk_scenario_marks_scenario_id_scenarios')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scenario_marks')),
    sa.UniqueConstraint('scenario_id', name='uq_scenario_marks_scenario_id'),
    sa.UniqueConstraint('number', name='uq_scenario_marks_number'),
    sa.UniqueConstraint('year', 'sequence', name='uq_scenario_marks_year_sequence')
    )
    op.create_index('ix_scenario_marks_granted', 'scenario_marks', ['granted_at', 'id'], unique=False)
    op.create_table('scenario_mark_events',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('mark_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('active', 'suspended', 'withdrawn')", name=op.f('ck_scenario_mark_events_status_valid')),
    sa.ForeignKeyConstraint(['actor_id'], ['accounts.id'], name=op.f('fk_scenario_mark_events_actor_id_accounts')),
    sa.ForeignKeyConstraint(['mark_id'], ['scenario_marks.id'], name=op.f('fk_scenario_mark_events_mark_id_scenario_marks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scenario_mark_events')),
    sa.UniqueConstraint('seq', name=op.f('uq_scenario_mark_events_seq'))
    )
    op.create_index('ix_scenario_mark_events_mark', 'scenario_mark_events', ['mark_id', 'seq'], unique=False)
    op.create_table('scenario_mark_counters',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_sequence', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('year', name=op.f('pk_scenario_mark_counters'))
    )
    op.add_column('behaviour_reports', sa.Column('scenario_id', sa.Uuid(), nullable=True))


def downgrade() -> None:
    op.drop_column('behaviour_reports', 'scenario_id')
    op.drop_table('scenario_mark_counters')
    op.drop_index('ix_scenario_mark_events_mark', table_name='scenario_mark_events')
    op.drop_table('scenario_mark_events')
    op.drop_index('ix_scenario_marks_granted', table_name='scenario_marks')
    op.drop_table('scenario_marks')
    op.drop_index('ix_scenario_events_scenario', table_name='scenario_events')
    op.drop_table('scenario_events')
    op.drop_table('scenario_documents')
    op.drop_index('ix_scenarios_status', table_name='scenarios')
    op.drop_index('ix_scenarios_applicant', table_name='scenarios')
    op.drop_table('scenarios')
