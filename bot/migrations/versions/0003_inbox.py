"""inbox: a partial index of the inbound messages not answered yet

Revision ID: 0003_inbox
Revises: 0002_gateway
Create Date: 2026-12-01 10:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0003_inbox'
down_revision = '0002_gateway'
branch_labels = None
depends_on = None


def upgrade() -> None:
    unanswered = sa.text('processed_at IS NULL')
    op.create_index(
        'ix_inbound_messages_unanswered',
        'inbound_messages',
        ['channel', 'from_number'],
        unique=False,
        sqlite_where=unanswered,
        postgresql_where=unanswered,
    )


def downgrade() -> None:
    op.drop_index('ix_inbound_messages_unanswered', table_name='inbound_messages')
