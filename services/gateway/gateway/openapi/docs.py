"""GET /api/openapi.json (the document) and GET /api/docs (Swagger UI), both without auth.

Swagger UI's files come from the swagger-ui-bundle package and are served by this blueprint
(its static folder): the page loads nothing from another host, so it works offline and
behind a strict egress policy. Its validator badge (which calls an external service) is off.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template
from swagger_ui_bundle import swagger_ui_path

from . import document
from .operations import operation

bp = Blueprint(
    "apidocs", __name__, url_prefix="/api",
    static_folder=swagger_ui_path, static_url_path="/docs/assets", template_folder="templates",
)
CACHE_KEY = "taskqueue_openapi"


@bp.get("/openapi.json")
@operation("This OpenAPI document", auth=False, ok={200: {"type": "object", "description": "OpenAPI 3.0."}})
def openapi_json():
    app = current_app._get_current_object()  # noqa: SLF001 - the app object, to cache on it
    if CACHE_KEY not in app.extensions:  # routes are fixed once the app serves requests
        app.extensions[CACHE_KEY] = document.build(app)
    return jsonify(app.extensions[CACHE_KEY])


@bp.get("/docs")
@operation("Interactive API documentation (Swagger UI)", auth=False, ok={200: {"type": "string"}}, content_type="text/html")
def docs():
    return render_template("apidocs/docs.html")
