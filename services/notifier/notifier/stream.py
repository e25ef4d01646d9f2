"""Reading the event stream: the live reader (one per process) and replays for resuming clients.

No consumer group: every notifier replica reads the whole stream on its own (each serves
different clients), and a reader only ever moves forward from the last id it has seen, so a
Redis hiccup costs latency, not events (as long as the stream's retention covers the outage).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import AsyncIterator

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from . import metrics
from .fanout import Router
from .messages import ZERO, Entry, StreamId, format_stream_id, from_stream, parse_stream_id, routing_keys

log = logging.getLogger("notifier.stream")

BLOCK_MS = 5000  # one XREAD round trip at least this often, even when nothing happens
READ_COUNT = 1000
# After a read that did not fill READ_COUNT, wait this long before the next one: under load a
# read then brings a batch instead of the one or two entries that arrived meanwhile (a read
# costs far more than an entry), for at most this much added latency on a live update.
GATHER_SECONDS = 0.01
REPLAY_BATCH = 1000
RETRY_SECONDS = 1.0


def decode(stream_id, fields) -> Entry | None:
    """An entry, or None (logged) when it does not follow the schema: a bad entry is skipped."""
    try:
        return from_stream(stream_id, fields)
    except (KeyError, ValueError, TypeError):
        log.warning("skipping malformed stream entry", extra={"stream_id": str(stream_id)})
        return None


def decode_wanted(stream_id, fields, router: Router) -> Entry | None:
    """`decode`, for an entry some subscriber may want; None, without decoding it, for the rest.

    Most entries concern nobody connected to this replica, and decoding (JSON, a datetime, the
    rendered message) is most of what an entry costs: its two raw routing fields are enough to
    tell. When they cannot be read raw, the full decode decides (and logs a malformed entry).
    """
    try:
        owner_id, task_id = routing_keys(fields)
    except (KeyError, ValueError, TypeError, AttributeError):
        return decode(stream_id, fields)
    return decode(stream_id, fields) if router.wants(owner_id, task_id) else None


class StreamReader:
    """Follows the stream with XREAD BLOCK and hands the router, in order, every entry it may want.

    `position` is the id of the last entry read (handed over or not). A connection registered
    with the router while the position is P receives every entry after P live, so it only needs
    a replay up to P (see `session`): the check and the registration happen without an await.
    """

    def __init__(self, client: aioredis.Redis, stream: str, router: Router):
        self.client, self.stream, self.router = client, stream, router
        self.position: StreamId | None = None
        self.last_read = 0.0  # monotonic time of the last successful XREAD (health)

    async def start(self) -> None:
        """Begin after the stream's current last entry; retries until Redis answers."""
        while self.position is None:
            try:
                newest = await self.client.xrevrange(self.stream, "+", "-", count=1)
                self.position = parse_stream_id(newest[0][0]) if newest else ZERO
                self.last_read = time.monotonic()
            except RedisError as exc:
                metrics.STREAM_ERRORS.inc()
                log.warning("event stream unavailable; retrying", extra={"error": str(exc)})
                await asyncio.sleep(RETRY_SECONDS)
        log.info("following the event stream", extra={"stream": self.stream, "after": format_stream_id(self.position)})

    async def run(self) -> None:
        while True:
            try:
                reply = await self.client.xread({self.stream: format_stream_id(self.position)}, count=READ_COUNT,
                                                block=BLOCK_MS)
            except RedisError as exc:
                metrics.STREAM_ERRORS.inc()
                log.warning("event stream read failed; retrying", extra={"error": str(exc)})
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self.last_read = time.monotonic()
            read = 0
            for _stream, rows in reply:
                read += len(rows)
                await self._hand_over(rows)
            if 0 < read < READ_COUNT:
                await asyncio.sleep(GATHER_SECONDS)

    async def _hand_over(self, rows) -> None:
        """Publish entry by entry, letting the connections write after each entry they were given.

        Without the yield a burst (one XREAD returns up to READ_COUNT entries) would land in
        every queue at once and overflow healthy clients too; with it, a queue only grows
        while its client's socket is not taking data. `position` moves with each entry, wanted
        or not, so a connection registering between two entries knows exactly where its live
        part begins. An entry nobody wanted (most of them: see `decode_wanted`) grew no queue,
        so it needs no yield: nothing is awaited between the router's check and the move of
        `position` past it, so a connection registering afterwards gets it from its replay
        (which goes up to the position it saw).
        """
        metrics.STREAM_ENTRIES.inc(len(rows))
        for stream_id, fields in rows:
            entry = decode_wanted(stream_id, fields, self.router)
            given = entry is not None and self.router.publish(entry)
            self.position = parse_stream_id(stream_id)
            if given:
                await asyncio.sleep(0)

    def age(self) -> float:
        """Seconds since the last successful read (infinite before the first)."""
        return time.monotonic() - self.last_read if self.last_read else float("inf")


GAP = object()  # yielded by `replay` where entries the client should have had may be missing


async def replay(client: aioredis.Redis, stream: str, after: StreamId, upto: StreamId, *,
                 resuming: bool) -> AsyncIterator[Entry | object]:
    """Entries with `after` < id <= `upto`, oldest first, in batches; `GAP` (once) if some may be gone.

    Trimming (MAXLEN) only ever removes the oldest entries, so an entry still on the stream
    proves every later one is still there. Each batch is therefore read *from its anchor,
    inclusive* (the last entry already handed over, or the client's `last_event_id` when
    `resuming`): when one XRANGE returns the anchor first, nothing between it and the rest of
    the batch was trimmed, atomically. When the anchor is missing (trimmed, or the stream was
    emptied or lost, whatever it held after) `GAP` comes before the entries that are left.
    A fresh connection's first anchor is the handshake's position, which need not be an entry
    (an empty stream, or one trimmed since), so its first batch is not checked.
    XDEL does not trim from the head: an entry deleted after `after` (Redis >= 7 records the
    newest one) is reported as a gap up front.
    """
    report = True  # one GAP is enough: the client refetches the state anyway
    if resuming and await deleted_after(client, stream, after):
        yield GAP
        report = False
    anchored, cursor, first = resuming, after, True
    while cursor < upto or (first and anchored):  # a client already at `upto` still needs its check
        first = False
        lowest = format_stream_id(cursor) if anchored else "(" + format_stream_id(cursor)
        rows = await client.xrange(stream, min=lowest, max=format_stream_id(max(cursor, upto)),
                                   count=REPLAY_BATCH + 1 if anchored else REPLAY_BATCH)
        if anchored:
            if rows and parse_stream_id(rows[0][0]) == cursor:
                rows = rows[1:]
            elif report:
                yield GAP
                report = False
        if not rows:
            return
        for stream_id, fields in rows:
            entry = decode(stream_id, fields)
            if entry is not None:
                yield entry
        cursor = parse_stream_id(rows[-1][0])
        anchored = report


async def deleted_after(client: aioredis.Redis, stream: str, after: StreamId) -> bool:
    """True when XDEL removed an entry newer than `after` (Redis >= 7 keeps the newest deleted id)."""
    try:
        info = await client.xinfo_stream(stream)
    except ResponseError:  # no stream at all: the anchor check reports the gap
        return False
    deleted = info.get("max-deleted-entry-id")
    return deleted is not None and parse_stream_id(deleted) > after
