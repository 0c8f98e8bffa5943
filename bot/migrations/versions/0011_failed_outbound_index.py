"""failed outbound index: the sweep finds SMS fallbacks whose callback came while Redis was down

Revision ID: 0011_failed_outbound_index
Revises: 0010_quick_replies
Create Date: 2026-12-04 18:40:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0011_failed_outbound_index'
down_revision = '0010_quick_replies'
branch_labels = None
depends_on = None

#: As bot.store.FAILED_SQL when this was written (a migration does not follow the models).
FAILED_SQL = "status IN ('failed', 'undelivered')"


def upgrade() -> None:
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.create_index(
            'ix_outbound_messages_failed_updated_at',
            ['updated_at'],
            unique=False,
            sqlite_where=sa.text(FAILED_SQL),
            postgresql_where=sa.text(FAILED_SQL),
        )


def downgrade() -> None:
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbound_messages_failed_updated_at')
