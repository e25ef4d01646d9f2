"""TaskQueue notifier: a standalone `websockets` server pushing task status changes to clients.

One reader per process follows the `taskqueue:events` stream and fans each event out to the
local connections allowed to see it (`/ws/tasks/` for all of the caller's tasks,
`/ws/tasks/{task_id}/` for one). Replicas run side by side, each serving its own clients.
"""
