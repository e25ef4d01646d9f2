"""The opening handshake: which feed, who is asking, may they see it. Refusals are plain HTTP.

Checked in this order, like the gateway: unknown path or malformed task id -> 404; no, bad or
expired access token (or a refresh token), or one whose session ended (logout, password
change) -> 401; malformed `last_event_id` -> 400; a task that does not exist or belongs to
someone else -> 404 (the same answer, so ids cannot be probed). Nothing is ever sent over a websocket that was refused.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from typing import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from shared.tokens import InvalidToken, decode_access_token, session_is_live, user_id

from . import metrics, store
from .messages import StreamId, parse_stream_id
from .store import TaskState

log = logging.getLogger("notifier.handshake")

FEED_PATH = re.compile(r"^/ws/tasks(?:/(?P<task_id>[^/]+))?/?$")


@dataclass(frozen=True, slots=True)
class Subscription:
    """What an accepted connection asked for, attached to it as `connection.subscription`."""

    owner_id: int
    task_id: str | None  # None: the list feed (every task of the owner)
    resume_after: StreamId | None  # the client's `last_event_id`: the last stream_id it received
    position: StreamId  # the stream reader's position before `snapshot` was read
    snapshot: TaskState | None  # single-task feed only


class Refused(Exception):
    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def target(path: str) -> str | None:
    """The task id of a single-task feed, None for the list feed; Refused(404) otherwise."""
    match = FEED_PATH.match(path)
    if match is None:
        raise Refused(HTTPStatus.NOT_FOUND, "Not found.")
    if match["task_id"] is None:
        return None
    try:
        return str(uuid.UUID(match["task_id"]))
    except ValueError:
        raise Refused(HTTPStatus.NOT_FOUND, "Not found.") from None


def presented_token(request: Request, query: dict[str, list[str]]) -> str | None:
    """`Authorization: Bearer <token>` first, else `?token=` (browsers cannot set headers)."""
    header = next(iter(request.headers.get_all("Authorization")), "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return (query.get("token") or [None])[0]


def authenticate(request: Request, query: dict[str, list[str]], secret: str) -> dict:
    """Verified claims of the presented access token (its session is checked separately)."""
    token = presented_token(request, query)
    if not token:
        raise Refused(HTTPStatus.UNAUTHORIZED, "Authentication credentials were not provided.")
    try:
        return decode_access_token(token, secret)
    except InvalidToken:
        raise Refused(HTTPStatus.UNAUTHORIZED, "Token is invalid or expired.") from None


async def live_session(engine: Engine, claims: dict) -> None:
    """401 when the token's session was logged out or ended by a password change."""
    try:
        live = await asyncio.to_thread(_session_is_live, engine, claims)
    except SQLAlchemyError:
        log.warning("session lookup failed", exc_info=True)
        raise Refused(HTTPStatus.SERVICE_UNAVAILABLE, "Service temporarily unavailable.") from None
    if not live:
        raise Refused(HTTPStatus.UNAUTHORIZED, "Token is invalid or expired.")


def _session_is_live(engine: Engine, claims: dict) -> bool:
    with engine.connect() as conn:
        return session_is_live(conn, claims)


def resume_point(query: dict[str, list[str]]) -> StreamId | None:
    raw = (query.get("last_event_id") or [None])[0]
    if raw is None or raw == "":
        return None
    try:
        return parse_stream_id(raw)
    except ValueError:
        raise Refused(HTTPStatus.BAD_REQUEST, "last_event_id must be a stream_id received from this feed.") from None


def refusal(connection: ServerConnection, refused: Refused) -> Response:
    """A JSON error response in the gateway's shape, instead of websockets' plain text."""
    body = json.dumps({"error": refused.message, "detail": refused.message}) + "\n"
    response = connection.respond(refused.status, body)
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    if refused.status == HTTPStatus.UNAUTHORIZED:
        response.headers["WWW-Authenticate"] = 'Bearer realm="taskqueue"'
    metrics.HANDSHAKES_REFUSED.labels(str(int(refused.status))).inc()
    return response


def make_process_request(
    secret: str, engine: Engine, position: Callable[[], StreamId]
) -> Callable[[ServerConnection, Request], Awaitable[Response | None]]:
    """websockets' `process_request` hook: accept (None) with `connection.subscription` set, or refuse."""

    async def process_request(connection: ServerConnection, request: Request) -> Response | None:
        try:
            connection.subscription = await subscription_for(request, secret, engine, position)
        except Refused as refused:
            return refusal(connection, refused)
        return None

    return process_request


async def subscription_for(request: Request, secret: str, engine: Engine, position: Callable[[], StreamId]) -> Subscription:
    url = urlsplit(request.path)
    query = parse_qs(url.query)
    task_id = target(url.path)
    claims = authenticate(request, query, secret)
    await live_session(engine, claims)
    owner_id = user_id(claims)
    resume_after = resume_point(query)
    # Read before the snapshot: every change committed after the snapshot is on the stream after this.
    before = position()
    snapshot = None
    if task_id is not None:
        snapshot = await owned_task(engine, task_id, owner_id)
    return Subscription(owner_id, task_id, resume_after, before, snapshot)


async def owned_task(engine: Engine, task_id: str, owner_id: int) -> TaskState:
    try:
        state = await asyncio.to_thread(store.task_state, engine, uuid.UUID(task_id), owner_id)
    except SQLAlchemyError:
        log.warning("task lookup failed", exc_info=True)
        raise Refused(HTTPStatus.SERVICE_UNAVAILABLE, "Service temporarily unavailable.") from None
    if state is None:
        raise Refused(HTTPStatus.NOT_FOUND, "Not found.")
    return state
