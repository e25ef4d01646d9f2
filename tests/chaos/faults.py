"""The fault injector: a seeded random schedule of crashes, played while the workload runs.

Every kind of process is kill -9'd and restarted at least once (gateway, each worker, each
scheduler, each dispatcher, the notifier); Redis is killed and restarted empty `redis_wipes`
times; Postgres is restarted once with a fast shutdown; every worker, every scheduler and
every dispatcher are also killed together once (a whole tier down). After the planned faults,
random extra kills (one in four a graceful SIGTERM restart, like a deploy) continue until the
workload has been submitted.
"""
from __future__ import annotations

import random
import threading
import time
from collections import Counter

import redis
from support.stack import Service, Stack

from .observers import WsClient
from .servers import Servers

EVENTS_STREAM = "taskqueue:events"


def parse_sid(sid: str | bytes | None) -> tuple[int, int]:
    if not sid:
        return (0, 0)
    sid = sid.decode() if isinstance(sid, bytes) else sid
    ms, _, seq = sid.partition("-")
    return (int(ms), int(seq or 0))


class FaultInjector:
    def __init__(self, stack: Stack, servers: Servers, ws: WsClient, seed: int, interval: float, redis_wipes: int = 2):
        self.stack, self.servers, self.ws = stack, servers, ws
        self.rng = random.Random(seed * 7919 + 1)
        self.interval, self.redis_wipes = interval, redis_wipes
        self.counts: Counter = Counter()
        self.log: list[tuple[float, str, str]] = []  # (time, kind, detail)
        self.errors: list[str] = []
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="faults", daemon=True)

    # -- schedule
    def planned(self) -> list[tuple[str, Service | str | None]]:
        """Each service once, the Redis wipes and the Postgres restart, in a seeded order."""
        faults: list[tuple[str, Service | None]] = [("kill9", s) for s in self.stack.services]
        faults += [("redis_wipe", None)] * self.redis_wipes + [("postgres_restart", None)]
        # a whole tier down at once: no replica left to take over until they are back
        faults += [("kill9_tier", kind) for kind in ("worker", "scheduler", "dispatcher")]
        self.rng.shuffle(faults)
        return faults

    def extra(self) -> tuple[str, Service | None]:
        """A random process; one time in four a graceful SIGTERM restart (a deploy) instead."""
        return ("sigterm" if self.rng.random() < 0.25 else "kill9", self.rng.choice(self.stack.services))

    def start(self, until: threading.Event) -> "FaultInjector":
        self._until = until
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        todo = self.planned()
        while not self.stop.is_set():
            if not todo and self._until.is_set():
                return
            fault = todo.pop(0) if todo else self.extra()
            if self.stop.wait(self.rng.uniform(0.5, 1.5) * self.interval):
                return
            try:
                self.inject(*fault)
            except Exception as exc:  # noqa: BLE001 - record and carry on: the checks will tell
                self.errors.append(f"{fault[0]} {getattr(fault[1], 'name', '')}: {exc}")
                print(f"  fault error: {self.errors[-1][:300]}", flush=True)

    # -- the faults
    def inject(self, kind: str, svc) -> None:
        """One fault: `svc` is the Service (kill9, sigterm), the kind of service (kill9_tier) or None."""
        started = time.time()
        if kind == "kill9":
            self._kill9(svc)
            label, detail = f"kill -9 {svc.kind}", svc.name
        elif kind == "kill9_tier":
            self._kill9_tier(svc)
            label, detail = f"kill -9 every {svc}", ""
        elif kind == "sigterm":
            svc.terminate(30)
            self._restart(svc)
            label, detail = f"SIGTERM restart {svc.kind}", svc.name
        elif kind == "redis_wipe":
            detail = self._redis_wipe()
            label = "redis restart (data wiped)"
        else:
            self._postgres_restart()
            label, detail = "postgres restart (fast)", ""
        self.counts[label] += 1
        self.log.append((started, label, detail))
        print(f"  [{time.strftime('%H:%M:%S')}] fault: {label} {detail} ({time.time() - started:.1f}s)", flush=True)

    def _kill9(self, svc: Service) -> None:
        svc.kill9()
        time.sleep(self.rng.uniform(0.2, 2.0))  # down for a moment, as a crash-looping pod would be
        self._restart(svc)

    def _kill9_tier(self, kind: str) -> None:
        tier = self.stack.of_kind(kind)
        for svc in tier:
            svc.kill9()
        time.sleep(self.rng.uniform(1.0, 3.0))
        for svc in tier:
            self._restart(svc)

    def _restart(self, svc: Service, give_up_after: float = 300) -> None:
        """Start until healthy, like an orchestrator's restart loop (a start may fail while
        Postgres or Redis is still coming back)."""
        deadline = time.monotonic() + give_up_after
        while not self.stop.is_set():  # the run is being torn down: start nothing new
            svc.start()
            try:
                svc.wait_healthy(120)
                return
            except RuntimeError as exc:
                if time.monotonic() > deadline:
                    raise
                print(f"  {svc.name} did not come back ({str(exc).splitlines()[0]}); restarting it", flush=True)
                svc.kill9()
                time.sleep(5)

    def _redis_wipe(self) -> str:
        """Freeze writes, let the websocket client catch up with the stream, then kill Redis
        (no persistence: it comes back empty). Without the catch-up the client could not see
        the events it had not read yet, by design (it would get a replay_gap notice)."""
        client = redis.Redis.from_url(self.servers.redis.url, socket_timeout=5)
        caught_up = False
        try:
            client.execute_command("CLIENT", "PAUSE", 15000, "WRITE")
            newest = client.xrevrange(EVENTS_STREAM, "+", "-", count=1)
            tail = parse_sid(newest[0][0] if newest else None)
            deadline = time.monotonic() + 12
            while time.monotonic() < deadline and not caught_up:
                caught_up = parse_sid(self.ws.last_stream_id()) >= tail
                time.sleep(0.05)
        finally:
            client.close()
        self.servers.redis.kill()
        time.sleep(self.rng.uniform(1.0, 3.0))
        self.servers.redis.start()
        return "" if caught_up else "(websocket client had not caught up)"

    def _postgres_restart(self) -> None:
        self.servers.postgres.stop("fast")
        time.sleep(self.rng.uniform(1.0, 3.0))
        self.servers.postgres.start()
