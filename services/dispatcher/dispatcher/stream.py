"""The dispatcher's consumer group on the task event stream.

Several dispatcher replicas share one group, so each entry goes to one of them. An entry is
acknowledged (XACK) only after `handle` returned, i.e. once what it implies is committed in
Postgres; until then it stays in this consumer's pending list. Pending entries are re-read
after an error (our own, from id 0) and taken over from dead replicas (XAUTOCLAIM once idle
for `claim_idle_ms`). When Redis has lost the group (restart without persistence, FLUSHALL,
the stream deleted), it is recreated from the start of whatever the stream still holds;
events lost with it are re-derived from Postgres by the reconciliation.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import redis

from . import metrics

log = logging.getLogger(__name__)
GROUP = "dispatcher"
BATCH = 200
BLOCK_MS = 1000
# After a read that did not fill BATCH, wait this long before the next one: under load a read
# then brings a batch instead of one or two entries (each read and its XACK cost far more than
# an entry), for at most this much added delay before a webhook is recorded.
GATHER_SECONDS = 0.05

Entries = list[tuple[bytes, dict | None]]


class StreamConsumer:
    def __init__(self, client: redis.Redis, stream: str, consumer: str, claim_idle_ms: int,
                 handle: Callable[[Entries], None]):
        self.client, self.stream, self.consumer = client, stream, consumer
        self.claim_idle_ms = max(1, int(claim_idle_ms))
        self.handle = handle
        self.last_ok = time.monotonic()  # for the health check
        self._backlog = True  # re-read our own pending entries before new ones
        self._claim_cursor = "0-0"
        self._next_claim = 0.0

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
            log.info("created consumer group", extra={"stream": self.stream, "group": GROUP})
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.ensure_group()
                while not stop.is_set():
                    self.step()
                    self.last_ok = time.monotonic()
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    log.warning("consumer group missing (Redis lost it): recreating", extra={"stream": self.stream})
                    self._backlog = True
                else:
                    self._failed("stream command failed", stop)
            except (redis.ConnectionError, redis.TimeoutError):
                self._failed("Redis unavailable", stop)
            except Exception:  # noqa: BLE001 - e.g. Postgres down: the entries stay pending
                self._failed("handling stream entries failed", stop)

    def _failed(self, message: str, stop: threading.Event) -> None:
        metrics.ERRORS.labels("stream").inc()
        log.warning(message, exc_info=True)
        self._backlog = True
        stop.wait(1.0)

    def step(self) -> None:
        """One round: take over stale entries when it is time, then read ours or new ones."""
        if time.monotonic() >= self._next_claim:
            self._autoclaim()
        start = "0" if self._backlog else ">"
        response = self.client.xreadgroup(GROUP, self.consumer, {self.stream: start}, count=BATCH,
                                          block=None if self._backlog else BLOCK_MS)
        entries = response[0][1] if response else []
        if self._backlog and not entries:
            self._backlog = False
            return
        self._process(entries)
        if 0 < len(entries) < BATCH:
            time.sleep(GATHER_SECONDS)

    def _autoclaim(self) -> None:
        """Move entries another consumer read but never acknowledged (it died) to us."""
        self._next_claim = time.monotonic() + self.claim_idle_ms / 2000
        reply = self.client.xautoclaim(self.stream, GROUP, self.consumer, self.claim_idle_ms,
                                       start_id=self._claim_cursor, count=BATCH)
        self._claim_cursor = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
        entries = reply[1]
        if entries:
            log.warning("took over unacknowledged stream entries", extra={"count": len(entries)})
            self._process(entries)
        if self._claim_cursor != "0-0":
            self._next_claim = 0.0  # more to scan: continue next round

    def _process(self, entries: Entries) -> None:
        if not entries:
            return
        live = [(entry_id, fields) for entry_id, fields in entries if fields]  # trimmed entries have none
        if live:
            self.handle(live)
        self.client.xack(self.stream, GROUP, *[entry_id for entry_id, _ in entries])
        metrics.EVENTS_READ.inc(len(entries))

    def leave(self) -> None:
        """On shutdown: remove this consumer from the group when it holds no pending entry."""
        try:
            info = self.client.xpending_range(self.stream, GROUP, min="-", max="+", count=1, consumername=self.consumer)
            if not info:
                self.client.xgroup_delconsumer(self.stream, GROUP, self.consumer)
        except redis.RedisError:
            pass

    def forget_dead_consumers(self, idle_ms: int = 3_600_000) -> None:
        """Drop consumers (old replicas) idle for an hour that hold no pending entries."""
        for info in self.client.xinfo_consumers(self.stream, GROUP):
            name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
            if info["pending"] == 0 and info["idle"] > idle_ms and name != self.consumer:
                self.client.xgroup_delconsumer(self.stream, GROUP, name)
