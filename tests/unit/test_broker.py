"""The Redis side of task messages, against a throwaway redis-server.

Messages a killed worker had prefetched go back on their queue within seconds.

Found by `make chaos`: a worker killed with -9 leaves the messages it fetched (but had not yet
claimed) in its Dramatiq ack set. Their tasks stay `queued` and the messages still exist, so
the scheduler's lost-message sweep skips them; Dramatiq's own maintenance ran on a random 0.1%
of Redis calls, i.e. minutes on a quiet queue. `TaskBroker.requeue_dead_workers` (called by the
scheduler every few seconds) runs that maintenance now.

Acks of concurrent worker threads are pipelined (`TaskBroker.ack_many`, Dramatiq's own ack
script): an acked message must leave both the ack set and the message hash, as with Dramatiq's.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
import redis
from support.stack import free_port

from shared import broker

TASK = "11111111-1111-1111-1111-111111111111"


@pytest.fixture
def client(tmp_path):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("no redis-server binary")
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c = redis.Redis(port=port)
    try:
        for _ in range(100):
            try:
                c.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield c
    finally:
        proc.kill()
        proc.wait()


def test_messages_of_a_dead_worker_are_requeued(client):
    url = f"redis://127.0.0.1:{client.connection_pool.connection_kwargs['port']}/0"
    broker.enqueue_task(client, TASK, "default", datetime.now(timezone.utc))
    worker = broker.make_broker(url)
    assert len(worker.do_fetch("default", 5)) == 1  # prefetched: off the queue, in the worker's ack set
    scheduler = broker.make_broker(url)

    scheduler.requeue_dead_workers()
    assert client.llen(broker.queue_key("default")) == 0  # the worker is alive: nothing moves

    stale = int(time.time() * 1000) - broker.DEAD_WORKER_MS - 1000
    client.zadd(f"{broker.NAMESPACE}:__heartbeats__", {worker.broker_id: stale})  # ...then it died
    scheduler.requeue_dead_workers()
    assert client.llen(broker.queue_key("default")) == 1
    assert client.keys(f"{broker.NAMESPACE}:__acks__.{worker.broker_id}.*") == []


def test_batched_acks_remove_messages_like_dramatiqs_own(client):
    url = f"redis://127.0.0.1:{client.connection_pool.connection_kwargs['port']}/0"
    worker = broker.make_broker(url)
    for n in range(4):
        broker.enqueue_task(client, f"{TASK[:-1]}{n}", "default", datetime.now(timezone.utc))
    consumer = worker.consume("default", prefetch=4)
    messages = [next(consumer) for _ in range(4)]
    acks_key = f"{broker.NAMESPACE}:__acks__.{worker.broker_id}.default"
    assert client.scard(acks_key) == 4 and client.hlen(broker.messages_key("default")) == 4

    with ThreadPoolExecutor(4) as pool:  # worker threads ack at once
        list(pool.map(consumer.ack, messages[:3]))
    assert client.scard(acks_key) == 1 and client.hlen(broker.messages_key("default")) == 1
    assert consumer.outstanding_message_count == 1
    worker.do_ack("default", messages[3].options["redis_message_id"])  # Dramatiq's own, for comparison
    assert client.scard(acks_key) == 0 and client.hlen(broker.messages_key("default")) == 0
