"""Liveness and readiness probes (exempt from auth)."""
from flask import Blueprint, jsonify
from sqlalchemy import text

from .extensions import db
from .openapi.operations import operation
from .openapi.responses import ref
from .runtime import get_runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@operation("Liveness: the process answers", auth=False, ok={200: ref("Alive")})
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
@operation("Readiness: Postgres and Redis reachable", auth=False, ok={200: ref("Ready"), 503: ref("NotReady")})
def readyz():
    checks = {}
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["postgres"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["postgres"] = f"error: {type(exc).__name__}"
    try:
        get_runtime().redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    if not ready:  # an error like any other: JSON with an "error" key
        failing = ", ".join(name for name, v in checks.items() if v != "ok")
        return jsonify({"status": "not ready", **checks, "error": f"Not ready: {failing} unreachable."}), 503
    return jsonify({"status": "ready", **checks})
