import uuid
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid())
    # No foreign key (migration 0006): a trigger on users deletes a deleted user's tasks.
    owner_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(255))
    task_type: Mapped[str] = mapped_column(String(50))
    payload: Mapped[Any] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    priority: Mapped[int] = mapped_column(Integer, server_default="5")
    queue: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    result: Mapped[Optional[Any]] = mapped_column(JSONB, nullable=True)
    error_message: Mapped[str] = mapped_column(Text, server_default="")
    traceback: Mapped[str] = mapped_column(Text, server_default="")

    retry_count: Mapped[int] = mapped_column(Integer, server_default="0")  # failed attempts so far
    max_retries: Mapped[int] = mapped_column(Integer, server_default="3")
    retry_delay: Mapped[int] = mapped_column(Integer, server_default="60")
    timeout: Mapped[int] = mapped_column(Integer, server_default="300")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")  # times a worker claimed it

    scheduled_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    completed_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)

    # Delivery bookkeeping: when the Dramatiq message was last sent, and the running lease.
    enqueued_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    lease_expires_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    worker_id: Mapped[str] = mapped_column(String(100), server_default="")

    tags: Mapped[Any] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    meta: Mapped[Any] = mapped_column("metadata", JSONB, server_default=text("'{}'::jsonb"))
    idempotency_key: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)

    callback_url: Mapped[str] = mapped_column(String(2048), server_default="")
    callback_headers: Mapped[Any] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    callback_secret: Mapped[str] = mapped_column(String(255), server_default="")
    callback_events: Mapped[Any] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    callback_max_attempts: Mapped[int] = mapped_column(Integer, server_default="5")
    callback_status: Mapped[str] = mapped_column(String(20), server_default="")
    callback_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    callback_last_attempt_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    callback_last_response_code: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    callback_last_error: Mapped[str] = mapped_column(Text, server_default="")

    __table_args__ = (
        Index("ix_tasks_owner_created", "owner_id", "created_at"),
        # The scheduler's hot queries only touch the few rows in these states.
        Index("ix_tasks_due", "scheduled_at", postgresql_where=text("status IN ('scheduled', 'retry')")),
        Index("ix_tasks_queued", "enqueued_at", postgresql_where=text("status = 'queued'")),
        Index("ix_tasks_lease", "lease_expires_at", postgresql_where=text("status = 'running'")),
        # The webhook reconciliation scans recently finished tasks that have a callback.
        Index("ix_tasks_callback_completed", "completed_at", postgresql_where=text("callback_url <> ''")),
        # Retention deletes finished tasks oldest first (migration 0005).
        Index("ix_tasks_finished", "completed_at", postgresql_where=text("status IN ('success', 'failure', 'revoked')")),
        Index(
            "uq_tasks_owner_idempotency",
            "owner_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )
