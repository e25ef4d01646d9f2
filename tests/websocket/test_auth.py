"""Refused handshakes: plain HTTP 401/404/400 with a JSON body, and not a byte about the task."""
from __future__ import annotations

import time
import uuid

import jwt
import pytest
from websockets.sync.client import connect

from .nf_helpers import collect, feed_url, open_feed, refused


def forged(secret: str, **claims) -> str:
    base = {"sub": "1", "type": "access", "exp": int(time.time()) + 600, "jti": uuid.uuid4().hex}
    return jwt.encode({**base, **claims}, secret, algorithm="HS256")


def test_missing_token_is_401(notifier):
    status, body = refused(feed_url(notifier))
    assert status == 401 and body["error"] == "Authentication credentials were not provided."


@pytest.mark.parametrize("case", ["garbage", "wrong-secret", "expired", "not-access", "alg-none"])
def test_bad_tokens_are_401(notifier, user, store, case):
    secret = store.settings.jwt_secret_key
    token = {
        "garbage": "not-a-jwt",
        "wrong-secret": forged("some-other-secret-that-is-long-enough-0123", sub=str(user.user_id)),
        "expired": forged(secret, sub=str(user.user_id), exp=int(time.time()) - 5),
        "not-access": forged(secret, sub=str(user.user_id), type="other"),
        "alg-none": jwt.encode({"sub": str(user.user_id), "type": "access", "exp": int(time.time()) + 600},
                               None, algorithm="none"),
    }[case]
    status, body = refused(feed_url(notifier, token=token))
    assert status == 401 and body["error"] == "Token is invalid or expired."


def test_refresh_token_is_401(notifier, user):
    task = user.create("echo", {})
    assert refused(feed_url(notifier, token=user.refresh))[0] == 401
    assert refused(feed_url(notifier, task["id"], token=user.refresh))[0] == 401


def test_bearer_header_is_accepted(notifier, user):
    task = user.create("echo", {})
    with connect(feed_url(notifier, task["id"]), additional_headers={"Authorization": f"Bearer {user.access}"}) as ws:
        assert collect(ws, lambda got: len(got) == 1)[0]["task_id"] == task["id"]


def test_another_owners_task_is_404_like_an_unknown_one(notifier, user, other_user):
    theirs = other_user.create("echo", {"secret": 1})
    status, body = refused(feed_url(notifier, theirs["id"], token=user.access))
    assert status == 404 and body["error"] == "Not found."
    assert refused(feed_url(notifier, str(uuid.uuid4()), token=user.access)) == (status, body)
    # The owner still gets it.
    with open_feed(notifier, other_user, theirs["id"]) as ws:
        assert collect(ws, lambda got: len(got) == 1)[0]["task_id"] == theirs["id"]


@pytest.mark.parametrize("path", ["/ws/tasks/not-a-uuid/", "/ws/tasks/123/", "/ws/other/", "/ws/tasks/a/b/", "/"])
def test_unknown_paths_and_malformed_ids_are_404(notifier, user, path):
    assert refused(f"{notifier.ws_base}{path}?token={user.access}")[0] == 404


def test_trailing_slash_is_optional(notifier, user):
    task = user.create("echo", {})
    for url in (f"{notifier.ws_base}/ws/tasks?token={user.access}",
                f"{notifier.ws_base}/ws/tasks/{task['id']}?token={user.access}"):
        with connect(url, open_timeout=5) as ws:
            assert ws.protocol.state.name == "OPEN"


def test_malformed_last_event_id_is_400(notifier, user):
    status, body = refused(feed_url(notifier, token=user.access, last_event_id="yesterday"))
    assert status == 400 and "last_event_id" in body["error"]
