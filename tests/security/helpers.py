"""Shared building blocks of the security suite: API users that remember every token they
were issued, unique markers, "no byte of X in this response" assertions, JWT forgery and
websocket handshakes."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Iterable

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

JWT_SECRET = "security-suite-jwt-secret-" + uuid.uuid4().hex  # the services under test get this key
TERMINAL = ("success", "failure", "revoked")

# Every token string any gateway issued during the package (register, token, refresh):
# the secrets checks look for each of them in logs, events and responses.
ISSUED_TOKENS: set[str] = set()
# Every response a SecUser received, and every password a SecUser registered with: the
# secrets checks scan them all.
RESPONSES: list[requests.Response] = []
PASSWORDS: set[str] = set()
TOKEN_PATHS = ("/auth/register/", "/auth/token/", "/auth/token/refresh/")  # the responses that carry tokens


def marker(kind: str) -> str:
    """A unique ASCII string that cannot occur by chance (JSON-escaping leaves it as is)."""
    return f"{kind}{uuid.uuid4().hex}"


# --------------------------------------------------------------------------- users


class SecUser:
    """A registered API user; keeps its password and its current access/refresh tokens.

    Calls go to `base_url` (the strict gateway) unless `dev=True` (the gateway that allows
    private callback URLs). Nothing is asserted here: tests look at the responses.
    """

    def __init__(self, system, password: str | None = None, username: str | None = None):
        self.system = system
        self.username = username or marker("sec_")[:20]
        self.password = password or marker("pw-")
        PASSWORDS.add(self.password)
        self.http = requests.Session()
        r = self.call("POST", "/auth/register/", json={
            "username": self.username, "email": f"{self.username}@example.com",
            "password": self.password, "password_confirm": self.password,
        }, auth=False)
        assert r.status_code == 201, r.text
        body = r.json()
        self.id = body["user"]["id"]
        self.access, self.refresh = body["tokens"]["access"], body["tokens"]["refresh"]

    # -- HTTP
    def url(self, path: str, dev: bool = False) -> str:
        return f"{self.system.dev_base_url if dev else self.system.base_url}/api/v1{path}"

    def call(self, method: str, path: str, *, token: str | None = None, auth: bool = True, dev: bool = False,
             **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if auth:
            headers.setdefault("Authorization", f"Bearer {token or self.access}")
        r = self.http.request(method, self.url(path, dev), headers=headers, timeout=15, **kwargs)
        RESPONSES.append(r)
        if r.headers.get("Content-Type", "").startswith("application/json") and r.content:
            try:
                body = r.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                for key in ("access", "refresh"):
                    if isinstance(body.get(key), str):
                        ISSUED_TOKENS.add(body[key])
                if isinstance(body.get("tokens"), dict):
                    ISSUED_TOKENS.update(v for v in body["tokens"].values() if isinstance(v, str))
        return r

    def get(self, path: str, **kw) -> requests.Response:
        return self.call("GET", path, **kw)

    def post(self, path: str, json=None, **kw) -> requests.Response:
        return self.call("POST", path, json=json, **kw)

    def ok(self, method: str, path: str, expect: int = 200, **kw) -> dict:
        r = self.call(method, path, **kw)
        assert r.status_code == expect, f"{method} {path} -> {r.status_code} {r.text[:500]}"
        return r.json() if r.content else {}

    # -- auth
    def login(self) -> dict:
        """A new session (POST /auth/token/): returns and adopts its token pair."""
        body = self.ok("POST", "/auth/token/", json={"username": self.username, "password": self.password}, auth=False)
        self.access, self.refresh = body["access"], body["refresh"]
        return body

    def rotate(self) -> dict:
        body = self.ok("POST", "/auth/token/refresh/", json={"refresh": self.refresh}, auth=False)
        self.access, self.refresh = body["access"], body["refresh"]
        return body

    # -- tasks
    def create_task(self, dev: bool = False, expect: int = 201, **fields) -> dict:
        body = {"name": fields.pop("name", marker("task-")), "task_type": fields.pop("task_type", "echo"),
                "payload": fields.pop("payload", {}), **fields}
        return self.ok("POST", "/tasks/", expect, json=body, dev=dev)

    def task(self, task_id: str) -> dict:
        return self.ok("GET", f"/tasks/{task_id}/")

    def wait_task(self, task_id: str, statuses=TERMINAL, timeout: float = 20) -> dict:
        wanted = (statuses,) if isinstance(statuses, str) else tuple(statuses)
        return wait_for(lambda: (t := self.task(task_id))["status"] in wanted and t,
                        timeout, f"task {task_id} to reach {wanted}")

    def task_count(self) -> int:
        return self.ok("GET", "/tasks/", params={"page_size": 1})["count"]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what} (last: {value!r})")
        time.sleep(interval)


# --------------------------------------------------------------------------- leak assertions


def response_text(r: requests.Response) -> str:
    """Status line, every header and the raw body, as one searchable string."""
    headers = "\n".join(f"{k}: {v}" for k, v in r.headers.items())
    return f"{r.status_code}\n{headers}\n\n{r.content.decode('utf-8', errors='replace')}"


def leaks(text: str, secrets: Iterable[str]) -> list[str]:
    """Which of `secrets` occur in `text` (also JSON-escaped), shortened for messages."""
    found = []
    for s in secrets:
        if not s:
            continue
        escaped = json.dumps(s)[1:-1]
        if s in text or escaped in text:
            found.append(s if len(s) < 60 else s[:25] + "..." + s[-25:])
    return found


def assert_no_leak(r: requests.Response | str, secrets: Iterable[str], where: str = "") -> None:
    text = r if isinstance(r, str) else response_text(r)
    found = leaks(text, secrets)
    label = where or (f"{r.request.method} {r.request.url}" if not isinstance(r, str) else "text")
    assert not found, f"{label} leaks {found}"


def assert_json_error(r: requests.Response, status: int | tuple[int, ...]) -> dict:
    wanted = (status,) if isinstance(status, int) else status
    assert r.status_code in wanted, f"{r.request.method} {r.request.url} -> {r.status_code} (want {wanted}): {r.text[:300]}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers.get("Content-Type")
    body = r.json()
    assert "error" in body, body
    return body


# --------------------------------------------------------------------------- JWT forgery


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def claims_of(token: str) -> dict:
    """The payload of a JWT, unverified (tests read what the server put in)."""
    return json.loads(unb64url(token.split(".")[1]))


def header_of(token: str) -> dict:
    return json.loads(unb64url(token.split(".")[0]))


def forge(claims: dict, *, alg: str = "HS256", key: str | None = JWT_SECRET, sign_as: str | None = None,
          header: dict | None = None) -> str:
    """A JWT with these claims. `alg` goes in the header; the signature is HMAC with
    `sign_as` (default: `alg` when it is HS*, else HS256) over `key`; alg none -> no signature."""
    head = {"alg": alg, "typ": "JWT", **(header or {})}
    signing_input = f"{b64url(json.dumps(head).encode())}.{b64url(json.dumps(claims).encode())}"
    if alg.lower() == "none" or key is None:
        return signing_input + "."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[
        sign_as or (alg if alg in ("HS256", "HS384", "HS512") else "HS256")]
    signature = hmac.new(key.encode(), signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(signature)}"


# --------------------------------------------------------------------------- websockets


def ws_url(system, task_id: str | None = None, token: str | None = None, **params) -> str:
    path = "/ws/tasks/" if task_id is None else f"/ws/tasks/{task_id}/"
    if token is not None:
        params["token"] = token
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{system.notifier.ws_base}{path}{'?' + query if query else ''}"


def ws_open(system, token: str, task_id: str | None = None, header: bool = True, **params) -> ClientConnection:
    """An accepted feed (fails the test if the handshake is refused)."""
    if header:
        return connect(ws_url(system, task_id, **params), additional_headers={"Authorization": f"Bearer {token}"},
                       open_timeout=5, close_timeout=2)
    return connect(ws_url(system, task_id, token=token, **params), open_timeout=5, close_timeout=2)


def ws_refusal(url: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    """Status, raw body and headers of a refused handshake; fails if the handshake is accepted."""
    try:
        with connect(url, additional_headers=headers, open_timeout=5, close_timeout=1) as ws:
            try:
                first = ws.recv(timeout=0.5)
            except TimeoutError:
                first = None
            raise AssertionError(f"handshake accepted for {url}; first message: {first!r}")
    except InvalidStatus as exc:
        return exc.response.status_code, exc.response.body or b"", dict(exc.response.headers.raw_items())


def ws_messages(ws: ClientConnection, seconds: float, until=None) -> list[dict]:
    """Messages for up to `seconds`; stops early once `until(messages)` is true."""
    got: list[dict] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if until is not None and until(got):
            break
        try:
            got.append(json.loads(ws.recv(timeout=left)))
        except TimeoutError:
            break
    return got
