"""certificates: indexes for a holder's certificates and a retirement's live serials

Revision ID: 0005_certificates
Revises: 0004_neutrality
Create Date: 2026-11-25 10:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0005_certificates'
down_revision = '0004_neutrality'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_cer_certificates_holder', 'cer_certificates', ['holder_id', 'issued_at'], unique=False)
    op.create_index('ix_cer_blocks_retirement', 'cer_blocks', ['retirement_id'], unique=False,
                    postgresql_where=sa.text('retirement_id IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_cer_blocks_retirement', table_name='cer_blocks', postgresql_where=sa.text('retirement_id IS NOT NULL'))
    op.drop_index('ix_cer_certificates_holder', table_name='cer_certificates')
