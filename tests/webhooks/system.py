"""The e2e System (tests/e2e/e2e_helpers.py) plus dispatcher processes, with a one-worker
gateway. Used by the webhook tests and by tests/bench/webhook_throughput.py."""
from __future__ import annotations

import sys

from e2e.e2e_helpers import Service, System, free_port


class WebhookSystem(System):
    """The e2e System plus dispatchers, with a single-worker gateway."""

    gateway_workers = 1

    def __init__(self, log_dir, env):
        super().__init__(log_dir, env)
        self.dispatchers: list[Service] = []

    def start_dispatcher(self, wait: bool = True, **env) -> Service:
        port = free_port()
        argv = [sys.executable, "-m", "dispatcher", "--metrics-port", str(port)]
        svc = self._spawn(f"dispatcher-{self._next()}", argv, {**self.env, **env}, f"http://127.0.0.1:{port}/healthz")
        svc.metrics_url = f"http://127.0.0.1:{port}/metrics"
        self.dispatchers.append(svc)
        if wait:
            svc.wait_healthy()
        return svc

    def stop_dispatcher(self, svc: Service, timeout: float = 20) -> float:
        elapsed = svc.terminate(timeout)
        self.dispatchers.remove(svc)
        return elapsed

    def kill_dispatcher(self, svc: Service) -> None:
        svc.kill9()
        self.dispatchers.remove(svc)

    def ensure_one_dispatcher(self) -> Service:
        for svc in list(self.dispatchers):
            if not svc.alive():
                svc.kill9()
                self.dispatchers.remove(svc)
        while len(self.dispatchers) > 1:
            self.stop_dispatcher(self.dispatchers[-1])
        if not self.dispatchers:
            self.start_dispatcher()
        return self.dispatchers[0]
