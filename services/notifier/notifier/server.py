"""The notifier process's asyncio side: stream reader + websockets server, until told to stop."""
from __future__ import annotations

import asyncio
import functools
import logging
import signal

import redis.asyncio as aioredis
from sqlalchemy import Engine
from websockets.asyncio.server import Server, serve
from websockets.frames import CloseCode

from shared.settings import Settings

from . import session
from .fanout import Router
from .handshake import make_process_request
from .stream import BLOCK_MS, StreamReader

log = logging.getLogger("notifier")

PING_INTERVAL = 20.0  # keepalive: also how a dead peer (no pong within PING_TIMEOUT) is noticed
PING_TIMEOUT = 20.0
CLOSE_TIMEOUT = 5.0  # how long a closing handshake may take before the TCP connection is cut
MAX_INCOMING = 4096  # clients only ever send control frames; refuse anything big
REPLAY_REDIS_CONNECTIONS = 8
LISTEN_BACKLOG = 1024  # reconnect storms (a replica going away) arrive all at once
READER_SOCKET_TIMEOUT = BLOCK_MS / 1000 + 5  # longer than one blocking XREAD: a quiet stream is no error


class Notifier:
    """Holds the running parts so the ops server's health check can look at them."""

    def __init__(self, settings: Settings, engine: Engine):
        self.settings, self.engine = settings, engine
        self.router = Router()
        self.reader: StreamReader | None = None
        self.started = False

    def health(self) -> dict:
        """For /healthz (called from the ops server's thread; reads plain attributes only)."""
        if not self.started or self.reader is None:
            raise RuntimeError("not serving yet (waiting for the event stream)")
        age = self.reader.age()
        if age > 30:
            raise RuntimeError(f"event stream not read for {age:.0f}s")
        return {"connections": self.router.size}

    async def run(self, host: str, port: int) -> None:
        """Serve until SIGTERM/SIGINT; then close every client with 1001 and return."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        url = self.settings.redis_url
        reader_redis = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=READER_SOCKET_TIMEOUT)
        replay_redis = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
            url, max_connections=REPLAY_REDIS_CONNECTIONS, timeout=10, socket_connect_timeout=2, socket_timeout=10))
        self.reader = StreamReader(reader_redis, self.settings.events_stream, self.router)
        try:
            await until_stopped(self.reader.start(), stop)
            if stop.is_set():
                return
            await self._serve(host, port, replay_redis, stop)
        finally:
            await reader_redis.aclose()
            await replay_redis.aclose()

    async def _serve(self, host: str, port: int, replay_redis: aioredis.Redis, stop: asyncio.Event) -> None:
        ctx = session.Context(self.router, self.reader, replay_redis, self.settings.events_stream,
                              self.settings.notifier_client_buffer, CLOSE_TIMEOUT)
        reading = asyncio.create_task(self.reader.run(), name="stream-reader")
        server = await serve(
            functools.partial(session.handle, ctx=ctx), host, port,
            process_request=make_process_request(self.settings.jwt_secret_key, self.engine, lambda: self.reader.position),
            ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT, close_timeout=CLOSE_TIMEOUT,
            max_size=MAX_INCOMING, max_queue=4, backlog=LISTEN_BACKLOG,
            compression=None,  # messages are small; a deflate context per connection costs ~100 KB of memory
        )
        self.started = True
        log.info("notifier listening", extra={"host": host, "port": port, "buffer": ctx.buffer})
        await stop.wait()
        log.info("shutting down", extra={"connections": self.router.size})
        await shut_down(server)
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        log.info("notifier stopped")


async def shut_down(server: Server) -> None:
    """Close every connection with 1001 (clients reconnect, to another replica, and resume).

    websockets waits for each closing handshake without a deadline while a client does not
    read; past CLOSE_TIMEOUT those connections are cut so the process always exits.
    """
    server.close(code=CloseCode.GOING_AWAY, reason="server shutting down; reconnect with last_event_id")
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT + 1):
            await server.wait_closed()
    except TimeoutError:
        for connection in list(server.all_connections):
            connection.transport.abort()
        await server.wait_closed()


async def until_stopped(coro, stop: asyncio.Event) -> None:
    """Await `coro` unless `stop` is set first (then cancel it)."""
    work = asyncio.ensure_future(coro)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
    for task in (work, stopping):
        task.cancel()
    await asyncio.gather(work, stopping, return_exceptions=True)
    if work.done() and not work.cancelled() and work.exception() is not None:
        raise work.exception()

