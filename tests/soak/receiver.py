"""The webhook receiver of the soak: an HTTP server on 127.0.0.1 that answers 200, or 503 to a
seeded share of sends so the dispatcher's retries (and their attempt rows) are part of the load."""
from __future__ import annotations

import random
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, refuse_share: float = 0.1, seed: int = 1):
        self.counts: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._refuse_share = refuse_share
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, name="soak-receiver", daemon=True).start()

    def _answer(self) -> int:
        with self._lock:
            status = 503 if self._rng.random() < self._refuse_share else 200
            self.counts[status] += 1
        return status

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver._answer()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
