"""Dead letters: tasks that exhausted their retries, and their reprocessing."""
from flask import Blueprint

bp = Blueprint("dead_letters", __name__, url_prefix="/api/v1/dead-letters")

from . import routes  # noqa: E402,F401
