"""The services under test, as real processes, for the security suite.

Two gateways share one database: the *strict* one runs as production does
(`WEBHOOK_ALLOW_PRIVATE_NETWORKS` false: callback URLs to loopback/private hosts are refused);
the *dev* one allows private networks, as `make run` does, and is used only to create objects
whose webhooks must reach the local receiver on 127.0.0.1. The worker is strict (its
`http_request` task type refuses private targets); the dispatcher allows private networks so
that webhooks reach the receiver (cloud-metadata addresses stay refused).
"""
from __future__ import annotations

import signal
import sys
from pathlib import Path

from e2e.e2e_helpers import Service, System, free_port


class SecuritySystem(System):
    def __init__(self, log_dir: Path, env: dict[str, str]):
        super().__init__(log_dir, env)
        self.dev_base_url = ""
        self.notifier: Service | None = None
        self.dispatcher: Service | None = None

    def _gateway(self, name: str, allow_private: bool) -> tuple[Service, str]:
        return self.gateway_process(name, 1, WEBHOOK_ALLOW_PRIVATE_NETWORKS="true" if allow_private else "false")

    def start_gateways(self) -> None:
        self.gateway, self.base_url = self._gateway("gateway", allow_private=False)
        self.dev_gateway, self.dev_base_url = self._gateway("gateway-dev", allow_private=True)

    def start_dispatcher(self) -> Service:
        port = free_port()
        argv = [sys.executable, "-m", "dispatcher", "--metrics-port", str(port)]
        env = {**self.env, "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true"}
        self.dispatcher = self._spawn("dispatcher", argv, env, f"http://127.0.0.1:{port}/healthz")
        return self.dispatcher

    def start_notifier(self) -> Service:
        port, metrics_port = free_port(), free_port()
        env = {**self.env, "NOTIFIER_HOST": "127.0.0.1", "NOTIFIER_PORT": str(port),
               "NOTIFIER_METRICS_PORT": str(metrics_port)}
        svc = self._spawn("notifier", [sys.executable, "-m", "notifier"], env, f"http://127.0.0.1:{metrics_port}/healthz")
        svc.ws_base = f"ws://127.0.0.1:{port}"
        self.notifier = svc
        return svc

    def shutdown(self) -> None:
        """SIGTERM every service at once, then wait for each (SIGKILL after 10 s)."""
        for svc in self.every_service:
            if svc.alive():
                svc.proc.send_signal(signal.SIGTERM)
        for svc in self.every_service:
            try:
                svc.terminate(timeout=10)
            except Exception:  # noqa: BLE001 - keep stopping the others
                svc.kill9()

    def log_texts(self) -> dict[str, str]:
        """Every captured log file of every service (each process writes stdout+stderr there)."""
        return {p.name: p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log"))}
