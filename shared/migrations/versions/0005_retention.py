"""retention indexes

The indexes the scheduler's retention job (services/scheduler/scheduler/retention.py) walks,
oldest first, so each delete batch reads only the rows it removes instead of scanning the
table: finished tasks by `completed_at`, finished webhook deliveries by `queued_at` (both
partial: the hot unfinished rows are not in them), dead letters by `created_at`, schedule
fires by `fire_at`.

Built CONCURRENTLY (outside the migration's transaction), so upgrading a live database with
millions of tasks never blocks the services' writes while the index is built.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

FINISHED_TASKS = sa.text("status IN ('success', 'failure', 'revoked')")
FINISHED_DELIVERIES = sa.text("status <> 'pending'")


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index('ix_tasks_finished', 'tasks', ['completed_at'], unique=False,
                        postgresql_where=FINISHED_TASKS, postgresql_concurrently=True)
        op.create_index('ix_webhook_deliveries_finished', 'webhook_deliveries', ['queued_at'], unique=False,
                        postgresql_where=FINISHED_DELIVERIES, postgresql_concurrently=True)
        op.create_index('ix_dead_letters_created_at', 'dead_letters', ['created_at'], unique=False,
                        postgresql_concurrently=True)
        op.create_index('ix_schedule_fires_fire_at', 'schedule_fires', ['fire_at'], unique=False,
                        postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index('ix_schedule_fires_fire_at', table_name='schedule_fires', postgresql_concurrently=True)
        op.drop_index('ix_dead_letters_created_at', table_name='dead_letters', postgresql_concurrently=True)
        op.drop_index('ix_webhook_deliveries_finished', table_name='webhook_deliveries', postgresql_concurrently=True)
        op.drop_index('ix_tasks_finished', table_name='tasks', postgresql_concurrently=True)
