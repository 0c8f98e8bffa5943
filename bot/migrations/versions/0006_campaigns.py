"""campaigns: frozen recipients, campaign options, generation and hold reason

Revision ID: 0006_campaigns
Revises: 0005_payments
Create Date: 2026-12-04 07:50:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0006_campaigns'
down_revision = '0005_payments'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaign_recipients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('new_account_no', sa.String(length=10), nullable=False),
    sa.Column('discom', sa.String(length=8), nullable=False),
    sa.Column('mobile', sa.String(length=16), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.Column('amount_paise', sa.BigInteger(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=True),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('variables', sa.Text(), nullable=True),
    sa.Column('intent_id', sa.String(length=24), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('campaign_id', 'new_account_no', name='uq_campaign_recipient_account')
    )
    with op.batch_alter_table('campaign_recipients', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_recipients_state', ['campaign_id', 'state'], unique=False)

    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('options', sa.Text(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('selected_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('held_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('generation', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('generation')
        batch_op.drop_column('held_reason')
        batch_op.drop_column('selected_at')
        batch_op.drop_column('options')

    with op.batch_alter_table('campaign_recipients', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_recipients_state')

    op.drop_table('campaign_recipients')
