"""API key scopes: what each key may change, chosen when it is created (issue 8)

A project owner's key could sell and retire CERs, and retirement is final. Every key now carries
its scopes (accounts.models.ApiKeyScope). Keys that exist keep the routine scopes of the roles
their organisation holds, but not SELL_CERS or RETIRE_CERS, which move tonnes for good: an
organisation that wants a key for those creates a new one that says so.

Revision ID: 0009_api_key_scopes
Revises: 0008_exact_to_the_last_fraction
Create Date: 2026-12-02 10:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0009_api_key_scopes'
down_revision = '0008_exact_to_the_last_fraction'
branch_labels = None
depends_on = None

ROUTINE = {
    'app_operator': ('invite_entrustments', 'report_behaviour'),
    'merchant': ('manage_listings', 'fulfil_redemptions'),
    'project_owner': ('manage_cer_projects',),
}
VALID = ('invite_entrustments', 'report_behaviour', 'manage_listings', 'fulfil_redemptions',
         'manage_cer_projects', 'sell_cers', 'retire_cers')


def upgrade() -> None:
    op.add_column('api_keys', sa.Column('scopes', postgresql.ARRAY(sa.String(length=40)), nullable=False,
                                        server_default=sa.text("'{}'::varchar[]")))
    for role, scopes in ROUTINE.items():
        op.execute(sa.text(
            "UPDATE api_keys k SET scopes = k.scopes || CAST(:scopes AS varchar[])"
            " WHERE EXISTS (SELECT 1 FROM account_roles r WHERE r.account_id = k.account_id"
            " AND r.role = :role AND r.status = 'active')").bindparams(role=role, scopes=list(scopes)))
    op.alter_column('api_keys', 'scopes', server_default=None)
    op.create_check_constraint(op.f('ck_api_keys_scopes_valid'), 'api_keys',
                               "scopes <@ ARRAY[" + ", ".join(f"'{s}'" for s in VALID) + "]::varchar[]")


def downgrade() -> None:
    op.drop_constraint(op.f('ck_api_keys_scopes_valid'), 'api_keys', type_='check')
    op.drop_column('api_keys', 'scopes')
