"""inbox: operators who sign in to /admin, consumers' handoffs to a person, and agents' replies

Revision ID: 0004_agent_inbox
Revises: 0003_inbox
Create Date: 2026-12-04 03:47:07
"""

from alembic import op
import sqlalchemy as sa


revision = '0004_agent_inbox'
down_revision = '0003_inbox'
branch_labels = None
depends_on = None

#: One open handoff per sender and channel (a partial unique index on both databases).
OPEN = sa.text("state != 'closed'")


def upgrade() -> None:
    op.create_table(
        'operators',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('username', sa.String(length=40), nullable=False),
        sa.Column('display_name', sa.String(length=80), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('failed_logins', sa.Integer(), nullable=False),
        sa.Column('locked_until', sa.DateTime(), nullable=True),
        sa.Column('session_epoch', sa.Integer(), nullable=False),
        sa.Column('last_login_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('username'),
    )
    op.create_table(
        'handoffs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('mobile', sa.String(length=16), nullable=False),
        sa.Column('discom', sa.String(length=8), nullable=False),
        sa.Column('language', sa.String(length=8), nullable=False),
        sa.Column('new_account_no', sa.String(length=10), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('opened_at', sa.DateTime(), nullable=False),
        sa.Column('promised_by', sa.DateTime(), nullable=False),
        sa.Column('operator_id', sa.Integer(), nullable=True),
        sa.Column('taken_at', sa.DateTime(), nullable=True),
        sa.Column('last_consumer_at', sa.DateTime(), nullable=True),
        sa.Column('last_agent_at', sa.DateTime(), nullable=True),
        sa.Column('closed_at', sa.DateTime(), nullable=True),
        sa.Column('close_reason', sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(['operator_id'], ['operators.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_handoffs_opened_at'), ['opened_at'], unique=False)
        batch_op.create_index('ix_handoffs_state', ['state', 'promised_by'], unique=False)
        batch_op.create_index(
            'uq_handoffs_open_sender',
            ['channel', 'mobile'],
            unique=True,
            sqlite_where=OPEN,
            postgresql_where=OPEN,
        )
    op.create_table(
        'handoff_replies',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('handoff_id', sa.Integer(), nullable=False),
        sa.Column('operator_id', sa.Integer(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('form_token', sa.String(length=40), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('error_code', sa.Integer(), nullable=True),
        sa.Column('outbound_message_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['handoff_id'], ['handoffs.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['operator_id'], ['operators.id']),
        sa.ForeignKeyConstraint(['outbound_message_id'], ['outbound_messages.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('form_token'),
    )
    with op.batch_alter_table('handoff_replies', schema=None) as batch_op:
        batch_op.create_index('ix_handoff_replies_handoff', ['handoff_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('handoff_replies', schema=None) as batch_op:
        batch_op.drop_index('ix_handoff_replies_handoff')
    op.drop_table('handoff_replies')
    with op.batch_alter_table('handoffs', schema=None) as batch_op:
        batch_op.drop_index('uq_handoffs_open_sender', sqlite_where=OPEN, postgresql_where=OPEN)
        batch_op.drop_index('ix_handoffs_state')
        batch_op.drop_index(batch_op.f('ix_handoffs_opened_at'))
    op.drop_table('handoffs')
    op.drop_table('operators')
