"""What the outside world sees: a webhook receiver and a websocket client on `/ws/tasks/`.

Both only record; the checks compare their records with Postgres at the end.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import websockets

FAIL_ONE_IN = 10  # the first attempt of ~1 delivery in 10 gets a 503: exercises retries (same webhook-id)


@dataclass
class Delivery:
    webhook_id: str
    task_id: str
    event: str
    status: str  # the task status in the body
    at: float


class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 recording every POST (webhook-id header, body) it accepts.

    It also answers GET (a target for `http_request` tasks). Some first attempts are refused
    with 503 on purpose, deterministically by webhook-id, so retries are part of the run.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.accepted: list[Delivery] = []
        self.refused = 0
        self.gets = 0
        self._refused_ids: set[str] = set()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def record(self, headers, body: bytes) -> int:
        """Returns the status to answer: 503 on the first attempt of a chosen delivery, else 200."""
        wid = headers.get("webhook-id", "")
        with self.lock:
            if wid not in self._refused_ids and int(hashlib.sha1(wid.encode()).hexdigest(), 16) % FAIL_ONE_IN == 0:
                self._refused_ids.add(wid)
                self.refused += 1
                return 503
            doc = json.loads(body or b"{}")
            self.accepted.append(Delivery(wid, headers.get("X-Taskqueue-Task-Id", ""),
                                          doc.get("event", ""), doc.get("task", {}).get("status", ""), time.time()))
        return 200

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request: nothing was delivered
                    self.close_connection = True
                    return
                self._answer(receiver.record(self.headers, body))

            def handle_one_request(self):
                try:
                    super().handle_one_request()
                except OSError:  # a sender killed mid-connection (the faults do that)
                    self.close_connection = True

            def do_GET(self):  # noqa: N802
                with receiver.lock:
                    receiver.gets += 1
                self._answer(200)

            def _answer(self, code: int) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    self.close_connection = True

            def log_message(self, *args):
                pass

        return Handler


@dataclass
class WsStats:
    events: dict[int, dict] = field(default_factory=dict)  # event_id -> {task_id, status}
    messages: int = 0
    duplicates: int = 0
    connects: int = 0
    gaps: int = 0
    closes: Counter = field(default_factory=Counter)
    last_stream_id: str | None = None


class WsClient:
    """Follows `/ws/tasks/` (every task of its user); after any disconnect it reconnects with
    `last_event_id` = the last stream_id received, as the README tells clients to do."""

    def __init__(self, url: str, token: str):
        self.url, self.token = url, token
        self.stats = WsStats()
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="ws-client", daemon=True)

    def start(self) -> "WsClient":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def seen(self) -> set[int]:
        with self.lock:
            return set(self.stats.events)

    def last_stream_id(self) -> str | None:
        with self.lock:
            return self.stats.last_stream_id

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self._follow()
            except (OSError, websockets.exceptions.WebSocketException, asyncio.TimeoutError) as exc:
                code = getattr(getattr(exc, "rcvd", None), "code", None)
                self.stats.closes[str(code or type(exc).__name__)] += 1
            await asyncio.sleep(0.2)

    async def _follow(self) -> None:
        url = f"{self.url}/ws/tasks/"
        if self.stats.last_stream_id:
            url += f"?last_event_id={quote(self.stats.last_stream_id)}"
        headers = {"Authorization": f"Bearer {self.token}"}
        async with websockets.connect(url, additional_headers=headers, open_timeout=5, max_size=2**22) as ws:
            self.stats.connects += 1
            while not self._stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except asyncio.TimeoutError:
                    continue
                self._on_message(json.loads(raw))

    def _on_message(self, msg: dict) -> None:
        with self.lock:
            self.stats.messages += 1
            if msg.get("type") == "replay_gap":
                self.stats.gaps += 1
                return
            if msg.get("type") != "task_update" or msg.get("event_id") is None:
                return
            if msg["event_id"] in self.stats.events:
                self.stats.duplicates += 1
            self.stats.events[msg["event_id"]] = {"task_id": msg["task_id"], "status": msg["status"]}
            if msg.get("stream_id"):
                self.stats.last_stream_id = msg["stream_id"]
