"""A websocket client on the notifier's `/ws/tasks/` feed for the whole run, so the notifier's
fan-out path (not only its stream reader) is under load. It resumes with `last_event_id` when
the connection drops (slow-client close, notifier restart) and counts what it received."""
from __future__ import annotations

import json
import threading
from urllib.parse import quote

from websockets.exceptions import WebSocketException
from websockets.sync.client import connect


class Watcher:
    def __init__(self, ws_url: str, token: str):
        self.url = f"{ws_url}/ws/tasks/?token={quote(token)}"
        self.messages = 0
        self.reconnects = 0
        self._last_stream_id: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            url = self.url + (f"&last_event_id={quote(self._last_stream_id)}" if self._last_stream_id else "")
            try:
                with connect(url, open_timeout=10, close_timeout=2) as ws:
                    while not self._stop.is_set():
                        self._receive(ws)
            except (OSError, WebSocketException):
                self.reconnects += 1
                self._stop.wait(1)

    def _receive(self, ws) -> None:
        try:
            message = json.loads(ws.recv(timeout=1))
        except TimeoutError:
            return
        self.messages += 1
        self._last_stream_id = message.get("stream_id") or self._last_stream_id

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
