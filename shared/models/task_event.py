import uuid
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import text, BigInteger, DateTime, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class TaskEvent(Base):
    """The transactional outbox: one row per committed status change.

    Written in the same transaction as the change, then published to the Redis stream;
    `published_at` stays NULL until it is, so the scheduler can relay what a crash left behind.
    The row id is the event id consumers deduplicate on.
    """

    __tablename__ = "task_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    task_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    owner_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20))
    result: Mapped[Optional[Any]] = mapped_column(JSONB, nullable=True)
    error_message: Mapped[str] = mapped_column(Text, server_default="")
    webhook_event: Mapped[str] = mapped_column(String(50), server_default="")  # set for manual triggers
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        Index("ix_task_events_unpublished", "id", postgresql_where=text("published_at IS NULL")),
        Index("ix_task_events_created", "created_at"),
    )
