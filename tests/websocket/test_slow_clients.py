"""A client that stops reading is closed with 1013; the others keep receiving promptly."""
from __future__ import annotations

import json
import socket
import threading
import time

import requests
from e2e.e2e_helpers import metric_value, wait_until
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from .nf_helpers import close_code, feed_url, open_feed, synthetic_event

STREAM = "taskqueue:events"
BIG_RESULT = {"blob": "x" * 8000}  # ~8 KB per message: fills the stalled client's buffers quickly
MAX_EVENTS = 3000


def stalled_client(notifier, user):
    """A websockets client that never reads: tiny receive window, one-frame queue, no recv()."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", notifier.port))
    return connect(feed_url(notifier, token=user.access), sock=sock, max_queue=1, open_timeout=5)


def test_stalled_client_is_closed_with_1013_and_others_are_unaffected(notifier, user, store):
    slow_before = metric_value(requests.get(notifier.metrics_url, timeout=2).text,
                               "taskqueue_notifier_slow_clients_closed_total")
    received: dict[int, float] = {}
    with open_feed(notifier, user) as normal, stalled_client(notifier, user) as stalled:
        def read_normal():
            try:
                while True:
                    received[json.loads(normal.recv())["event_id"]] = time.monotonic()
            except ConnectionClosed:
                pass

        reader = threading.Thread(target=read_normal, daemon=True)
        reader.start()
        published: dict[int, float] = {}

        def slow_closed() -> bool:
            text = requests.get(notifier.metrics_url, timeout=2).text
            return metric_value(text, "taskqueue_notifier_slow_clients_closed_total") > slow_before

        event_id = 10_000_000
        while not slow_closed():
            assert event_id < 10_000_000 + MAX_EVENTS, "the stalled client was never closed"
            pipe = store.redis.pipeline()
            for _ in range(50):
                event_id += 1
                pipe.xadd(STREAM, synthetic_event(event_id, user.user_id, result=BIG_RESULT))
                published[event_id] = time.monotonic()
            pipe.execute()
            time.sleep(0.05)

        # The stalled client, once it reads again, finds the 1013 close frame after its backlog.
        assert close_code(stalled, timeout=10) == 1013

        # The normal client got every event, each one promptly.
        wait_until(lambda: set(published) <= set(received), 10, message="the normal client to receive everything")
        lags = sorted(received[e] - published[e] for e in published)
        assert lags[-1] < 2.0, f"slowest delivery to the normal client took {lags[-1]:.2f}s"
        probe_at = time.monotonic()
        store.redis.xadd(STREAM, synthetic_event(event_id + 1, user.user_id))
        wait_until(lambda: event_id + 1 in received, 2, message="a fresh event after the stall")
        assert received[event_id + 1] - probe_at < 0.5
