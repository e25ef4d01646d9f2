"""Every error leaves the API as JSON: `{"error": ..., "detail": ...}` plus DRF-style field errors."""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.status, self.message, self.fields = status, message, fields or {}


class ValidationError(ApiError):
    def __init__(self, fields: dict[str, list[str]]):
        field, messages = next(iter(fields.items()))
        super().__init__(400, f"{field}: {messages[0]}", fields)


def error_response(status: int, message: str, fields: dict | None = None):
    body = {**(fields or {}), "error": message, "detail": message}
    return jsonify(body), status


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return error_response(exc.status, exc.message, exc.fields)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {404: "Not found.", 405: "Method not allowed.", 413: "Request body too large."}
        response, status = error_response(exc.code or 500, messages.get(exc.code, exc.description))
        if exc.code == 405 and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response, status

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "Internal server error.")
