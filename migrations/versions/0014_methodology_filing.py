"""Methodology filing (issue 10, art. 11-13): calculation kinds, applications with their documents
and journal, reports' baseline and actual quantities; the household-electricity methodology (example factor)

Revision ID: 0014_methodology_filing
Revises: 0013_working_day_calendar
Create Date: 2026-12-02 15:10:00
"""
import uuid
from datetime import date, datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = '0014_methodology_filing'
down_revision = '0013_working_day_calendar'
branch_labels = None
depends_on = None

HOUSEHOLD_POWER = uuid.UUID("5a0d1c2e-0000-4000-8000-000000000003")


def upgrade() -> None:
    op.create_table('methodology_applications',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('applicant_id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('behaviour_domain', sa.String(length=40), nullable=False),
    sa.Column('activity_unit', sa.String(length=20), nullable=False),
    sa.Column('calculation', sa.String(length=24), server_default='factor_per_unit', nullable=False),
    sa.Column('factor_mg_per_unit', sa.BigInteger(), nullable=False),
    sa.Column('max_quantity_milli', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('review_id', sa.Uuid(), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.Uuid(), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('methodology_id', sa.Uuid(), nullable=True),
    sa.CheckConstraint("calculation IN ('factor_per_unit', 'baseline_minus_actual')", name=op.f('ck_methodology_applications_calculation_valid')),
    sa.CheckConstraint("status IN ('under_review', 'filed', 'refused')", name=op.f('ck_methodology_applications_status_valid')),
    sa.CheckConstraint('factor_mg_per_unit > 0', name=op.f('ck_methodology_applications_factor_positive')),
    sa.CheckConstraint('max_quantity_milli > 0', name=op.f('ck_methodology_applications_max_quantity_positive')),
    sa.ForeignKeyConstraint(['applicant_id'], ['accounts.id'], name=op.f('fk_methodology_applications_applicant_id_accounts')),
    sa.ForeignKeyConstraint(['decided_by'], ['accounts.id'], name=op.f('fk_methodology_applications_decided_by_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_methodology_applications'))
    )
    op.create_index('ix_methodology_applications_applicant', 'methodology_applications', ['applicant_id', 'submitted_at', 'id'], unique=False)
    op.create_index('ix_methodology_applications_status', 'methodology_applications', ['status', 'submitted_at', 'id'], unique=False)
    op.create_table('methodology_documents',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('application_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('file_name', sa.String(length=200), nullable=False),
    sa.Column('media_type', sa.String(length=100), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.CheckConstraint("kind IN ('application_form', 'methodology_text', 'drafting_notes')", name=op.f('ck_methodology_documents_kind_valid')),
    sa.CheckConstraint('size_bytes > 0', name=op.f('ck_methodology_documents_size_positive')),
    sa.ForeignKeyConstraint(['application_id'], ['methodology_applications.id'], name=op.f('fk_methodology_documents_application_id_methodology_applications')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_methodology_documents')),
    sa.UniqueConstraint('application_id', 'kind', name='uq_methodology_documents_application_kind')
    )
    op.create_table('methodology_application_events',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('application_id', sa.Uuid(), nullable=False),
    sa.Column('event', sa.String(length=20), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['accounts.id'], name=op.f('fk_methodology_application_events_actor_id_accounts')),
    sa.ForeignKeyConstraint(['application_id'], ['methodology_applications.id'], name=op.f('fk_methodology_application_events_application_id_methodology_applications')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_methodology_application_events')),
    sa.UniqueConstraint('seq', name=op.f('uq_methodology_application_events_seq'))
    )
    op.create_index('ix_methodology_application_events_application', 'methodology_application_events', ['application_id', 'seq'], unique=False)

    op.add_column('methodologies', sa.Column('calculation', sa.String(length=24), server_default='factor_per_unit', nullable=False))
    op.add_column('methodologies', sa.Column('application_id', sa.Uuid(), nullable=True))
    op.create_foreign_key(op.f('fk_methodologies_application_id_methodology_applications'), 'methodologies', 'methodology_applications', ['application_id'], ['id'])
    op.create_check_constraint(op.f('ck_methodologies_calculation_valid'), 'methodologies',
                               "calculation IN ('factor_per_unit', 'baseline_minus_actual')")

    op.add_column('behaviour_reports', sa.Column('baseline_milli', sa.BigInteger(), nullable=True))
    op.add_column('behaviour_reports', sa.Column('actual_milli', sa.BigInteger(), nullable=True))
    op.create_check_constraint(op.f('ck_behaviour_reports_baseline_with_actual'), 'behaviour_reports',
                               "(baseline_milli IS NULL) = (actual_milli IS NULL)")

    # Shenzhen's residential low-carbon electricity methodology (2022-06, BRIEF.md) has the
    # baseline shape; its factor is not collected here, so the national average grid emission
    # factor stands in (0.5703 tCO2/MWh = 570,300 mg per kWh), marked as an example.
    published = datetime(2022, 6, 1, tzinfo=timezone.utc)
    methodologies = sa.table(
        "methodologies", sa.column("id", sa.Uuid), sa.column("code", sa.String), sa.column("version", sa.Integer),
        sa.column("name", sa.String), sa.column("behaviour_domain", sa.String), sa.column("activity_unit", sa.String),
        sa.column("calculation", sa.String), sa.column("factor_mg_per_unit", sa.BigInteger),
        sa.column("max_quantity_milli", sa.BigInteger), sa.column("effective_from", sa.Date),
        sa.column("status", sa.String), sa.column("source_reference", sa.Text), sa.column("is_example", sa.Boolean),
        sa.column("created_at", sa.DateTime(timezone=True)), sa.column("published_at", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(methodologies, [
        dict(id=HOUSEHOLD_POWER, code="SZ-HOME-POWER", version=1,
             name="深圳市居民低碳用电碳普惠方法学 Residential low-carbon electricity use",
             behaviour_domain="household_electricity", activity_unit="kWh", calculation="baseline_minus_actual",
             factor_mg_per_unit=570_300, max_quantity_milli=1_000_000, effective_from=date(2022, 6, 1),
             status="published",
             source_reference="Shenzhen carbon-inclusion methodology, residential low-carbon electricity use, 2022-06: "
                              "baseline minus actual daily consumption; factor here the national average grid "
                              "emission factor 0.5703 tCO2/MWh (example, not the Shenzhen figure)",
             is_example=True, created_at=published, published_at=published),
    ])


def downgrade() -> None:
    op.execute(f"DELETE FROM methodologies WHERE id = '{HOUSEHOLD_POWER}' OR application_id IS NOT NULL")
    op.drop_constraint(op.f('ck_behaviour_reports_baseline_with_actual'), 'behaviour_reports', type_='check')
    op.drop_column('behaviour_reports', 'actual_milli')
    op.drop_column('behaviour_reports', 'baseline_milli')
    op.drop_constraint(op.f('ck_methodologies_calculation_valid'), 'methodologies', type_='check')
    op.drop_constraint(op.f('fk_methodologies_application_id_methodology_applications'), 'methodologies', type_='foreignkey')
    op.drop_column('methodologies', 'application_id')
    op.drop_column('methodologies', 'calculation')
    op.drop_index('ix_methodology_application_events_application', table_name='methodology_application_events')
    op.drop_table('methodology_application_events')
    op.drop_table('methodology_documents')
    op.drop_index('ix_methodology_applications_status', table_name='methodology_applications')
    op.drop_index('ix_methodology_applications_applicant', table_name='methodology_applications')
    op.drop_table('methodology_applications')
