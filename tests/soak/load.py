"""Driving the API: a capacity burst, then a steady paced load.

Capacity is end to end: tasks submitted as fast as CONCURRENCY clients can for a few seconds,
divided by the time until the last of them finished (read from Postgres), so a slow gateway,
worker or database all lower it. The steady load then submits at a fixed rate from a pacer
thread; at most CONCURRENCY requests are in flight, so an overloaded gateway shows up as a
lower submitted rate in the samples rather than as an ever-growing client backlog.
"""
from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Engine, text

from .workload import IMMEDIATE, MIX, Api, pick

CONCURRENCY = 16
UNFINISHED = text("SELECT count(*) FROM tasks WHERE status NOT IN ('success', 'failure', 'revoked')")


@dataclass
class Counts:
    submitted: int = 0
    accepted: int = 0
    refused: int = 0  # non-201 answers and transport errors


class Load:
    def __init__(self, api: Api, hook_url: str, seed: int):
        self.api, self.hook_url = api, hook_url
        self.counts = Counts()
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _one(self, kind: str, rng: random.Random) -> None:
        try:
            ok = self.api.submit(kind, rng, self.hook_url)
        except Exception:  # noqa: BLE001 - counted; the soak reports refusals
            ok = False
        with self._lock:
            self.counts.accepted += ok
            self.counts.refused += not ok

    def _next_kind(self, mix=MIX) -> tuple[str, random.Random]:
        """A kind and a per-task generator (threads must not share one Random)."""
        with self._lock:
            self.counts.submitted += 1
            return pick(self._rng, mix), random.Random(self._rng.random())

    def measure_capacity(self, engine: Engine, seconds: float, drain_timeout: float = 180) -> float:
        """Tasks/s end to end: submit flat out for `seconds`, wait until all finished."""
        started = time.monotonic()
        deadline = started + seconds

        def client() -> None:
            while time.monotonic() < deadline:
                self._one(*self._next_kind(IMMEDIATE))

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            for _ in range(CONCURRENCY):
                pool.submit(client)
        while time.monotonic() - started < seconds + drain_timeout:
            with engine.connect() as conn:
                if conn.execute(UNFINISHED).scalar() == 0:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError("the capacity burst did not finish in time: the system cannot keep up at all")
        return self.counts.accepted / (time.monotonic() - started)

    def start(self, rate: float) -> None:
        """Submit `rate` tasks/s until stop()."""
        self._thread = threading.Thread(target=self._pace, args=(rate,), name="soak-pacer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)

    def _pace(self, rate: float) -> None:
        slots = threading.BoundedSemaphore(CONCURRENCY)
        interval, due = 1.0 / rate, time.monotonic()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            while not self._stop.is_set():
                due += interval
                pause = due - time.monotonic()
                if pause > 0:
                    self._stop.wait(pause)
                else:
                    due = time.monotonic()  # behind: no catch-up burst
                slots.acquire()
                kind, rng = self._next_kind()
                pool.submit(self._run_in_slot, slots, kind, rng)

    def _run_in_slot(self, slots: threading.BoundedSemaphore, kind: str, rng: random.Random) -> None:
        try:
            self._one(kind, rng)
        finally:
            slots.release()
