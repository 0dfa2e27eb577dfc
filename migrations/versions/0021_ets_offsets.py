"""The yearly ETS offset scope and compliance surrenders (issue 11, art. 18)

Published scopes per compliance year (versions; a correction supersedes), surrenders of CERs for
ETS compliance, and the final block state `surrendered` (state columns widened to 12 characters).

Revision ID: 0021_ets_offsets
Revises: 0020_methodology_retired_at
Create Date: 2026-12-02 17:40:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0021_ets_offsets'
down_revision = '0020_methodology_retired_at'
branch_labels = None
depends_on = None

STATES_BEFORE = ('held', 'reserved', 'in_review', 'retired', 'cancelled')
STATES_AFTER = STATES_BEFORE + ('surrendered',)
KINDS_BEFORE = ('issue', 'reserve', 'release', 'deliver', 'retire', 'review', 'cancel')
KINDS_AFTER = KINDS_BEFORE + ('surrender',)


def _check(table: str, name: str, column: str, values: tuple[str, ...]) -> None:
    op.drop_constraint(op.f(f'ck_{table}_{name}'), table, type_='check')
    op.create_check_constraint(op.f(f'ck_{table}_{name}'), table,
                               f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")")


def _widths(length: int) -> None:
    op.alter_column('cer_blocks', 'state', type_=sa.String(length=length), existing_nullable=False)
    op.alter_column('cer_moves', 'from_state', type_=sa.String(length=length), existing_nullable=True)
    op.alter_column('cer_moves', 'to_state', type_=sa.String(length=length), existing_nullable=False)


def upgrade() -> None:
    _widths(12)
    _check('cer_blocks', 'state_valid', 'state', STATES_AFTER)
    _check('cer_moves', 'kind_valid', 'kind', KINDS_AFTER)
    op.add_column('cer_blocks', sa.Column('surrender_id', sa.Uuid(), nullable=True))
    op.create_check_constraint(op.f('ck_cer_blocks_surrendered_names_surrender'), 'cer_blocks',
                               "state <> 'surrendered' OR surrender_id IS NOT NULL")

    op.create_table(
        'ets_offset_scopes',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('vintages', postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column('project_kinds', postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column('methodology_codes', postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column('cap_tonnes', sa.BigInteger(), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('created_by', sa.Uuid(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('published_by', sa.Uuid(), nullable=True),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('supersedes_id', sa.Uuid(), nullable=True),
        sa.CheckConstraint("status IN ('draft', 'published', 'superseded')", name=op.f('ck_ets_offset_scopes_status_valid')),
        sa.CheckConstraint('year BETWEEN 2000 AND 2100', name=op.f('ck_ets_offset_scopes_year_sane')),
        sa.CheckConstraint('version >= 1', name=op.f('ck_ets_offset_scopes_version_positive')),
        sa.CheckConstraint('cap_tonnes >= 0', name=op.f('ck_ets_offset_scopes_cap_not_negative')),
        sa.ForeignKeyConstraint(['created_by'], ['accounts.id'], name=op.f('fk_ets_offset_scopes_created_by_accounts')),
        sa.ForeignKeyConstraint(['published_by'], ['accounts.id'],
                                name=op.f('fk_ets_offset_scopes_published_by_accounts')),
        sa.ForeignKeyConstraint(['supersedes_id'], ['ets_offset_scopes.id'],
                                name=op.f('fk_ets_offset_scopes_supersedes_id_ets_offset_scopes')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ets_offset_scopes')),
        sa.UniqueConstraint('year', 'version', name='uq_ets_offset_scopes_year_version'),
    )
    op.create_index('uq_ets_offset_scopes_year_published', 'ets_offset_scopes', ['year'], unique=True,
                    postgresql_where=sa.text("status = 'published'"))

    op.create_table(
        'ets_surrenders',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('holder_id', sa.Uuid(), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('scope_id', sa.Uuid(), nullable=False),
        sa.Column('entity_name', sa.String(length=200), nullable=False),
        sa.Column('entity_code', sa.String(length=18), nullable=False),
        sa.Column('tonnes', sa.BigInteger(), nullable=False),
        sa.Column('serials', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('surrendered_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('tonnes > 0', name=op.f('ck_ets_surrenders_tonnes_positive')),
        sa.ForeignKeyConstraint(['holder_id'], ['accounts.id'], name=op.f('fk_ets_surrenders_holder_id_accounts')),
        sa.ForeignKeyConstraint(['scope_id'], ['ets_offset_scopes.id'],
                                name=op.f('fk_ets_surrenders_scope_id_ets_offset_scopes')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ets_surrenders')),
    )
    op.create_index('ix_ets_surrenders_year', 'ets_surrenders', ['year', 'surrendered_at', 'id'], unique=False)
    op.create_index('ix_ets_surrenders_holder', 'ets_surrenders', ['holder_id', 'surrendered_at', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_ets_surrenders_holder', table_name='ets_surrenders')
    op.drop_index('ix_ets_surrenders_year', table_name='ets_surrenders')
    op.drop_table('ets_surrenders')
    op.drop_index('uq_ets_offset_scopes_year_published', table_name='ets_offset_scopes',
                  postgresql_where=sa.text("status = 'published'"))
    op.drop_table('ets_offset_scopes')
    op.drop_constraint(op.f('ck_cer_blocks_surrendered_names_surrender'), 'cer_blocks', type_='check')
    op.drop_column('cer_blocks', 'surrender_id')
    _check('cer_moves', 'kind_valid', 'kind', KINDS_BEFORE)
    _check('cer_blocks', 'state_valid', 'state', STATES_BEFORE)
    _widths(10)
