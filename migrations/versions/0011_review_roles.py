"""Roles of the technical review (issue 10): experts (art. 8), verifiers (art. 17, 32), neutrality reviewers (art. 19)

Revision ID: 0011_review_roles
Revises: 0010_rules_as_source
Create Date: 2026-12-02 15:00:00
"""
from alembic import op

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


def downgrade() -> None:
    op.execute("DELETE FROM account_roles WHERE role IN ('expert', 'verifier', 'neutrality_reviewer')")
    _roles(BEFORE)
