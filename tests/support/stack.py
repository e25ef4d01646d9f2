"""Run the TaskQueue services as real processes: start, probe, kill -9, SIGTERM, restart.

Used by scripts that drive the whole system (tests/chaos, tests/soak) and, for its `Service`, by
the pytest harness (tests/e2e/e2e_helpers.py); pytest-free on purpose.
Each service is one OS process (the gateway: a Granian main process plus its workers) in its own
session, started from the repository root with the environment you give, logging to
`<log_dir>/<name>.log` (appended across restarts, so a log shows every life of the service).

API (keep it stable, other scripts import it):

    from support.stack import Stack, free_port

    stack = Stack(log_dir, env={"DATABASE_URL": ..., "REDIS_URL": ...})  # merged over os.environ
    gw = stack.add_gateway(workers=2, threads=4)      # python -m gateway, gw.url = "http://127.0.0.1:<port>"
    w = stack.add_worker(queues="critical,high,default,low", threads=8)
    s = stack.add_scheduler()
    d = stack.add_dispatcher()
    n = stack.add_notifier()                          # n.url = "ws://127.0.0.1:<port>"
    stack.wait_healthy(timeout=60)                    # every service answers its health URL

    w.kill9(); w.start(); w.wait_healthy()            # or w.restart(signal="KILL"|"TERM")
    w.terminate(timeout=15)                           # SIGTERM, SIGKILL after timeout
    stack.pids()                                      # {"worker-1": [pid], "gateway": [master, children...]}
    stack.of_kind("worker")                           # services of one kind
    stack.shutdown()                                  # SIGTERM everything (reverse order), then SIGKILL

Every `Service` has: name, kind, argv, env, log_path, health_url, metrics_url (None for the
gateway, whose metrics are at url + "/metrics"), port, start(), alive(), healthy(),
wait_healthy(timeout), kill9(), terminate(timeout), restart(signal, wait), pids(), tail(lines).
Ports are chosen once (free_port) and kept across restarts, so clients reconnect to the same address.
"""
from __future__ import annotations

import os
import random
import signal as signals
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
GATEWAY_ARGS = ["-m", "gateway"]  # after the interpreter: Granian serving gateway.app:create_app
ALL_QUEUES = "critical,high,default,low"
LOCALHOST = "127.0.0.1"


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default range starts here


_GIVEN: set[int] = set()  # ports handed out by this process: never twice


