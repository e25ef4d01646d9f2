"""Tasks: create, list, detail, cancel, retry, stats (all scoped to the caller)."""
from flask import Blueprint

bp = Blueprint("tasks", __name__, url_prefix="/api/v1/tasks")

from . import routes  # noqa: E402,F401
