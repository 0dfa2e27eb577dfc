"""The working-day calendar (issue 10, art. 16): the official schedules the regulator enters per year

A year the `chinesecalendar` package does not cover gets its holidays and make-up working days
(调休) as the State Council published them; append-only, the latest version of a year counts.

Revision ID: 0013_working_day_calendar
Revises: 0011_review_roles
Create Date: 2026-12-02 15:30:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0013_working_day_calendar'
down_revision = '0011_review_roles'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('working_day_schedules',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('holidays', postgresql.ARRAY(sa.Date()), nullable=False),
    sa.Column('makeup_workdays', postgresql.ARRAY(sa.Date()), nullable=False),
    sa.Column('source_reference', sa.Text(), nullable=False),
    sa.Column('entered_by', sa.Uuid(), nullable=False),
    sa.Column('entered_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('year BETWEEN 2000 AND 2100', name=op.f('ck_working_day_schedules_year_sane')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_working_day_schedules_version_positive')),
    sa.ForeignKeyConstraint(['entered_by'], ['accounts.id'], name=op.f('fk_working_day_schedules_entered_by_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_working_day_schedules')),
    sa.UniqueConstraint('year', 'version', name='uq_working_day_schedules_year_version')
    )


def downgrade() -> None:
    op.drop_table('working_day_schedules')
