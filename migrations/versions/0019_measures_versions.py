"""The Measures' own period (issue 11, art. 33): versions of the rules, the 2022 Measures seeded

Revision ID: 0019_measures_versions
Revises: 0014_methodology_filing
Create Date: 2026-12-02 17:40:00
"""
from datetime import date, datetime, timezone
import uuid

import sqlalchemy as sa
from alembic import op

revision = '0019_measures_versions'
down_revision = '0014_methodology_filing'
branch_labels = None
depends_on = None

# sha256 of the Measures' text as published (the file in the brief's seed/ folder, UTF-8)
MEASURES_2022_SHA256 = "2a68e6997837cfebe8949c0b076acd5f9948c17c207b3f92dc9621c4c9ac265d"


def upgrade() -> None:
    table = op.create_table('measures_versions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('source_reference', sa.String(length=200), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('effective_until', sa.Date(), nullable=True),
    sa.Column('max_point_validity_years', sa.Integer(), nullable=False),
    sa.Column('text_sha256', sa.String(length=64), nullable=False),
    sa.Column('entered_by', sa.Uuid(), nullable=True),
    sa.Column('entered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint('version >= 1', name=op.f('ck_measures_versions_version_positive')),
    sa.CheckConstraint('effective_until IS NULL OR effective_until >= effective_from',
                       name=op.f('ck_measures_versions_period_ordered')),
    sa.CheckConstraint('max_point_validity_years BETWEEN 1 AND 10', name=op.f('ck_measures_versions_validity_in_range')),
    sa.CheckConstraint("text_sha256 ~ '^[0-9a-f]{64}$'", name=op.f('ck_measures_versions_text_sha256_hex')),
    sa.ForeignKeyConstraint(['entered_by'], ['accounts.id'], name=op.f('fk_measures_versions_entered_by_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_measures_versions')),
    sa.UniqueConstraint('version', name='uq_measures_versions_version'),
    sa.UniqueConstraint('effective_from', name='uq_measures_versions_effective_from')
    )
    op.bulk_insert(table, [{
        'id': uuid.UUID('5a4d0f6e-0000-4000-8000-000000002022'), 'version': 1,
        'title': '深圳市碳普惠管理办法 (Shenzhen Carbon Inclusion Measures)',
        'source_reference': '深圳市生态环境局, 2022; art. 33: in force from 2022-08-18 for five years',
        'effective_from': date(2022, 8, 18), 'effective_until': date(2027, 8, 17),
        'max_point_validity_years': 10, 'text_sha256': MEASURES_2022_SHA256,
        'entered_by': None, 'entered_at': datetime(2022, 8, 18, 0, 0, tzinfo=timezone.utc), 'note': None,
    }])


def downgrade() -> None:
    op.drop_table('measures_versions')
