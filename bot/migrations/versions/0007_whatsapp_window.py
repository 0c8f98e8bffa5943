"""whatsapp window: index of a sender's inbound messages by time

Every WhatsApp push asks when its recipient last wrote (the 24-hour customer-service window
decides between free text and a Content template); this index answers it without a scan.

Revision ID: 0007_whatsapp_window
Revises: 0006_campaigns
Create Date: 2026-12-04 08:00:00
"""

from alembic import op


revision = '0007_whatsapp_window'
down_revision = '0006_campaigns'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.create_index(
            'ix_inbound_messages_sender_received',
            ['channel', 'from_number', 'received_at'],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_messages_sender_received')
