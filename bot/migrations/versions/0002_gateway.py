"""gateway: dead letters of jobs that failed their last retry

Revision ID: 0002_gateway
Revises: 0001
Create Date: 2026-11-25 10:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0002_gateway'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'dead_letters',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('job_id', sa.String(length=120), nullable=False),
        sa.Column('func', sa.String(length=200), nullable=False),
        sa.Column('args', sa.Text(), nullable=False),
        sa.Column('inbound_message_id', sa.Integer(), nullable=True),
        sa.Column('error', sa.Text(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('failed_at', sa.DateTime(), nullable=False),
        sa.Column('replayed_at', sa.DateTime(), nullable=True),
        sa.Column('replay_job_id', sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(['inbound_message_id'], ['inbound_messages.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dead_letters_failed_at'), ['failed_at'], unique=False)
        batch_op.create_index(
            batch_op.f('ix_dead_letters_inbound_message_id'), ['inbound_message_id'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dead_letters_inbound_message_id'))
        batch_op.drop_index(batch_op.f('ix_dead_letters_failed_at'))
    op.drop_table('dead_letters')
