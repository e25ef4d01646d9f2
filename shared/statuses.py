"""Task statuses and which transitions each operation may make.

Every transition is a conditional UPDATE guarded by one of these sets, so a duplicate
message, a late worker or a cancel race can never move a task backwards.
"""
PENDING = "pending"
SCHEDULED = "scheduled"
QUEUED = "queued"
RUNNING = "running"
RETRY = "retry"
SUCCESS = "success"
FAILURE = "failure"
REVOKED = "revoked"

ALL = (PENDING, SCHEDULED, QUEUED, RUNNING, RETRY, SUCCESS, FAILURE, REVOKED)
TERMINAL = (SUCCESS, FAILURE, REVOKED)
WAITING = (SCHEDULED, RETRY)  # released by the scheduler at scheduled_at
CANCELLABLE = (PENDING, SCHEDULED, QUEUED, RETRY, RUNNING)
RETRYABLE = (FAILURE, REVOKED)  # the API's manual retry

# Webhook event names per terminal status (the reference's contract).
WEBHOOK_EVENTS = {SUCCESS: "task.succeeded", FAILURE: "task.failed", REVOKED: "task.revoked"}
DEFAULT_CALLBACK_EVENTS = ["task.succeeded", "task.failed", "task.revoked"]
MANUAL_WEBHOOK_EVENT = "task.updated"
