"""The notifier's stream reader decodes only entries a subscriber may want, yields only after
handing one over, and moves its position past every entry, wanted, skipped or malformed."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import pytest
from notifier import stream
from notifier.fanout import Router, Subscriber
from notifier.messages import routing_keys

from shared import events

OWNER, OTHER = 7, 8
TASK = str(uuid.uuid4())


def raw(owner_id: int, task_id: str | None = None, event_id: int = 1) -> dict[bytes, bytes]:
    """Entry fields as redis-py returns them (bytes keys and values)."""
    fields = events.encode(event_id=event_id, task_id=task_id or uuid.uuid4(), owner_id=owner_id, status="success",
                           result={"n": 1}, error_message="", timestamp=datetime.now(timezone.utc))
    return {k.encode(): v.encode() for k, v in fields.items()}


def test_routing_keys_read_owner_and_task_from_raw_fields():
    assert routing_keys(raw(OWNER, TASK)) == (OWNER, TASK)


def test_router_wants_an_owner_or_a_task_only_while_someone_is_subscribed():
    router = Router()
    assert not router.wants(OWNER, TASK)
    feed, single = Subscriber(OWNER, None, 4), Subscriber(OTHER, TASK, 4)
    router.add(feed)
    router.add(single)
    assert router.wants(OWNER, str(uuid.uuid4()))
    assert router.wants(9, TASK)  # a candidate only: publish re-checks the owner
    assert not router.wants(OTHER, str(uuid.uuid4()))
    router.remove(feed)
    router.remove(single)
    assert not router.wants(OWNER, TASK)


@pytest.fixture
def yields(monkeypatch):
    """Counts the reader's `asyncio.sleep(0)` calls."""
    calls = []
    real_sleep = asyncio.sleep

    async def counting(delay, *args, **kwargs):
        calls.append(delay)
        return await real_sleep(delay, *args, **kwargs)

    monkeypatch.setattr(stream.asyncio, "sleep", counting)
    return calls


def hand_over(router: Router, rows) -> stream.StreamReader:
    reader = stream.StreamReader(None, "unused", router)
    asyncio.run(reader._hand_over(rows))
    return reader


def test_unwatched_and_malformed_entries_are_skipped_without_a_yield_but_advance_the_position(yields, monkeypatch):
    decoded = []
    monkeypatch.setattr(stream, "from_stream", lambda sid, fields: decoded.append(sid))
    router = Router()
    router.add(Subscriber(OWNER, None, 4))
    rows = [(b"1-0", raw(OTHER)), (b"1-1", {**raw(OWNER), b"owner_id": b"x"}), (b"2-0", {b"status": b"queued"})]
    reader = hand_over(router, rows)
    assert reader.position == (2, 0)
    assert decoded == [b"1-1", b"2-0"]  # malformed keys: the full decode decides (and logs)
    assert yields == []


def test_a_watched_entry_is_queued_and_followed_by_a_yield(yields):
    router = Router()
    feed, stranger = Subscriber(OWNER, None, 4), Subscriber(OTHER, TASK, 4)
    router.add(feed)
    router.add(stranger)
    rows = [(b"5-0", raw(OTHER)), (b"5-1", raw(OWNER, TASK, event_id=2)), (b"6-0", raw(OTHER, event_id=3))]
    reader = hand_over(router, rows)
    assert reader.position == (6, 0)
    assert feed.queue.qsize() == 1 and feed.queue.get_nowait().event_id == 2
    assert stranger.queue.empty()  # its task, not its owner: ownership is still checked
    assert yields == [0]
