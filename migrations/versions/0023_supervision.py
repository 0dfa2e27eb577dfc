"""Supervision (issue 11, art. 30-32): violations and their rescissions (the credit record), the
standing of an organisation in a role, inspections with follow-ups and history; listings get the end
of the suspension in force (listings.suspended_until) and mall_redeem refuses a suspended listing
(SUSPENDED); a redemption the platform releases for a sanction is `released`.

Revision ID: 0023_supervision
Revises: 0022_scenarios
Create Date: 2026-12-02 17:30:00
"""
import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0023_supervision'
down_revision = '0022_scenarios'
branch_labels = None
depends_on = None

# mall/sql/mall_redeem.sql as of this revision
MALL_REDEEM = r"""
CREATE OR REPLACE FUNCTION public.mall_redeem(p_wallet uuid, p_listing uuid, p_quantity integer,
                                              p_expected_revision integer, p_expected_price bigint,
                                              p_now timestamp with time zone,
                                              p_held_until timestamp with time zone, p_redemption uuid,
                                              p_hold uuid, p_voucher text)
 RETURNS TABLE(code text, detail bigint, points bigint, merchant_id uuid, channel text, app_operator_id uuid,
               title text, unit_price_points bigint)
 LANGUAGE plpgsql
AS $function$
#variable_conflict use_column
-- One redemption, in the caller's transaction. code: 'ok' (with what the redemption copied from
-- the listing), or the refusal ('NOT_FOUND', 'NOT_AVAILABLE', 'OUTSIDE_WINDOW', 'SUSPENDED', 'PRICE_CHANGED'
-- (detail: the price now), 'LISTING_CHANGED', 'LIMIT_REACHED' (detail: the limit),
-- 'INSUFFICIENT_POINTS' (detail: the usable points; points: those needed), 'OUT_OF_STOCK'), after
-- which the caller rolls back. A race for the last units can still fail the commit with SQLSTATE
-- TPH01 (see mall/sql/mall_reserve_stock_at_commit.sql). The redemption is made at the price read
-- here, which is the agreed one.
DECLARE
    l listings%ROWTYPE;
    taken bigint;
    hold_code text;
    hold_usable bigint;
BEGIN
    -- the person's wallet first: serialises their own redemptions (per-person limit, points)
    INSERT INTO wallets (account_id, available_points, held_points, lifetime_points, lifetime_reduction_mg,
                         remainder_num, remainder_den, created_at)
        VALUES (p_wallet, 0, 0, 0, 0, 0, 1, p_now) ON CONFLICT DO NOTHING;
    PERFORM wallet_lock(p_wallet);
    SELECT * INTO l FROM listings WHERE id = p_listing;
    IF NOT FOUND OR l.status = 'draft' THEN
        code := 'NOT_FOUND'; RETURN NEXT; RETURN;
    END IF;
    IF l.status <> 'active' THEN
        code := 'NOT_AVAILABLE'; RETURN NEXT; RETURN;
    END IF;
    IF (l.available_from IS NOT NULL AND p_now < l.available_from)
       OR (l.available_until IS NOT NULL AND p_now >= l.available_until) THEN
        code := 'OUTSIDE_WINDOW'; RETURN NEXT; RETURN;
    END IF;
    IF l.suspended_until IS NOT NULL AND p_now < l.suspended_until THEN
        code := 'SUSPENDED'; RETURN NEXT; RETURN;
    END IF;
    IF p_expected_price IS NOT NULL AND p_expected_price <> l.price_points THEN
        code := 'PRICE_CHANGED'; detail := l.price_points; RETURN NEXT; RETURN;
    END IF;
    IF p_expected_revision IS NOT NULL AND p_expected_revision <> l.revision THEN
        code := 'LISTING_CHANGED'; RETURN NEXT; RETURN;
    END IF;
    IF l.per_person_limit IS NOT NULL THEN
        SELECT coalesce(sum(quantity), 0) INTO taken FROM redemptions
            WHERE wallet_id = p_wallet AND listing_id = p_listing AND status IN ('held', 'fulfilled');
        IF taken + p_quantity > l.per_person_limit THEN
            code := 'LIMIT_REACHED'; detail := l.per_person_limit; RETURN NEXT; RETURN;
        END IF;
    END IF;
    SELECT h.code, h.usable INTO hold_code, hold_usable
        FROM wallet_place_hold(p_wallet, p_hold, l.price_points * p_quantity, 'redemption:' || p_redemption, p_now) h;
    IF hold_code = 'insufficient' THEN
        code := 'INSUFFICIENT_POINTS'; detail := hold_usable; points := l.price_points * p_quantity;
        RETURN NEXT; RETURN;
    ELSIF hold_code <> 'ok' THEN
        RAISE EXCEPTION 'mall_redeem: hold % came back %', p_hold, hold_code;
    END IF;
    IF l.stock_available IS NOT NULL AND l.stock_available < p_quantity THEN
        -- sold out already (the refusals keep their order: limit, points, stock); the decisive
        -- check runs at commit, under the row lock
        code := 'OUT_OF_STOCK'; RETURN NEXT; RETURN;
    END IF;
    INSERT INTO redemptions (id, wallet_id, listing_id, merchant_id, channel, app_operator_id, title, quantity,
                             unit_price_points, points, hold_id, voucher_code, status, held_until, created_at)
        VALUES (p_redemption, p_wallet, l.id, l.merchant_id, l.channel, l.app_operator_id, l.title, p_quantity,
                l.price_points, l.price_points * p_quantity, p_hold, p_voucher, 'held', p_held_until, p_now);
    -- the stock is taken at commit, by the redemptions_reserve_stock trigger
    code := 'ok'; points := l.price_points * p_quantity; merchant_id := l.merchant_id; channel := l.channel;
    app_operator_id := l.app_operator_id; title := l.title; unit_price_points := l.price_points;
    RETURN NEXT;
END $function$
"""


