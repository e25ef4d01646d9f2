import uuid
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class WebhookDelivery(Base):
    """One webhook send (and its attempts) for one task event; replays are new rows.

    Two keys make "exactly one delivery per task event" hold whoever records it:
    `event_id` (the stream event it came from) and, for the automatic delivery of a status
    change, `(task_id, event, occurred_at)`, where `occurred_at` is the commit time of that
    change (the task's `completed_at`). The second key lets the dispatcher's reconciliation,
    which has no event id, re-create deliveries whose stream event Redis lost without ever
    doubling one that the stream did deliver. Manual triggers and replays leave
    `occurred_at` empty, so they never collide with it.

    `next_attempt_at` is when a dispatcher should next look at a pending row: the retry time,
    or, while a send is in flight, the end of the sender's lease (`claimed_by`), which the
    sender keeps renewing. A dispatcher killed mid-send stops renewing, and the row falls
    due again for another one.
    """

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
    occurred_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    claimed_by: Mapped[str] = mapped_column(String(100), server_default="")

    __table_args__ = (
        Index("ix_webhook_deliveries_task", "task_id", "queued_at"),
        # Exactly one delivery per task event, however often the event is read.
        Index("uq_webhook_deliveries_event", "event_id", unique=True),
        # ... and per status change, whether the stream or the reconciliation records it.
        Index(
            "uq_webhook_deliveries_occurrence",
            "task_id",
            "event",
            "occurred_at",
            unique=True,
            postgresql_where=text("occurred_at IS NOT NULL"),
        ),
        # The dispatcher's due query only touches pending rows.
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        # Retention deletes finished deliveries oldest first (migration 0005).
        Index("ix_webhook_deliveries_finished", "queued_at", postgresql_where=text("status <> 'pending'")),
    )
