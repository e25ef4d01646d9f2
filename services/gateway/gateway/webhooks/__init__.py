"""Webhook history and debugging endpoints under /api/v1/tasks/{id}/: deliveries, replay,
trigger_webhook. The dispatcher sends what these record; they never send anything themselves."""
from flask import Blueprint

bp = Blueprint("webhooks", __name__, url_prefix="/api/v1/tasks")

from . import routes  # noqa: E402,F401
