"""payments: pay-link intents, gateway notices, receipt counters, billing closures

Revision ID: 0005_payments
Revises: 0004_agent_inbox
Create Date: 2026-12-04 03:44:07.611742
"""

from alembic import op
import sqlalchemy as sa


revision = '0005_payments'
down_revision = '0004_agent_inbox'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('billing_closures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('discom', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.String(length=120), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('billing_closures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_closures_discom'), ['discom'], unique=False)

    op.create_table('receipt_counters',
    sa.Column('discom', sa.String(length=8), nullable=False),
    sa.Column('financial_year', sa.String(length=7), nullable=False),
    sa.Column('last_no', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('discom', 'financial_year')
    )
    op.create_table('payment_intents',
    sa.Column('id', sa.String(length=24), nullable=False),
    sa.Column('discom', sa.String(length=8), nullable=False),
    sa.Column('new_account_no', sa.String(length=10), nullable=False),
    sa.Column('bill_month', sa.String(length=7), nullable=True),
    sa.Column('amount_paise', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('mobile', sa.String(length=16), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['new_account_no'], ['consumers.new_account_no'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('payment_intents', schema=None) as batch_op:
        batch_op.create_index('ix_payment_intents_account', ['new_account_no', 'created_at'], unique=False)

    op.create_table('payment_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('external_id', sa.String(length=64), nullable=False),
    sa.Column('utr', sa.String(length=22), nullable=True),
    sa.Column('intent_ref', sa.String(length=64), nullable=True),
    sa.Column('amount_paise', sa.BigInteger(), nullable=False),
    sa.Column('outcome', sa.String(length=24), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.Column('paid_at', sa.DateTime(), nullable=True),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'external_id', name='uq_notice_source_id')
    )
    with op.batch_alter_table('payment_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_notices_utr'), ['utr'], unique=False)

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('intent_id', sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column('discom', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('utr', sa.String(length=22), nullable=True))
        batch_op.add_column(sa.Column('source', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('receipt_code', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('applied_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('receipt_sent_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_payments_intent_id'), ['intent_id'], unique=False)
        batch_op.create_unique_constraint('uq_payments_utr', ['utr'])
        batch_op.create_foreign_key('fk_payments_intent_id', 'payment_intents', ['intent_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_constraint('fk_payments_intent_id', type_='foreignkey')
        batch_op.drop_constraint('uq_payments_utr', type_='unique')
        batch_op.drop_index(batch_op.f('ix_payments_intent_id'))
        batch_op.drop_column('receipt_sent_at')
        batch_op.drop_column('applied_at')
        batch_op.drop_column('receipt_code')
        batch_op.drop_column('source')
        batch_op.drop_column('utr')
        batch_op.drop_column('discom')
        batch_op.drop_column('intent_id')

    with op.batch_alter_table('payment_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_notices_utr'))

    op.drop_table('payment_notices')
    with op.batch_alter_table('payment_intents', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_intents_account')

    op.drop_table('payment_intents')
    op.drop_table('receipt_counters')
    with op.batch_alter_table('billing_closures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_billing_closures_discom'))

    op.drop_table('billing_closures')
