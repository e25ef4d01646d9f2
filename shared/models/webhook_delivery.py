import uuid
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class WebhookDelivery(Base):
    """One webhook send (and its attempts) for one task event; replays are new rows."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid())
    task_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("tasks.id", ondelete="CASCADE"))
    owner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    event_id: Mapped[Optional[int]] = mapped_column(BigInteger, nullable=True)  # source TaskEvent
    event: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer, server_default="5")
    request_url: Mapped[str] = mapped_column(String(2048))
    request_headers: Mapped[Any] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    request_body: Mapped[str] = mapped_column(Text, server_default="")
    signature: Mapped[str] = mapped_column(String(255), server_default="")
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    next_attempt_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    last_attempt_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    response_status_code: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    response_body: Mapped[str] = mapped_column(Text, server_default="")
    error_message: Mapped[str] = mapped_column(Text, server_default="")
    replay_of_id: Mapped[Optional[uuid.UUID]] = mapped_column(UUID(as_uuid=True), nullable=True)

    __table_args__ = (
        Index("ix_webhook_deliveries_task", "task_id", "queued_at"),
        # Exactly one delivery per task event, however often the event is read.
        Index("uq_webhook_deliveries_event", "event_id", unique=True),
    )
