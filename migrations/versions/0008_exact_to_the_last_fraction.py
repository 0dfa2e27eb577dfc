"""exact to the last fraction: a wallet's reported reduction beside its credited one

`wallets.lifetime_reduction_mg` counts the CO2e points were credited for; the part of a report
over a daily cap earned nothing and was left out, though the wallet said "all the CO2e avoided".
`lifetime_reported_reduction_mg` counts every credited report's whole reduction; existing wallets
get theirs from the reports' uncredited reductions.

Revision ID: 0008_exact_to_the_last_fraction
Revises: 0006_redeem_in_one_round_trip
Create Date: 2026-11-26 10:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0008_exact_to_the_last_fraction'
down_revision = '0006_redeem_in_one_round_trip'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('wallets', sa.Column('lifetime_reported_reduction_mg', sa.BigInteger(), nullable=False,
                                       server_default=sa.text('0')))
    op.execute(
        "UPDATE wallets w SET lifetime_reported_reduction_mg = w.lifetime_reduction_mg + coalesce(r.uncredited, 0)"
        " FROM wallets x LEFT JOIN (SELECT wallet_id, sum(uncredited_reduction_mg) AS uncredited"
        "  FROM behaviour_reports WHERE outcome = 'credited' GROUP BY wallet_id) r ON r.wallet_id = x.account_id"
        " WHERE x.account_id = w.account_id")


def downgrade() -> None:
    op.drop_column('wallets', 'lifetime_reported_reduction_mg')
