"""Recurring schedules: CRUD, pause and resume (all scoped to the caller). The scheduler fires them."""
from flask import Blueprint

bp = Blueprint("schedules", __name__, url_prefix="/api/v1/schedules")

from . import routes  # noqa: E402,F401
