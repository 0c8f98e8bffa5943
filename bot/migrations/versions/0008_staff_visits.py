"""staff visits and mobile changes: meter readers' field verification (issue 13)

Revision ID: 0008_staff_visits
Revises: 0007_whatsapp_window
Create Date: 2026-12-04 08:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0008_staff_visits'
down_revision = '0007_whatsapp_window'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('staff_visits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('new_account_no', sa.String(length=10), nullable=False),
    sa.Column('area', sa.String(length=120), nullable=False),
    sa.Column('informed', sa.Boolean(), nullable=False),
    sa.Column('mobile_confirmed', sa.Boolean(), nullable=False),
    sa.Column('visited_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['new_account_no'], ['consumers.new_account_no'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('staff_visits', schema=None) as batch_op:
        batch_op.create_index('ix_staff_visits_account', ['new_account_no', 'visited_at'], unique=False)
        batch_op.create_index('ix_staff_visits_area', ['area', 'visited_at'], unique=False)
        batch_op.create_index('ix_staff_visits_staff', ['staff_id', 'visited_at'], unique=False)

    op.create_table('mobile_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('new_account_no', sa.String(length=10), nullable=False),
    sa.Column('old_mobile', sa.String(length=16), nullable=True),
    sa.Column('new_mobile', sa.String(length=16), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=True),
    sa.Column('requested_by', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('decided_by', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['new_account_no'], ['consumers.new_account_no'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['requested_by'], ['staff.id'], ),
    sa.ForeignKeyConstraint(['visit_id'], ['staff_visits.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('mobile_changes', schema=None) as batch_op:
        batch_op.create_index('ix_mobile_changes_status', ['status', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('mobile_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_mobile_changes_status')

    op.drop_table('mobile_changes')
    with op.batch_alter_table('staff_visits', schema=None) as batch_op:
        batch_op.drop_index('ix_staff_visits_staff')
        batch_op.drop_index('ix_staff_visits_area')
        batch_op.drop_index('ix_staff_visits_account')

    op.drop_table('staff_visits')
