"""quick replies: Content templates for WhatsApp buttons, the button a person tapped

Revision ID: 0010_quick_replies
Revises: 0009_power_cuts
Create Date: 2026-12-04 15:45:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0010_quick_replies'
down_revision = '0009_power_cuts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('quick_reply_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('actions', sa.Text(), nullable=False),
    sa.Column('content_sid', sa.String(length=34), nullable=True),
    sa.Column('claimed_at', sa.DateTime(), nullable=False),
    sa.Column('failed_at', sa.DateTime(), nullable=True),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('content_sid'),
    sa.UniqueConstraint('key')
    )

    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('content_sid', sa.String(length=34), nullable=True))

    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('button_payload', sa.String(length=256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_column('button_payload')

    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.drop_column('content_sid')

    op.drop_table('quick_reply_templates')