def free_port() -> int:
    """A TCP port nothing listens on right now, below the kernel's ephemeral range.

    A port from that range (what binding port 0 returns) is free only until some process opens
    an outbound connection: the kernel may give the same port to its local end (a Postgres or
    Redis connection) before our service binds it, and the service fails with "address already
    in use". Ports below the range are never handed out that way.
    """
    high = _ephemeral_floor() - 1
    for _ in range(1000):
        port = random.randint(max(1024, high - 12_000), high)
        if port in _GIVEN:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((LOCALHOST, port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    raise RuntimeError("no free TCP port below the ephemeral range")


def children_of(pid: int) -> list[int]:
    """Every descendant of `pid` (from /proc), so a server's worker processes can be listed."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class Service:
    """One service process; restartable with the same argv, env, ports and log file."""

    def __init__(self, name: str, kind: str, argv: list[str], env: dict[str, str], log_path: Path,
                 health_url: str, port: int = 0, metrics_url: str | None = None):
        self.name, self.kind, self.argv, self.env = name, kind, argv, env
        self.log_path, self.health_url, self.port, self.metrics_url = log_path, health_url, port, metrics_url
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self._log = None

    def start(self) -> "Service":
        """Spawn the process in its own session (so the whole group can be killed at once)."""
        self._close_log()
        self._log = open(self.log_path, "ab")
        self._log.write(f"\n===== {self.name} start #{self.starts + 1} at {time.strftime('%H:%M:%S')} =====\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.starts += 1
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def pids(self) -> list[int]:
        """The process and its descendants (server worker processes), empty when not running."""
        return [self.proc.pid, *children_of(self.proc.pid)] if self.alive() else []

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self) -> bool:
        if not self.alive():
            return False
        try:
            return requests.get(self.health_url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def wait_healthy(self, timeout: float = 60) -> None:
        """Block until the health URL answers 200; raise with the log's tail otherwise."""
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with code {self.proc.returncode}\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not healthy after {timeout:g}s at {self.health_url}\n{self.tail()}")
            time.sleep(0.1)

    def kill9(self) -> None:
        """SIGKILL the process and every process of its group (no cleanup runs, like a crash)."""
        if self.proc is None:
            return
        self._signal_group(signals.SIGKILL)
        self._reap(10)
        self._close_log()

    def terminate(self, timeout: float = 15) -> float:
        """SIGTERM (graceful), SIGKILL the group after `timeout`; returns seconds it took."""
        if not self.alive():
            self.kill9()
            return 0.0
        started = time.monotonic()
        self.proc.send_signal(signals.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        elapsed = time.monotonic() - started
        self.kill9()  # leftovers of the group, if any
        return elapsed

    def restart(self, signal: str = "KILL", wait: bool = True, timeout: float = 60) -> None:
        """Stop (kill -9 or SIGTERM) then start again; wait for health when `wait`."""
        self.kill9() if signal == "KILL" else self.terminate()
        self.start()
        if wait:
            self.wait_healthy(timeout)

    def tail(self, lines: int = 40) -> str:
        try:
            content = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return f"[{self.name}: no log]"
        return f"----- {self.name} ({self.log_path}) last {lines} lines -----\n" + "\n".join(content[-lines:])

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _reap(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class Stack:
    """A set of services sharing one environment and one log directory."""

    def __init__(self, log_dir: Path, env: dict[str, str] | None = None, python: str = sys.executable):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **(env or {})}
        self.python = python
        self.services: list[Service] = []

    # -- adding services (each is started at once; call wait_healthy when you need them up)
    def add_gateway(self, workers: int = 2, threads: int = 4, name: str = "gateway") -> Service:
        port = free_port()
        env = {"GATEWAY_BIND": f"{LOCALHOST}:{port}", "GATEWAY_WORKERS": str(workers), "GATEWAY_THREADS": str(threads),
               "PROMETHEUS_MULTIPROC_DIR": str(self._dir(f"{name}-metrics"))}
        argv = [self.python, *GATEWAY_ARGS]
        svc = self._add(name, "gateway", argv, env, port, f"http://{LOCALHOST}:{port}/readyz", metrics=False)
        svc.url = f"http://{LOCALHOST}:{port}"
        return svc

    def add_worker(self, queues: str = ALL_QUEUES, threads: int = 8, name: str | None = None, **env) -> Service:
        port = free_port()
        argv = [self.python, "-m", "worker", "--queues", queues, "--threads", str(threads), "--metrics-port", str(port)]
        return self._add(name or self._name("worker"), "worker", argv, env, port, f"http://{LOCALHOST}:{port}/healthz")

    def add_scheduler(self, name: str | None = None, **env) -> Service:
        port = free_port()
        argv = [self.python, "-m", "scheduler", "--metrics-port", str(port)]
        return self._add(name or self._name("scheduler"), "scheduler", argv, env, port, f"http://{LOCALHOST}:{port}/healthz")

    def add_dispatcher(self, name: str | None = None, **env) -> Service:
        port = free_port()
        argv = [self.python, "-m", "dispatcher", "--metrics-port", str(port)]
        return self._add(name or self._name("dispatcher"), "dispatcher", argv, env, port, f"http://{LOCALHOST}:{port}/healthz")

    def add_notifier(self, name: str | None = None, **env) -> Service:
        port, metrics_port = free_port(), free_port()
        argv = [self.python, "-m", "notifier", "--host", LOCALHOST, "--port", str(port), "--metrics-port", str(metrics_port)]
        svc = self._add(name or self._name("notifier"), "notifier", argv, env, metrics_port,
                        f"http://{LOCALHOST}:{metrics_port}/healthz")
        svc.url = f"ws://{LOCALHOST}:{port}"
        return svc

    # -- the whole set
    def of_kind(self, kind: str) -> list[Service]:
        return [s for s in self.services if s.kind == kind]

    def pids(self) -> dict[str, list[int]]:
        return {s.name: s.pids() for s in self.services}

    def wait_healthy(self, timeout: float = 60) -> None:
        for svc in self.services:
            svc.wait_healthy(timeout)

    def shutdown(self, timeout: float = 15) -> None:
        """SIGTERM every service, newest first, then SIGKILL whatever is left."""
        for svc in reversed(self.services):
            try:
                svc.terminate(timeout)
            except Exception:  # noqa: BLE001 - keep stopping the others
                svc.kill9()

    # -- internals
    def _add(self, name: str, kind: str, argv: list[str], env: dict, port: int, health_url: str,
             metrics: bool = True) -> Service:
        metrics_url = health_url.replace("/healthz", "/metrics") if metrics else None
        svc = Service(name, kind, argv, {**self.env, **env}, self.log_dir / f"{name}.log", health_url, port, metrics_url)
        self.services.append(svc)
        return svc.start()

    def _name(self, kind: str) -> str:
        return f"{kind}-{len(self.of_kind(kind)) + 1}"

    def _dir(self, name: str) -> Path:
        path = self.log_dir / name
        path.mkdir(exist_ok=True)
        return path
