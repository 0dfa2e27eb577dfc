"""When a methodology version was retired (issue 11, art. 29: the disclosure list shows every
version's status history: published and retired dates)

Revision ID: 0020_methodology_retired_at
Revises: 0019_measures_versions
Create Date: 2026-12-02 17:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0020_methodology_retired_at'
down_revision = '0019_measures_versions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('methodologies', sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('methodologies', 'retired_at')
