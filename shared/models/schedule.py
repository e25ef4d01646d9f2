import uuid
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class Schedule(Base):
    """A recurring task: a cron expression (in `timezone`) or a fixed interval, and the template
    of the task each fire creates (the task fields of POST /tasks/, validated the same way).

    `next_run_at` is the next fire (NULL while paused); the scheduler fires due schedules
    (shared.schedules for the times and the misfire policy, scheduler.recurring for the fire).
    """

    __tablename__ = "schedules"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid())
    owner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    cron: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    interval_seconds: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    misfire_policy: Mapped[str] = mapped_column(String(20), server_default="run_once")
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))

    # The task template (the columns of the same name in `tasks`).
    task_type: Mapped[str] = mapped_column(String(50))
    payload: Mapped[Any] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    priority: Mapped[int] = mapped_column(Integer, server_default="5")
    max_retries: Mapped[int] = mapped_column(Integer, server_default="3")
    retry_delay: Mapped[int] = mapped_column(Integer, server_default="60")
    timeout: Mapped[int] = mapped_column(Integer, server_default="300")
    tags: Mapped[Any] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    meta: Mapped[Any] = mapped_column("metadata", JSONB, server_default=text("'{}'::jsonb"))
    callback_url: Mapped[str] = mapped_column(String(2048), server_default="")
    callback_headers: Mapped[Any] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    callback_secret: Mapped[str] = mapped_column(String(255), server_default="")
    callback_events: Mapped[Any] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    callback_max_attempts: Mapped[int] = mapped_column(Integer, server_default="5")

    next_run_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    last_run_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    # No foreign keys to tasks here or in schedule_fires: every deleted task would cost a
    # lookup in both tables; a reference to a task deleted since simply 404s.
    last_task_id: Mapped[Optional[uuid.UUID]] = mapped_column(UUID(as_uuid=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("(cron IS NULL) <> (interval_seconds IS NULL)", name="cron_xor_interval"),
        CheckConstraint("misfire_policy IN ('run_once', 'skip')", name="misfire_policy"),
        Index("ix_schedules_owner_created", "owner_id", "created_at"),
        # The scheduler's due query only touches enabled schedules.
        Index("ix_schedules_due", "next_run_at", postgresql_where=text("enabled")),
    )


class ScheduleFire(Base):
    """One fire of a schedule: the task it created, keyed by (schedule, fire time).

    Why a table of its own rather than a unique index on tasks (schedule_id, fire time):
    exactly-once already follows from the scheduler's transaction (the due schedule row is
    locked FOR UPDATE SKIP LOCKED, the task is created and `next_run_at` advanced past the
    fire, all committed together, so no other replica or restart can see that fire due
    again). This primary key is the independent second guard, for the cases that bypass the
    lock -- an API update that recomputes `next_run_at` on a gateway whose clock lags the
    database's and lands on a fire already run, or a manual edit -- and it costs nothing on
    the hot `tasks` table: no new columns in every task insert, no change to the prepared
    create statement shared by every producer, no index maintained for the 99% of tasks that
    no schedule created. It also keeps each schedule's fire history (trimmed by the scheduler's
    retention job, never sooner than a day).

    The fire row is inserted first (ON CONFLICT DO NOTHING): a fire already recorded creates
    no task at all. Rows go with their schedule.
    """

    __tablename__ = "schedule_fires"

    schedule_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True
    )
    fire_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True, index=True)  # retention
    task_id: Mapped[Optional[uuid.UUID]] = mapped_column(UUID(as_uuid=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
