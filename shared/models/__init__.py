"""SQLAlchemy 2 models shared by every service (Postgres is the source of truth)."""
from .base import Base
from .dead_letter import DeadLetter
from .revoked_token import RevokedToken
from .schedule import Schedule, ScheduleFire
from .task import Task
from .task_event import TaskEvent
from .user import User
from .webhook_attempt import WebhookAttempt
from .webhook_delivery import WebhookDelivery

__all__ = ["Base", "DeadLetter", "RevokedToken", "Schedule", "ScheduleFire", "Task", "TaskEvent", "User", "WebhookAttempt", "WebhookDelivery"]
