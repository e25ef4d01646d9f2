"""webhook attempts, delivery leases and dedup keys

Adds the per-attempt history of webhook deliveries, the dispatcher's lease column
(`claimed_by`), the status-change key `occurred_at` with its unique index (exactly one
delivery per task status change, from the stream or the reconciliation), the due index,
and the index the reconciliation scans (recently finished tasks with a callback).

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webhook_attempts',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('delivery_id', sa.UUID(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), server_default='', nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['webhook_deliveries.id'], name=op.f('fk_webhook_attempts_delivery_id_webhook_deliveries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_attempts'))
    )
    op.create_index('ix_webhook_attempts_delivery', 'webhook_attempts', ['delivery_id', 'attempt'], unique=False)
    op.create_index('ix_tasks_callback_completed', 'tasks', ['completed_at'], unique=False, postgresql_where=sa.text("callback_url <> ''"))
    op.add_column('webhook_deliveries', sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('webhook_deliveries', sa.Column('claimed_by', sa.String(length=100), server_default='', nullable=False))
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries', ['next_attempt_at'], unique=False, postgresql_where=sa.text("status = 'pending'"))
    op.create_index('uq_webhook_deliveries_occurrence', 'webhook_deliveries', ['task_id', 'event', 'occurred_at'], unique=True, postgresql_where=sa.text('occurred_at IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('uq_webhook_deliveries_occurrence', table_name='webhook_deliveries', postgresql_where=sa.text('occurred_at IS NOT NULL'))
    op.drop_index('ix_webhook_deliveries_due', table_name='webhook_deliveries', postgresql_where=sa.text("status = 'pending'"))
    op.drop_column('webhook_deliveries', 'claimed_by')
    op.drop_column('webhook_deliveries', 'occurred_at')
    op.drop_index('ix_tasks_callback_completed', table_name='tasks', postgresql_where=sa.text("callback_url <> ''"))
    op.drop_index('ix_webhook_attempts_delivery', table_name='webhook_attempts')
    op.drop_table('webhook_attempts')
