"""Secrets never leave their place: no callback_secret, password, password hash, token or JWT
key appears in any API response, any log line of any service, the event stream, any Redis
key, any webhook body, any websocket message, any database column other than the secret's
own, or the admin pages; callback header values only travel as the webhook's headers.

One realistic flow (module fixture) generates the material: registration and logins with
marker passwords, refresh rotation, a password change, failed logins, tasks and a schedule
with a marker callback_secret and marker callback header values, webhooks delivered to the
local receiver (also triggered and replayed), websocket feeds (token in the header and in the
query string), admin pages viewed by a staff user. Each test then checks one surface.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from contextlib import ExitStack
from dataclasses import dataclass, field

import pytest
import requests
from sqlalchemy import text

from .admin_helpers import admin_login, make_staff
from .helpers import (
    ISSUED_TOKENS,
    JWT_SECRET,
    PASSWORDS,
    RESPONSES,
    TOKEN_PATHS,
    SecUser,
    leaks,
    marker,
    response_text,
    wait_for,
    ws_messages,
    ws_open,
)


@dataclass
class Flow:
    user: SecUser
    secret: str
    header_values: list[str]
    passwords: list[str]
    hashes: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    ws_received: list[str] = field(default_factory=list)
    admin_pages: list[requests.Response] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)
    task_names: list[str] = field(default_factory=list)

    def secrets(self, tokens: bool = True, header_values: bool = True) -> list[str]:
        """Everything that must never show up (tokens and callback header values optional)."""
        out = [self.secret, JWT_SECRET, *self.passwords, *PASSWORDS, *self.hashes]
        out += [h.rsplit("$", 1)[-1] for h in self.hashes if "$" in h]  # the digest alone
        if tokens:
            out += sorted(ISSUED_TOKENS)
        if header_values:
            out += self.header_values
        return out


def _terminal(task_id: str):
    return lambda got: any(json.loads(m).get("task_id") == task_id and json.loads(m).get("status") in
                           ("success", "failure") and json.loads(m).get("event_id") for m in got)


@pytest.fixture(scope="module")
def flow(system, receiver, store):
    from e2e.e2e_helpers import Db

    db = Db(store.engine)
    password, new_password = marker("pwflow-"), marker("pwnew-")
    user = SecUser(system, password=password)
    f = Flow(user, marker("cbsecret-"), [marker("hdrval-"), marker("apikey-")],
             [password, new_password, marker("pwwrong-"), marker("pwmis1-"), marker("pwmis2-")])
    user.login()
    user.rotate()
    user.ok("POST", "/auth/token/verify/", json={"token": user.access}, auth=False)
    # failures that carry secrets in their requests
    assert user.post("/auth/token/", json={"username": user.username, "password": f.passwords[2]}, auth=False).status_code == 401
    assert user.post("/auth/register/", auth=False, json={"username": marker("u")[:20], "email": "m@example.com",
                                                          "password": f.passwords[3], "password_confirm": f.passwords[4]}).status_code == 400
    assert user.post("/tasks/", json={"name": "", "task_type": "nope", "callback_url": "http://127.0.0.1/",
                                      "callback_secret": f.secret}).status_code == 400
    # invalid secrets and passwords: the 400 must say what is wrong without repeating them
    for bad_secret in (f.secret * 8, {"s": f.secret}, [f.secret], 7):
        body = {"name": "n", "task_type": "echo", "callback_url": "http://93.184.216.34/", "callback_secret": bad_secret}
        assert user.post("/tasks/", json=body).status_code == 400
        assert user.post("/schedules/", json={**body, "interval_seconds": 60}).status_code == 400
    assert user.post("/auth/change-password/", json={"old_password": f.passwords[2], "new_password": f.passwords[3],
                                                     "new_password_confirm": f.passwords[3]}).status_code == 400
    assert user.post("/auth/change-password/", json={"old_password": password, "new_password": f.passwords[3],
                                                     "new_password_confirm": f.passwords[4]}).status_code == 400
    assert user.post("/auth/register/", auth=False, json={"username": marker("u")[:20], "email": "m@example.com",
                                                          "password": f.passwords[3] * 30,  # over the 1024 limit
                                                          "password_confirm": f.passwords[3] * 30}).status_code == 400
    assert user.post("/auth/token/", auth=False, json={"username": user.username, "password": {"p": password}}).status_code in (400, 401)
    # a body the database itself rejects (a lone surrogate in jsonb): whatever the answer, the
    # error logged for it must not carry the request's bound parameters (the secret among them)
    for hostile in ('"payload": {"s": "\\udfff"}', '"callback_headers": {"X-A": "\\udfff"}', '"tags": ["\\udfff"]'):
        raw = '{"name": "n", "task_type": "echo", %s, "callback_secret": "%s"}' % (hostile, f.secret)
        assert user.call("POST", "/tasks/", data=raw.encode(), headers={"Content-Type": "application/json"}).status_code >= 400
    callbacks = {"callback_secret": f.secret,
                 "callback_headers": {"Authorization": f"Bearer {f.header_values[0]}", "X-Api-Key": f.header_values[1]}}
    with ExitStack() as feeds:
        feed_header = feeds.enter_context(ws_open(system, user.access))
        feed_query = feeds.enter_context(ws_open(system, user.access, header=False))
        f.paths = [f"/hooks/{marker('ok')}", f"/hooks/{marker('bad')}"]
        ok = user.create_task(dev=True, name=marker("secret-ok"), payload={"x": 1}, callback_url=receiver.url(f.paths[0]),
                              **callbacks)
        bad = user.create_task(dev=True, name=marker("secret-bad"), task_type="compute", payload={"operation": "nope"},
                               max_retries=0, callback_url=receiver.url(f.paths[1]), **callbacks)
        f.task_ids, f.task_names = [ok["id"], bad["id"]], [ok["name"], bad["name"]]
        user.ok("POST", "/schedules/", 201, dev=True, json={"name": marker("sched"), "interval_seconds": 86400,
                                                            "task_type": "echo", "callback_url": receiver.url(f.paths[0]),
                                                            **callbacks})
        single = feeds.enter_context(ws_open(system, user.access, ok["id"], header=False))
        user.wait_task(ok["id"], "success")
        user.wait_task(bad["id"], "failure")
        receiver.wait_for(f.paths[0])
        receiver.wait_for(f.paths[1])
        delivery = wait_for(lambda: user.ok("GET", f"/tasks/{ok['id']}/webhook-deliveries/"), 10, "a delivery")[0]
        user.ok("POST", f"/tasks/{ok['id']}/trigger_webhook/", json={})
        user.ok("POST", f"/tasks/{ok['id']}/webhook-deliveries/{delivery['id']}/replay/", expect=201)
        receiver.wait_for(f.paths[0], count=3)
        for feed in (feed_header, feed_query):
            f.ws_received += [json.dumps(m) for m in ws_messages(feed, 10, until=lambda got: all(
                _terminal(t)([json.dumps(m) for m in got]) for t in f.task_ids))]
        f.ws_received += [json.dumps(m) for m in ws_messages(single, 5, until=lambda got: len(got) >= 1)]
    # every read surface of the API, as the owner
    dead = user.ok("GET", "/dead-letters/")["results"]
    for path in ["/auth/profile/", "/tasks/", "/tasks/stats/", f"/tasks/{ok['id']}/", f"/tasks/{bad['id']}/",
                 f"/tasks/{ok['id']}/webhook-deliveries/", f"/tasks/{ok['id']}/webhook-deliveries/{delivery['id']}/",
                 "/schedules/", "/dead-letters/", *[f"/dead-letters/{d['id']}/" for d in dead], "/nowhere/"]:
        user.get(path)
    user.call("DELETE", "/tasks/")  # 405
    f.hashes.append(db.scalar("SELECT password_hash FROM users WHERE id = :i", i=user.id))
    user.ok("POST", "/auth/change-password/", json={"old_password": password, "new_password": new_password,
                                                   "new_password_confirm": new_password})
    f.hashes.append(db.scalar("SELECT password_hash FROM users WHERE id = :i", i=user.id))
    user.password = new_password
    user.login()
    user.rotate()
    user.ok("POST", "/auth/logout/", json={"refresh": user.refresh})
    # a staff user looks at the task and its delivery in the admin dashboard
    staff = SecUser(system)
    make_staff(store.engine, staff.id)
    f.hashes.append(db.scalar("SELECT password_hash FROM users WHERE id = :i", i=staff.id))
    session, r = admin_login(system.base_url, staff.username, staff.password)
    assert r.status_code == 302
    for path in (f"/admin/tasks/details/?id={ok['id']}", f"/admin/webhook-deliveries/details/?id={delivery['id']}",
                 "/admin/tasks/", "/admin/users/", f"/admin/users/details/?id={user.id}"):
        page = session.get(f"{system.base_url}{path}", timeout=10)
        assert page.status_code == 200, path
        f.admin_pages.append(page)
    return f


def test_flow_material_is_real(flow, receiver):
    """Positive controls: the secrets are where they belong, so their absence elsewhere means
    something. The webhook carries the callback header values as headers and a signature made
    with the callback_secret; the task pages really are the task's."""
    request = receiver.requests(flow.paths[0])[0]
    assert request.header("Authorization") == f"Bearer {flow.header_values[0]}"
    assert request.header("X-Api-Key") == flow.header_values[1]
    assert request.header("X-Taskqueue-Signature") == hmac.new(flow.secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert len(flow.hashes) == 3 and all(flow.hashes) and flow.hashes[0] != flow.hashes[1]
    assert any(flow.task_ids[0] in p.text for p in flow.admin_pages)
    assert len(ISSUED_TOKENS) >= 6 and flow.ws_received


def test_logs_are_captured(flow, system):
    """Positive control for the log check: every service wrote its log file, and the
    dispatcher's log records the flow's webhook attempts (so the files are live, not empty)."""
    logs = system.log_texts()
    assert {"gateway.log", "gateway-dev.log", "dispatcher.log", "notifier.log", "scheduler-1.log"} <= set(logs)
    assert any(name.startswith("worker") for name in logs)
    assert flow.task_ids[0] in logs["dispatcher.log"]


def test_no_secret_in_any_api_response(flow):
    """No response (bodies and headers, every endpoint, errors included) carries a password,
    hash, callback_secret or the JWT key; tokens appear only in the responses that issue them."""
    for r in RESPONSES:
        issuing = any(r.request.url.endswith(p) for p in TOKEN_PATHS) and r.status_code in (200, 201)
        found = leaks(response_text(r), flow.secrets(tokens=not issuing, header_values=False))
        assert not found, f"{r.request.method} {r.request.url} -> {r.status_code} leaks {found}"


def test_no_secret_in_any_log_line(flow, system):
    """No log line of any service (both gateways, worker, scheduler, dispatcher, notifier)
    holds a password, hash, callback_secret, callback header value, token or the JWT key."""
    for name, content in system.log_texts().items():
        for number, line in enumerate(content.splitlines(), 1):
            found = leaks(line, flow.secrets())
            assert not found, f"{name}:{number} leaks {found}: {line[:300]}"


def test_no_secret_in_the_event_stream_or_any_redis_key(flow, store):
    """Every entry of the event stream (XRANGE) and every other key of the package's Redis db
    (queues, dedup sets, rate-limit counters...) is free of secrets and header values."""
    secrets = flow.secrets()
    entries = store.redis.xrange("taskqueue:events")
    assert any(f[b"task_id"].decode() == flow.task_ids[0] for _, f in entries)
    for entry_id, fields in entries:
        found = leaks(repr(fields), secrets)
        assert not found, f"stream entry {entry_id} leaks {found}"
    for key in store.redis.scan_iter(count=1000):
        kind = store.redis.type(key).decode()
        value = {"string": lambda: store.redis.get(key), "list": lambda: store.redis.lrange(key, 0, -1),
                 "hash": lambda: store.redis.hgetall(key), "set": lambda: store.redis.smembers(key),
                 "zset": lambda: store.redis.zrange(key, 0, -1), "stream": lambda: store.redis.xrange(key)}.get(kind, lambda: b"")()
        found = leaks(repr(key) + repr(value), secrets)
        assert not found, f"redis key {key!r} ({kind}) leaks {found}"


def test_no_secret_in_webhook_bodies_or_foreign_headers(flow, receiver):
    """Every webhook the receiver got (sent, retried, triggered, replayed) has a body without
    secrets or header values; its headers hold the header values only under their own names
    and never the callback_secret, a password or a token."""
    for path in flow.paths:
        for request in receiver.requests(path):
            found = leaks(request.body.decode(errors="replace"), flow.secrets())
            assert not found, f"webhook body on {path} leaks {found}"
            found = leaks(json.dumps(request.raw_headers), flow.secrets(header_values=False))
            assert not found, f"webhook headers on {path} leak {found}"
            for name, value in request.raw_headers:
                if name.lower() not in ("authorization", "x-api-key"):
                    assert not leaks(value, flow.header_values), (name, value)


def test_no_secret_in_websocket_messages(flow):
    """The websocket messages of the all-tasks feeds and the single-task feed carry none."""
    for message in flow.ws_received:
        found = leaks(message, flow.secrets())
        assert not found, f"websocket message leaks {found}: {message[:200]}"


def test_admin_pages_never_show_the_callback_secret(flow):
    """The staff view of the task, its delivery and the users never shows the callback_secret,
    a password, a hash or a token."""
    for page in flow.admin_pages:
        found = leaks(page.text, flow.secrets(header_values=False))
        assert not found, f"{page.request.url} leaks {found}"


def test_no_secret_or_user_data_in_metrics_and_health(flow, system):
    """The unauthenticated /metrics, /healthz and /readyz of the gateways and every service's
    ops port expose no secret, token, username or task name."""
    names = [flow.user.username, *flow.task_names]
    urls = [f"{base}{path}" for base in (system.base_url, system.dev_base_url) for path in ("/metrics", "/healthz", "/readyz")]
    for svc in system.every_service:
        if svc.health_url.endswith("/healthz") and svc not in (system.gateway, system.dev_gateway):
            urls += [svc.health_url, svc.health_url.replace("/healthz", "/metrics")]
    assert len(urls) >= 14
    for url in urls:
        r = requests.get(url, timeout=10)
        assert r.status_code == 200, url
        found = leaks(response_text(r), flow.secrets() + names)
        assert not found, f"{url} leaks {found}"


def test_secrets_are_stored_only_in_their_own_column(flow, store):
    """In the database, the callback_secret lives only in tasks/schedules.callback_secret;
    no column anywhere holds a password, a token or the JWT key (hashes live in users only)."""
    with store.engine.connect() as conn:
        tables = conn.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )).scalars().all()
        for table in tables:
            rows = conn.execute(text(f'SELECT (to_jsonb(t) - \'callback_secret\' - \'password_hash\')::text FROM "{table}" t')).scalars()
            for row in rows:
                found = leaks(row, flow.secrets(header_values=False))
                assert not found, f"table {table} holds {found}"
