"""The task types the API accepts; the worker has one handler module per name."""
TASK_TYPES = (
    "echo",
    "compute",
    "sleep",
    "http_request",
    "process_data",
    "send_email",
    "resize_image",
    "generate_report",
)
