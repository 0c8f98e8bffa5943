"""power cuts: area tickets joined by many reporters, priority for danger, location pins

Revision ID: 0009_power_cuts
Revises: 0008_staff_visits
Create Date: 2026-12-04 08:30:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0009_power_cuts'
down_revision = '0008_staff_visits'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority', sa.Boolean(), server_default=sa.text('false'), nullable=False))
        batch_op.add_column(sa.Column('hazard', sa.String(length=16), nullable=True))
        batch_op.create_index('ix_tickets_kind_area_created', ['kind', 'area', 'created_at'], unique=False)

    op.create_table('ticket_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('mobile', sa.String(length=16), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('hazard', sa.String(length=16), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ticket_id', 'mobile', name='uq_ticket_reports_mobile')
    )

    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('latitude', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('longitude', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_column('longitude')
        batch_op.drop_column('latitude')

    op.drop_table('ticket_reports')

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_kind_area_created')
        batch_op.drop_column('hazard')
        batch_op.drop_column('priority')