def _revision(file_name: str, module_name: str):
    path = Path(__file__).with_name(file_name)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    op.add_column('listings', sa.Column('suspended_until', sa.DateTime(timezone=True), nullable=True))
    op.drop_constraint(op.f('ck_redemptions_status_valid'), 'redemptions', type_='check')
    op.create_check_constraint(
        op.f('ck_redemptions_status_valid'), 'redemptions',
        "status IN ('held', 'fulfilled', 'cancelled', 'declined', 'expired', 'released')")
    op.create_table('violations',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organisation_id', sa.Uuid(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('article', sa.Integer(), nullable=False),
    sa.Column('finding', sa.Text(), nullable=False),
    sa.Column('documents', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('sanction', sa.String(length=12), nullable=False),
    sa.Column('suspended_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recorded_by', sa.Uuid(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('app_operator', 'merchant', 'verifier', 'scenario_operator')",
                       name=op.f('ck_violations_role_valid')),
    sa.CheckConstraint("sanction IN ('warning', 'suspension', 'revocation')", name=op.f('ck_violations_sanction_valid')),
    sa.CheckConstraint('article BETWEEN 1 AND 33', name=op.f('ck_violations_article_valid')),
    sa.CheckConstraint("(sanction = 'suspension') = (suspended_until IS NOT NULL)",
                       name=op.f('ck_violations_period_iff_suspension')),
    sa.CheckConstraint('suspended_until IS NULL OR suspended_until > recorded_at',
                       name=op.f('ck_violations_period_positive')),
    sa.ForeignKeyConstraint(['organisation_id'], ['accounts.id'], name=op.f('fk_violations_organisation_id_accounts')),
    sa.ForeignKeyConstraint(['recorded_by'], ['accounts.id'], name=op.f('fk_violations_recorded_by_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_violations'))
    )
    op.create_index('ix_violations_organisation', 'violations', ['organisation_id', 'recorded_at', 'id'], unique=False)
    op.create_index('ix_violations_recorded', 'violations', ['recorded_at', 'id'], unique=False)
    op.create_table('violation_rescissions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('violation_id', sa.Uuid(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('rescinded_by', sa.Uuid(), nullable=False),
    sa.Column('rescinded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['violation_id'], ['violations.id'],
                            name=op.f('fk_violation_rescissions_violation_id_violations')),
    sa.ForeignKeyConstraint(['rescinded_by'], ['accounts.id'],
                            name=op.f('fk_violation_rescissions_rescinded_by_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_violation_rescissions')),
    sa.UniqueConstraint('violation_id', name=op.f('uq_violation_rescissions_violation_id'))
    )
    op.create_table('organisation_standings',
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('suspended_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('app_operator', 'merchant', 'verifier', 'scenario_operator')",
                       name=op.f('ck_organisation_standings_role_valid')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_organisation_standings_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'role', name=op.f('pk_organisation_standings'))
    )
    op.create_table('inspections',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organisation_id', sa.Uuid(), nullable=True),
    sa.Column('inspected_on', sa.Date(), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('findings', sa.Text(), nullable=False),
    sa.Column('documents', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('recorded_by', sa.Uuid(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['accounts.id'], name=op.f('fk_inspections_organisation_id_accounts')),
    sa.ForeignKeyConstraint(['recorded_by'], ['accounts.id'], name=op.f('fk_inspections_recorded_by_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inspections'))
    )
    op.create_index('ix_inspections_inspected', 'inspections', ['inspected_on', 'id'], unique=False)
    op.create_table('inspection_follow_ups',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('inspection_id', sa.Uuid(), nullable=False),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('added_by', sa.Uuid(), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completion_note', sa.Text(), nullable=True),
    sa.Column('completed_by', sa.Uuid(), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('open', 'done')", name=op.f('ck_inspection_follow_ups_status_valid')),
    sa.CheckConstraint("(status = 'done') = (completed_at IS NOT NULL)",
                       name=op.f('ck_inspection_follow_ups_done_iff_completed')),
    sa.ForeignKeyConstraint(['inspection_id'], ['inspections.id'],
                            name=op.f('fk_inspection_follow_ups_inspection_id_inspections')),
    sa.ForeignKeyConstraint(['added_by'], ['accounts.id'], name=op.f('fk_inspection_follow_ups_added_by_accounts')),
    sa.ForeignKeyConstraint(['completed_by'], ['accounts.id'],
                            name=op.f('fk_inspection_follow_ups_completed_by_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inspection_follow_ups'))
    )
    op.create_index('ix_inspection_follow_ups_inspection', 'inspection_follow_ups', ['inspection_id', 'added_at', 'id'],
                    unique=False)
    op.create_table('inspection_events',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('inspection_id', sa.Uuid(), nullable=False),
    sa.Column('follow_up_id', sa.Uuid(), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.ForeignKeyConstraint(['inspection_id'], ['inspections.id'],
                            name=op.f('fk_inspection_events_inspection_id_inspections')),
    sa.ForeignKeyConstraint(['follow_up_id'], ['inspection_follow_ups.id'],
                            name=op.f('fk_inspection_events_follow_up_id_inspection_follow_ups')),
    sa.ForeignKeyConstraint(['actor_id'], ['accounts.id'], name=op.f('fk_inspection_events_actor_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inspection_events')),
    sa.UniqueConstraint('seq', name=op.f('uq_inspection_events_seq'))
    )
    op.create_index('ix_inspection_events_inspection', 'inspection_events', ['inspection_id', 'seq'], unique=False)
    op.execute(MALL_REDEEM)


def downgrade() -> None:
    op.execute(_revision("0010_rules_as_source.py", "_tanpuhui_revision_0010").MALL_REDEEM)
    op.drop_table('inspection_events')
    op.drop_table('inspection_follow_ups')
    op.drop_table('inspections')
    op.drop_table('organisation_standings')
    op.drop_table('violation_rescissions')
    op.drop_table('violations')
    op.execute("UPDATE redemptions SET status = 'declined' WHERE status = 'released'")
    op.drop_constraint(op.f('ck_redemptions_status_valid'), 'redemptions', type_='check')
    op.create_check_constraint(
        op.f('ck_redemptions_status_valid'), 'redemptions', "status IN ('held', 'fulfilled', 'cancelled', 'declined', 'expired')")
    op.drop_column('listings', 'suspended_until')
