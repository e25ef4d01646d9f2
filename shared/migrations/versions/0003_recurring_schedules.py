"""recurring schedules

Adds `schedules` (a cron expression in a time zone, or an interval, plus the template of the
task each fire creates; `next_run_at` with a partial index on enabled rows for the
scheduler's due query) and `schedule_fires`, keyed by (schedule_id, fire_at): one row per fire
and the task it created, the second guard of "exactly one task per fire" (see
shared/models/schedule.py).

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('schedules',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('owner_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('cron', sa.String(length=255), nullable=True),
    sa.Column('interval_seconds', sa.Integer(), nullable=True),
    sa.Column('timezone', sa.String(length=64), server_default='UTC', nullable=False),
    sa.Column('misfire_policy', sa.String(length=20), server_default='run_once', nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('task_type', sa.String(length=50), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('priority', sa.Integer(), server_default='5', nullable=False),
    sa.Column('max_retries', sa.Integer(), server_default='3', nullable=False),
    sa.Column('retry_delay', sa.Integer(), server_default='60', nullable=False),
    sa.Column('timeout', sa.Integer(), server_default='300', nullable=False),
    sa.Column('tags', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('metadata', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('callback_url', sa.String(length=2048), server_default='', nullable=False),
    sa.Column('callback_headers', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('callback_secret', sa.String(length=255), server_default='', nullable=False),
    sa.Column('callback_events', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('callback_max_attempts', sa.Integer(), server_default='5', nullable=False),
    sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_task_id', sa.UUID(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("misfire_policy IN ('run_once', 'skip')", name=op.f('ck_schedules_misfire_policy')),
    sa.CheckConstraint('(cron IS NULL) <> (interval_seconds IS NULL)', name=op.f('ck_schedules_cron_xor_interval')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_schedules_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedules'))
    )
    op.create_index('ix_schedules_due', 'schedules', ['next_run_at'], unique=False, postgresql_where=sa.text('enabled'))
    op.create_index('ix_schedules_owner_created', 'schedules', ['owner_id', 'created_at'], unique=False)
    op.create_table('schedule_fires',
    sa.Column('schedule_id', sa.UUID(), nullable=False),
    sa.Column('fire_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('task_id', sa.UUID(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['schedule_id'], ['schedules.id'], name=op.f('fk_schedule_fires_schedule_id_schedules'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('schedule_id', 'fire_at', name=op.f('pk_schedule_fires'))
    )


def downgrade() -> None:
    op.drop_table('schedule_fires')
    op.drop_index('ix_schedules_owner_created', table_name='schedules')
    op.drop_index('ix_schedules_due', table_name='schedules', postgresql_where=sa.text('enabled'))
    op.drop_table('schedules')
