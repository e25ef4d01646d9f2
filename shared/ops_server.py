"""A tiny HTTP server for the non-Flask services: `/healthz` and Prometheus `/metrics`."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

HealthCheck = Callable[[], dict]


def _handler(health: HealthCheck):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                try:
                    detail, code = health(), 200
                except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
                    detail, code = {"error": str(exc)}, 503
                self._send(code, json.dumps({"status": "ok" if code == 200 else "unhealthy", **detail}).encode())
            else:
                self._send(404, b'{"error": "Not found"}')

        def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # probes every few seconds would flood the logs
            pass

    return Handler


def serve(port: int, health: HealthCheck, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Serve in a daemon thread; returns the server so the caller can shut it down."""
    server = ThreadingHTTPServer((host, port), _handler(health))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=f"ops-http-{port}", daemon=True).start()
    return server
