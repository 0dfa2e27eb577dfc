"""The technical review (issue 10): the roles EXPERT (art. 8), VERIFIER (art. 17, 32) and
NEUTRALITY_REVIEWER (art. 19); the expert library, reviews with re-checkable draws, seats and
opinions, their journal; verifier commissions, sanctions for false reports, frozen projects.

Verifier reports from before keep no verifier account or commission (their owner typed them in);
they stay as they were, and the registry shows them as such.

Revision ID: 0011_review_roles
Revises: 0010_rules_as_source
Create Date: 2026-12-02 15:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0011_review_roles'
down_revision = '0010_rules_as_source'
branch_labels = None
depends_on = None

BEFORE = ('individual', 'organisation', 'app_operator', 'merchant', 'project_owner', 'regulator')
AFTER = BEFORE + ('expert', 'verifier', 'neutrality_reviewer')


def _roles(values: tuple[str, ...]) -> None:
    op.drop_constraint(op.f('ck_account_roles_role_valid'), 'account_roles', type_='check')
    op.create_check_constraint(op.f('ck_account_roles_role_valid'), 'account_roles',
                               "role IN (" + ", ".join(f"'{v}'" for v in values) + ")")


def upgrade() -> None:
    _roles(AFTER)
    op.create_table('experts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('affiliation', sa.String(length=200), nullable=False),
    sa.Column('fields', postgresql.ARRAY(sa.String(length=60)), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('added_by', sa.Uuid(), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('active', 'suspended')", name=op.f('ck_experts_status_valid')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_experts_account_id_accounts')),
    sa.ForeignKeyConstraint(['added_by'], ['accounts.id'], name=op.f('fk_experts_added_by_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_experts')),
    sa.UniqueConstraint('account_id', name=op.f('uq_experts_account_id'))
    )
    op.create_index('ix_experts_name', 'experts', ['name', 'id'], unique=False)
    op.create_table('reviews',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('subject_kind', sa.String(length=30), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('field', sa.String(length=60), nullable=False),
    sa.Column('experts_wanted', sa.Integer(), nullable=False),
    sa.Column('parties', postgresql.ARRAY(postgresql.UUID(as_uuid=True)), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('next_seed', sa.LargeBinary(length=32), nullable=False),
    sa.Column('next_commitment', sa.String(length=64), nullable=False),
    sa.Column('draws_done', sa.Integer(), nullable=False),
    sa.Column('opened_by', sa.Uuid(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decision', sa.String(length=10), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('decided_by', sa.Uuid(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(status = 'decided') = (decision IS NOT NULL)", name=op.f('ck_reviews_decided_has_decision')),
    sa.CheckConstraint("decision IS NULL OR decision IN ('approved', 'refused')", name=op.f('ck_reviews_decision_valid')),
    sa.CheckConstraint("status IN ('open', 'drawn', 'decided')", name=op.f('ck_reviews_status_valid')),
    sa.CheckConstraint("subject_kind IN ('methodology_application', 'project_verification', 'scenario_application')", name=op.f('ck_reviews_subject_kind_valid')),
    sa.CheckConstraint('experts_wanted BETWEEN 1 AND 15', name=op.f('ck_reviews_seats_sane')),
    sa.ForeignKeyConstraint(['decided_by'], ['accounts.id'], name=op.f('fk_reviews_decided_by_accounts')),
    sa.ForeignKeyConstraint(['opened_by'], ['accounts.id'], name=op.f('fk_reviews_opened_by_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reviews'))
    )
    op.create_index('ix_reviews_status', 'reviews', ['status', 'opened_at', 'id'], unique=False)
    op.create_index('ix_reviews_subject', 'reviews', ['subject_kind', 'subject_id', 'opened_at'], unique=False)
    op.create_table('cer_verifier_commissions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('verifier_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('commissioned_by', sa.Uuid(), nullable=False),
    sa.Column('commissioned_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('experts_wanted', sa.Integer(), nullable=False),
    sa.Column('documents', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('report_sha256', sa.String(length=64), nullable=True),
    sa.Column('reported_by', sa.Uuid(), nullable=True),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('review_id', sa.Uuid(), nullable=True),
    sa.Column('withdrawn_reason', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('commissioned', 'reported', 'withdrawn')", name=op.f('ck_cer_verifier_commissions_status_valid')),
    sa.ForeignKeyConstraint(['commissioned_by'], ['accounts.id'], name=op.f('fk_cer_verifier_commissions_commissioned_by_accounts')),
    sa.ForeignKeyConstraint(['project_id'], ['cer_projects.id'], name=op.f('fk_cer_verifier_commissions_project_id_cer_projects')),
    sa.ForeignKeyConstraint(['reported_by'], ['accounts.id'], name=op.f('fk_cer_verifier_commissions_reported_by_accounts')),
    sa.ForeignKeyConstraint(['verifier_id'], ['accounts.id'], name=op.f('fk_cer_verifier_commissions_verifier_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cer_verifier_commissions'))
    )
    op.create_index('ix_cer_verifier_commissions_verifier', 'cer_verifier_commissions', ['verifier_id', 'commissioned_at', 'id'], unique=False)
    op.create_index('uq_cer_verifier_commissions_project_live', 'cer_verifier_commissions', ['project_id'], unique=True, postgresql_where=sa.text("status <> 'withdrawn'"))
    op.create_table('expert_conflicts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('expert_id', sa.Uuid(), nullable=False),
    sa.Column('organisation_id', sa.Uuid(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('declared_by', sa.Uuid(), nullable=False),
    sa.Column('declared_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['declared_by'], ['accounts.id'], name=op.f('fk_expert_conflicts_declared_by_accounts')),
    sa.ForeignKeyConstraint(['expert_id'], ['experts.id'], name=op.f('fk_expert_conflicts_expert_id_experts')),
    sa.ForeignKeyConstraint(['organisation_id'], ['accounts.id'], name=op.f('fk_expert_conflicts_organisation_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_expert_conflicts')),
    sa.UniqueConstraint('expert_id', 'organisation_id', name='uq_expert_conflicts_pair')
    )
    op.create_index('ix_expert_conflicts_organisation', 'expert_conflicts', ['organisation_id'], unique=False)
    op.create_table('review_draws',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('review_id', sa.Uuid(), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('seed', sa.LargeBinary(length=32), nullable=False),
    sa.Column('commitment', sa.String(length=64), nullable=False),
    sa.Column('pool', postgresql.ARRAY(postgresql.UUID(as_uuid=True)), nullable=False),
    sa.Column('seats', sa.Integer(), nullable=False),
    sa.Column('chosen', postgresql.ARRAY(postgresql.UUID(as_uuid=True)), nullable=False),
    sa.Column('drawn_by', sa.Uuid(), nullable=False),
    sa.Column('drawn_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['drawn_by'], ['accounts.id'], name=op.f('fk_review_draws_drawn_by_accounts')),
    sa.ForeignKeyConstraint(['review_id'], ['reviews.id'], name=op.f('fk_review_draws_review_id_reviews')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_draws')),
    sa.UniqueConstraint('review_id', 'round', name='uq_review_draws_round')
    )
    op.create_table('review_events',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('review_id', sa.Uuid(), nullable=False),
    sa.Column('action', sa.String(length=30), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['accounts.id'], name=op.f('fk_review_events_actor_id_accounts')),
    sa.ForeignKeyConstraint(['review_id'], ['reviews.id'], name=op.f('fk_review_events_review_id_reviews')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_events')),
    sa.UniqueConstraint('seq', name=op.f('uq_review_events_seq'))
    )
    op.create_index('ix_review_events_review', 'review_events', ['review_id', 'seq'], unique=False)
    op.create_table('review_seats',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('review_id', sa.Uuid(), nullable=False),
    sa.Column('expert_id', sa.Uuid(), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('opinion', sa.String(length=20), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('drawn_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(status = 'answered') = (opinion IS NOT NULL)", name=op.f('ck_review_seats_answered_has_opinion')),
    sa.CheckConstraint("opinion IS NULL OR opinion IN ('pass', 'pass_with_changes', 'fail')", name=op.f('ck_review_seats_opinion_valid')),
    sa.CheckConstraint("status IN ('seated', 'answered', 'declined')", name=op.f('ck_review_seats_status_valid')),
    sa.ForeignKeyConstraint(['expert_id'], ['experts.id'], name=op.f('fk_review_seats_expert_id_experts')),
    sa.ForeignKeyConstraint(['review_id'], ['reviews.id'], name=op.f('fk_review_seats_review_id_reviews')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_seats')),
    sa.UniqueConstraint('review_id', 'expert_id', name='uq_review_seats_expert')
    )
    op.create_index('ix_review_seats_expert', 'review_seats', ['expert_id', 'drawn_at', 'id'], unique=False)
    op.create_table('cer_verifier_sanctions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('verifier_id', sa.Uuid(), nullable=False),
    sa.Column('commission_id', sa.Uuid(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('froze_unsold', sa.Boolean(), nullable=False),
    sa.Column('recorded_by', sa.Uuid(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lifted_by', sa.Uuid(), nullable=True),
    sa.Column('lifted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lift_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['commission_id'], ['cer_verifier_commissions.id'], name=op.f('fk_cer_verifier_sanctions_commission_id_cer_verifier_commissions')),
    sa.ForeignKeyConstraint(['lifted_by'], ['accounts.id'], name=op.f('fk_cer_verifier_sanctions_lifted_by_accounts')),
    sa.ForeignKeyConstraint(['recorded_by'], ['accounts.id'], name=op.f('fk_cer_verifier_sanctions_recorded_by_accounts')),
    sa.ForeignKeyConstraint(['verifier_id'], ['accounts.id'], name=op.f('fk_cer_verifier_sanctions_verifier_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cer_verifier_sanctions'))
    )
    op.create_index('ix_cer_verifier_sanctions_verifier', 'cer_verifier_sanctions', ['verifier_id', 'recorded_at'], unique=False)
    op.add_column('cer_projects', sa.Column('frozen_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('cer_projects', sa.Column('frozen_reason', sa.Text(), nullable=True))
    op.add_column('cer_verifier_reports', sa.Column('verifier_id', sa.Uuid(), nullable=True))
    op.add_column('cer_verifier_reports', sa.Column('commission_id', sa.Uuid(), nullable=True))
    op.create_index('ix_cer_verifier_reports_verifier', 'cer_verifier_reports', ['verifier_id'], unique=False, postgresql_where=sa.text('verifier_id IS NOT NULL'))
    op.create_foreign_key(op.f('fk_cer_verifier_reports_commission_id_cer_verifier_commissions'), 'cer_verifier_reports', 'cer_verifier_commissions', ['commission_id'], ['id'])
    op.create_foreign_key(op.f('fk_cer_verifier_reports_verifier_id_accounts'), 'cer_verifier_reports', 'accounts', ['verifier_id'], ['id'])

def downgrade() -> None:
    op.drop_constraint(op.f('fk_cer_verifier_reports_verifier_id_accounts'), 'cer_verifier_reports', type_='foreignkey')
    op.drop_constraint(op.f('fk_cer_verifier_reports_commission_id_cer_verifier_commissions'), 'cer_verifier_reports',
                       type_='foreignkey')
    op.drop_index('ix_cer_verifier_reports_verifier', table_name='cer_verifier_reports',
                  postgresql_where=sa.text('verifier_id IS NOT NULL'))
    op.drop_column('cer_verifier_reports', 'commission_id')
    op.drop_column('cer_verifier_reports', 'verifier_id')
    op.drop_column('cer_projects', 'frozen_reason')
    op.drop_column('cer_projects', 'frozen_at')
    for table in ('cer_verifier_sanctions', 'review_seats', 'review_events', 'review_draws', 'expert_conflicts',
                  'cer_verifier_commissions', 'reviews', 'experts'):
        op.drop_table(table)
    op.execute("DELETE FROM account_roles WHERE role IN ('expert', 'verifier', 'neutrality_reviewer')")
    _roles(BEFORE)
