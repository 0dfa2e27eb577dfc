"""Reviewed neutrality (art. 19, 经审核后予以注销): applications hold tonnes IN_REVIEW until a reviewer
approves (retires, certifies) or rejects (releases) them; versioned auto-approval policies; revocable
certificates. Existing retirements become approved.

Revision ID: 0012_reviewed_neutrality
Revises: 0011_review_roles
Create Date: 2026-12-02 15:30:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0012_reviewed_neutrality'
down_revision = '0011_review_roles'
branch_labels = None
depends_on = None

STATES_BEFORE = ('held', 'reserved', 'retired', 'cancelled')
STATES_AFTER = ('held', 'reserved', 'in_review', 'retired', 'cancelled')
KINDS_BEFORE = ('issue', 'reserve', 'release', 'deliver', 'retire', 'cancel')
KINDS_AFTER = ('issue', 'reserve', 'release', 'deliver', 'retire', 'review', 'cancel')
PENDING = sa.text("status = 'pending_review'")


def _check(table: str, name: str, column: str, values: tuple[str, ...]) -> None:
    op.drop_constraint(op.f(f'ck_{table}_{name}'), table, type_='check')
    op.create_check_constraint(op.f(f'ck_{table}_{name}'), table,
                               f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")")


def upgrade() -> None:
    _check('cer_blocks', 'state_valid', 'state', STATES_AFTER)
    _check('cer_moves', 'kind_valid', 'kind', KINDS_AFTER)
    op.create_check_constraint(op.f('ck_cer_blocks_in_review_names_retirement'), 'cer_blocks',
                               "state <> 'in_review' OR retirement_id IS NOT NULL")

    op.create_table(
        'cer_neutrality_policies',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('max_tonnes', sa.BigInteger(), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('set_by', sa.Uuid(), nullable=False),
        sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('max_tonnes IS NULL OR max_tonnes > 0', name=op.f('ck_cer_neutrality_policies_max_tonnes_positive')),
        sa.ForeignKeyConstraint(['set_by'], ['accounts.id'], name=op.f('fk_cer_neutrality_policies_set_by_accounts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_cer_neutrality_policies')),
        sa.UniqueConstraint('version', name=op.f('uq_cer_neutrality_policies_version')),
    )

    op.add_column('cer_retirements', sa.Column('status', sa.String(length=16), nullable=False,
                                               server_default='approved'))
    op.alter_column('cer_retirements', 'status', server_default=None)
    op.add_column('cer_retirements', sa.Column('applied_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('cer_retirements', sa.Column('decided_by', sa.Uuid(), nullable=True))
    op.add_column('cer_retirements', sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('cer_retirements', sa.Column('decision_reason', sa.Text(), nullable=True))
    op.add_column('cer_retirements', sa.Column('policy_id', sa.Uuid(), nullable=True))
    # retired at once before review existed: applied, decided and retired at the same instant
    op.execute("UPDATE cer_retirements SET applied_at = retired_at, decided_at = retired_at")
    op.alter_column('cer_retirements', 'applied_at', nullable=False)
    op.alter_column('cer_retirements', 'retired_at', nullable=True)
    op.create_foreign_key(op.f('fk_cer_retirements_decided_by_accounts'), 'cer_retirements', 'accounts',
                          ['decided_by'], ['id'])
    op.create_foreign_key(op.f('fk_cer_retirements_policy_id_cer_neutrality_policies'), 'cer_retirements',
                          'cer_neutrality_policies', ['policy_id'], ['id'])
    op.create_check_constraint(op.f('ck_cer_retirements_status_valid'), 'cer_retirements',
                               "status IN ('pending_review', 'approved', 'rejected')")
    op.create_check_constraint(op.f('ck_cer_retirements_retired_when_approved'), 'cer_retirements',
                               "(status = 'approved') = (retired_at IS NOT NULL)")
    op.create_check_constraint(op.f('ck_cer_retirements_decided_unless_pending'), 'cer_retirements',
                               "(status = 'pending_review') = (decided_at IS NULL)")
    op.create_check_constraint(op.f('ck_cer_retirements_rejection_has_reason'), 'cer_retirements',
                               "status <> 'rejected' OR decision_reason IS NOT NULL")
    op.drop_index('ix_cer_retirements_holder', table_name='cer_retirements')
    op.create_index('ix_cer_retirements_holder', 'cer_retirements', ['holder_id', 'applied_at'], unique=False)
    op.create_index('ix_cer_retirements_pending', 'cer_retirements', ['applied_at', 'id'], unique=False,
                    postgresql_where=PENDING)

    op.create_table(
        'cer_certificate_revocations',
        sa.Column('certificate_id', sa.Uuid(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('revoked_by', sa.Uuid(), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['certificate_id'], ['cer_certificates.id'],
                                name=op.f('fk_cer_certificate_revocations_certificate_id_cer_certificates')),
        sa.ForeignKeyConstraint(['revoked_by'], ['accounts.id'],
                                name=op.f('fk_cer_certificate_revocations_revoked_by_accounts')),
        sa.PrimaryKeyConstraint('certificate_id', name=op.f('pk_cer_certificate_revocations')),
    )


def downgrade() -> None:
    # what only the review flow can write has no form before 0012: refuse rather than lose it
    bind = op.get_bind()
    reviewed = bind.execute(sa.text(
        "SELECT (SELECT count(*) FROM cer_retirements WHERE status <> 'approved')"
        " + (SELECT count(*) FROM cer_moves WHERE kind = 'review')"
        " + (SELECT count(*) FROM cer_certificate_revocations)")).scalar()
    if reviewed:
        raise RuntimeError("Reviewed neutrality applications, review moves or revocations exist; "
                           "0012 cannot be downgraded without losing them.")
    op.drop_table('cer_certificate_revocations')
    op.drop_index('ix_cer_retirements_pending', table_name='cer_retirements', postgresql_where=PENDING)
    op.drop_index('ix_cer_retirements_holder', table_name='cer_retirements')
    op.create_index('ix_cer_retirements_holder', 'cer_retirements', ['holder_id', 'retired_at'], unique=False)
    for name in ('rejection_has_reason', 'decided_unless_pending', 'retired_when_approved', 'status_valid'):
        op.drop_constraint(op.f(f'ck_cer_retirements_{name}'), 'cer_retirements', type_='check')
    op.drop_constraint(op.f('fk_cer_retirements_policy_id_cer_neutrality_policies'), 'cer_retirements',
                       type_='foreignkey')
    op.drop_constraint(op.f('fk_cer_retirements_decided_by_accounts'), 'cer_retirements', type_='foreignkey')
    op.alter_column('cer_retirements', 'retired_at', nullable=False)
    for column in ('policy_id', 'decision_reason', 'decided_at', 'decided_by', 'applied_at', 'status'):
        op.drop_column('cer_retirements', column)
    op.drop_table('cer_neutrality_policies')
    op.drop_constraint(op.f('ck_cer_blocks_in_review_names_retirement'), 'cer_blocks', type_='check')
    _check('cer_moves', 'kind_valid', 'kind', KINDS_BEFORE)
    _check('cer_blocks', 'state_valid', 'state', STATES_BEFORE)
