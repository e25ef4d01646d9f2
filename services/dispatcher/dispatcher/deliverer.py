"""Sends due deliveries: a claim loop feeding a fixed pool of sender threads, plus a lease
heartbeat.

The claim loop only takes as many deliveries as there are idle senders, so nothing sits
claimed in memory; it wakes on `poke()` (a delivery was just recorded), when a sender frees
up, or every DUE_POLL_SECONDS (retries falling due, replays recorded by the gateway).
Threads are daemons: on shutdown `drain` waits a bounded time for sends in flight, and a
send still running then is simply re-sent by another dispatcher once its lease runs out.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
import uuid

from shared.settings import Settings

from . import metrics
from .retry import next_delay
from .sender import AttemptResult, Sender
from .store import FAILURE, PENDING, SUCCESS, Claimed, Outcome, Store

log = logging.getLogger(__name__)
DUE_POLL_SECONDS = 0.5
COMPLETE_TRIES = 3


def decide(delivery: Claimed, result: AttemptResult, retry_base: float) -> Outcome:
    """What an attempt's result means for the delivery: done, failed for good, or retry when."""
    common = {"code": result.status_code, "response_body": result.response_body,
              "duration_ms": int(result.duration * 1000)}
    if result.ok:
        return Outcome(SUCCESS, error="", **common)
    if result.refused or delivery.attempt >= delivery.max_attempts:
        return Outcome(FAILURE, error=result.error, **common)
    return Outcome(PENDING, error=result.error, delay=next_delay(retry_base, delivery.attempt, result.retry_after), **common)


class Deliverer:
    def __init__(self, settings: Settings, store: Store, sender: Sender):
        self.store, self.sender = store, sender
        self.concurrency = max(1, settings.dispatcher_concurrency)
        self.retry_base = settings.webhook_retry_base_seconds
        self.heartbeat_seconds = max(0.2, settings.webhook_lease_seconds / 3)
        self.in_flight: dict[uuid.UUID, Claimed] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    # -- lifecycle
    def start(self) -> None:
        targets = [(f"sender-{i}", self._send_loop) for i in range(self.concurrency)]
        targets += [("claimer", self._claim_loop), ("lease-heartbeat", self._heartbeat_loop)]
        for name, target in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def poke(self) -> None:
        """Deliveries were just recorded: look for due ones now."""
        self._wake.set()

    def drain(self, timeout: float) -> int:
        """Stop claiming, let sends in flight finish for up to `timeout` s; returns how many
        were still running (their leases expire and another dispatcher re-sends them)."""
        self._stopping.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(self.concurrency):
            self._jobs.put(None)
        return len(self.in_flight)

    # -- loops
    def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            free = self.concurrency - len(self.in_flight)
            claimed: list[Claimed] = []
            if free > 0:
                try:
                    claimed = self.store.claim(free)
                except Exception:  # noqa: BLE001 - Postgres down: try again shortly
                    metrics.ERRORS.labels("claim").inc()
                    log.warning("claiming due deliveries failed", exc_info=True)
                    self._stopping.wait(1.0)
                    continue
                with self._lock:
                    for delivery in claimed:
                        self.in_flight[delivery.id] = delivery
                metrics.IN_FLIGHT.set(len(self.in_flight))
                for delivery in claimed:
                    self._jobs.put(delivery)
            if claimed and len(claimed) == free:
                continue  # possibly more due: go again as soon as a sender is free
            self._wake.wait(DUE_POLL_SECONDS)

    def _heartbeat_loop(self) -> None:
        while not (self._stopping.is_set() and not self.in_flight):
            with self._lock:
                ids = list(self.in_flight)
            try:
                self.store.renew(ids)
            except Exception:  # noqa: BLE001 - a missed renewal only risks a duplicate send
                metrics.ERRORS.labels("heartbeat").inc()
                log.warning("renewing delivery leases failed", exc_info=True)
            time.sleep(self.heartbeat_seconds)

    def _send_loop(self) -> None:
        while True:
            delivery = self._jobs.get()
            if delivery is None:
                return
            try:
                self._deliver(delivery)
            except Exception:  # noqa: BLE001 - the lease runs out and the delivery is retried
                metrics.ERRORS.labels("send").inc()
                log.exception("delivery attempt failed unexpectedly", extra={"delivery_id": str(delivery.id)})
            finally:
                with self._lock:
                    self.in_flight.pop(delivery.id, None)
                metrics.IN_FLIGHT.set(len(self.in_flight))
                self._wake.set()

    # -- one attempt
    def _deliver(self, delivery: Claimed) -> None:
        if delivery.attempt > delivery.max_attempts + 1:
            # Its senders kept dying mid-attempt (the last one gets one extra try): give up.
            outcome = Outcome(FAILURE, None, "Gave up: the last attempts were interrupted by dispatcher crashes",
                              record_attempt=False)
        else:
            result = self.sender.send(delivery)
            metrics.ATTEMPT_SECONDS.observe(result.duration)
            outcome = decide(delivery, result, self.retry_base)
        held = self._complete(delivery, outcome)
        label = {SUCCESS: "success", FAILURE: "failure", PENDING: "retry"}[outcome.status]
        metrics.DELIVERIES.labels(label).inc()
        log.info("webhook attempt", extra={
            "delivery_id": str(delivery.id), "task_id": str(delivery.task_id), "event": delivery.event,
            "attempt": delivery.attempt, "outcome": label, "status_code": outcome.code,
            "error": outcome.error or None, "retry_in_s": outcome.delay, "lease_lost": not held,
        })

    def _complete(self, delivery: Claimed, outcome: Outcome) -> bool:
        for attempt in range(1, COMPLETE_TRIES + 1):
            try:
                return self.store.complete(delivery, outcome)
            except Exception:  # noqa: BLE001
                if attempt == COMPLETE_TRIES:
                    raise
                log.warning("recording a webhook attempt failed; retrying", exc_info=True)
                time.sleep(attempt)
        return False
