"""One accepted connection, from subscribe to close.

Order of what a client receives:
1. single-task feed, fresh connection: a snapshot of the task (from Postgres);
2. a replay from the stream (XRANGE) of what the live reader handed over before this
   connection registered: since the handshake's position for a fresh connection, since the
   client's `last_event_id` for a resuming one;
3. live entries from the reader, through the connection's bounded queue.
A resuming client whose `last_event_id` entry is no longer on the stream (older than the
retention, or the stream was emptied, trimmed or lost, even if nothing newer was ever added)
first gets a `{"type": "replay_gap"}` notice (and, on a single-task feed, the snapshot), then
what is left. The check is the replay's own first read (see `stream.replay`), so the stream
cannot be trimmed between the check and the replay; entries trimmed in the middle of a long
replay also produce the notice (and snapshot) before the entries that are left.
The connection registers with the router *before* the replay, at reader position P, so the
replay covers up to P and the queue holds everything after P: no gap, and no entry twice.
Entries republished by the outbox relay carry the same `event_id`: a bounded window of sent
event ids drops them. With a snapshot, entries older than the snapshot's state are dropped, so
a client never sees its task go backwards.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime

import redis.asyncio as aioredis
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from . import messages, metrics, stream
from .fanout import Router, Subscriber
from .handshake import Subscription
from .messages import Entry, StreamId

log = logging.getLogger("notifier.session")

DEDUP_WINDOW = 2048  # event ids remembered per connection (the relay republishes within seconds)
SENT_LIVE = metrics.MESSAGES_SENT.labels("live")
SENT_REPLAY = metrics.MESSAGES_SENT.labels("replay")
GAP_DETAIL = "Some events after last_event_id are no longer retained; refetch the current state over HTTP."


@dataclass(frozen=True)
class Context:
    """What every session needs from the process."""

    router: Router
    reader: stream.StreamReader
    redis: aioredis.Redis  # for replays (a small shared pool, never a connection per client)
    stream: str
    buffer: int  # per-connection queue capacity (NOTIFIER_CLIENT_BUFFER)
    close_timeout: float


class Sender:
    """Writes messages to one client: skips event ids already sent, counts, measures lag."""

    def __init__(self, ws: ServerConnection):
        self.ws = ws
        self._seen: set[int] = set()
        self._order: deque[int] = deque()

    async def send(self, entry: Entry, live: bool) -> None:
        if entry.event_id in self._seen:
            return
        self._remember(entry.event_id)
        await self.ws.send(entry.text)
        if live:
            SENT_LIVE.inc()
            metrics.FANOUT_LAG.observe(max(0.0, time.time() - entry.at_epoch))
        else:
            SENT_REPLAY.inc()

    async def send_text(self, text: str, kind: str) -> None:
        await self.ws.send(text)
        metrics.MESSAGES_SENT.labels(kind).inc()

    def _remember(self, event_id: int) -> None:
        self._seen.add(event_id)
        self._order.append(event_id)
        if len(self._order) > DEDUP_WINDOW:
            self._seen.discard(self._order.popleft())


async def handle(ws: ServerConnection, ctx: Context) -> None:
    """websockets' connection handler (bound to `ctx` by the server)."""
    sub: Subscription = ws.subscription
    subscriber = Subscriber(sub.owner_id, sub.task_id, ctx.buffer)
    upto = ctx.reader.position  # no await between this read and add(): see the module docstring
    ctx.router.add(subscriber)
    metrics.CONNECTIONS.inc()
    try:
        await supervise(ws, sub, subscriber, upto, ctx)
    finally:
        ctx.router.remove(subscriber)
        metrics.CONNECTIONS.dec()


async def supervise(ws: ServerConnection, sub: Subscription, subscriber: Subscriber, upto: StreamId, ctx: Context) -> None:
    """Run delivery until the client leaves, the server closes it, or it falls too far behind."""
    delivering = asyncio.create_task(deliver(ws, sub, subscriber, upto, ctx))
    listening = asyncio.create_task(discard_incoming(ws))
    overflow = asyncio.create_task(subscriber.overflowed.wait())
    done, pending = await asyncio.wait({delivering, listening, overflow}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if overflow in done:
        metrics.SLOW_CLIENTS_CLOSED.inc()
        log.info("closing a client that cannot keep up", extra={"owner_id": sub.owner_id, "buffer": ctx.buffer})
        await close_within(ws, CloseCode.TRY_AGAIN_LATER, "client too slow; reconnect with last_event_id",
                           ctx.close_timeout)
    elif delivering in done and not isinstance(delivering.exception(), (ConnectionClosed, type(None))):
        log.error("delivery failed", exc_info=delivering.exception())
        await close_within(ws, CloseCode.INTERNAL_ERROR, "internal error; reconnect with last_event_id",
                           ctx.close_timeout)


async def deliver(ws: ServerConnection, sub: Subscription, subscriber: Subscriber, upto: StreamId, ctx: Context) -> None:
    sender = Sender(ws)
    resuming = sub.resume_after is not None
    since = sub.resume_after if resuming else sub.position
    snapshot = None if resuming else sub.snapshot
    if snapshot is not None:
        await sender.send_text(messages.snapshot(snapshot), "snapshot")
    not_before = snapshot.updated_at if snapshot is not None else None
    async for item in stream.replay(ctx.redis, ctx.stream, since, upto, resuming=resuming):
        if item is stream.GAP:
            await sender.send_text(messages.notice("replay_gap", GAP_DETAIL), "notice")
            if snapshot is None and sub.snapshot is not None:
                snapshot = sub.snapshot
                await sender.send_text(messages.snapshot(snapshot), "snapshot")
                not_before = snapshot.updated_at
            continue
        if subscriber.wants(item) and current(item, not_before):
            await sender.send(item, live=False)
    floor = max(since, upto)
    while True:
        entry = await subscriber.queue.get()
        if entry.sid > floor and current(entry, not_before):
            await sender.send(entry, live=True)


def current(entry: Entry, not_before: datetime | None) -> bool:
    """False for an entry older than the snapshot already sent (published late by its producer)."""
    return not_before is None or entry.at >= not_before


async def discard_incoming(ws: ServerConnection) -> None:
    """Clients have nothing to say; reading keeps pings, pongs and their close frame flowing."""
    try:
        async for _ in ws:
            pass
    except ConnectionClosed:
        pass


async def close_within(ws: ServerConnection, code: int, reason: str, timeout: float) -> None:
    """Close with `code`; a client that does not even read its close frame in time is cut off."""
    try:
        async with asyncio.timeout(timeout):
            await ws.close(code, reason)
    except TimeoutError:
        ws.transport.abort()
