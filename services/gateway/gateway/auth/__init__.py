"""Authentication: registration, JWT pairs, refresh rotation, logout, profile."""
from flask import Blueprint

bp = Blueprint("auth", __name__, url_prefix="/api/v1/auth")

from . import routes  # noqa: E402,F401  (registers the views on bp)
