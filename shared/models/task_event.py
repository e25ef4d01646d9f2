import uuid
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import BigInteger, DateTime, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class TaskEvent(Base):
    """The transactional outbox: one row per committed status change, until it is published.

    Written by the same statement as the change (shared.transitions), published to the Redis
    stream and deleted right after commit (shared.handoff); rows still here after a few
    seconds are relayed by the scheduler. The row id is the event id consumers deduplicate
    on. Kept small on purpose: no secondary indexes on a table written three times per task.
    """

    __tablename__ = "task_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    task_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    owner_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20))
    result: Mapped[Optional[Any]] = mapped_column(JSONB, nullable=True)
    error_message: Mapped[str] = mapped_column(Text, server_default="")
    webhook_event: Mapped[str] = mapped_column(String(50), server_default="")  # set for manual triggers
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
