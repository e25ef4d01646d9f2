"""The `webhook` hint of stream events (shared.events) and how the dispatcher's recorder uses it,
against the real test database and Redis, no mocks.

Tasks are made and finished with the real transitions (create, cancel, announce), their events
built by the real producers' functions (`from_transition`, `from_outbox`) and passed through a
Redis stream of the test's own, so the recorder gets the bytes redis-py returns. Whether the
recorder touches Postgres at all is seen on the engine's pool checkouts. Each test has its own
user, deleted afterwards with everything it owns.
"""
from __future__ import annotations

import uuid
from contextlib import contextmanager

import pytest
from dispatcher.recorder import record_events
from integration_helpers import unique
from sqlalchemy import event, select, text

from shared import events, transitions
from shared.task_values import row_values

HOOK = "https://example.com/hook"


@pytest.fixture
def owner(db):
    """A user of the test's own, deleted with its tasks and deliveries (and the outbox rows)."""
    with db.engine.begin() as conn:
        user = conn.execute(text("INSERT INTO users (username, email, password_hash) "
                                 "VALUES (:u, :u || '@example.com', '!') RETURNING id"), {"u": unique("hints")}).scalar()
    yield user
    db.execute("DELETE FROM task_events WHERE owner_id = :o", o=user)
    db.execute("DELETE FROM users WHERE id = :o", o=user)


@pytest.fixture
def read_back(redis_client):
    """`read_back(fields, ...)` -> the entries as the dispatcher reads them (XADD then XRANGE)."""
    stream = f"test:hints:{uuid.uuid4().hex}"

    def through_redis(*entries: dict) -> list:
        for fields in entries:
            redis_client.xadd(stream, fields)
        return redis_client.xrange(stream)

    yield through_redis
    redis_client.delete(stream)


@contextmanager
def checkouts(engine):
    """Counts the connections taken from the engine's pool inside the block."""
    taken = []

    def count(*_):
        taken.append(1)

    event.listen(engine, "checkout", count)
    try:
        yield taken
    finally:
        event.remove(engine, "checkout", count)


def cancelled(engine, owner: int, **callback):
    """A task with these callback fields, created then cancelled: its `revoked` transition row."""
    with engine.begin() as conn:
        task = transitions.create(conn, row_values(owner, {"name": "hints", "task_type": "echo", **callback}))
        return transitions.run_one(conn, "cancel", task_id=task.id, owner=owner)


def outbox_row(engine, task_id, status: str):
    """The task's outbox row of `status`, as the scheduler's relay reads it (nothing published it here)."""
    outbox = events.EVENTS
    with engine.connect() as conn:
        return conn.execute(select(outbox).where(outbox.c.task_id == task_id, outbox.c.status == status)).one()


def deliveries(db, task_id) -> list:
    return db.all("SELECT event, event_id FROM webhook_deliveries WHERE task_id = :t", t=task_id)


SUBSCRIBED = {"callback_url": HOOK, "callback_events": ["task.revoked"]}
UNSUBSCRIBED = {"callback_url": HOOK, "callback_events": ["task.succeeded"]}


@pytest.mark.parametrize("callback, hint", [
    (SUBSCRIBED, "1"),
    ({"callback_url": HOOK, "callback_events": []}, "1"),  # no list: every event
    (UNSUBSCRIBED, "0"),
    ({}, "0"),  # no callback at all
])
def test_from_transition_writes_whether_the_callback_subscribes(engine, owner, callback, hint):
    fields = events.from_transition(cancelled(engine, owner, **callback))
    assert fields["status"] == "revoked"
    assert fields[events.WEBHOOK_HINT] == hint


def test_no_hint_without_a_webhook_event_or_the_task_columns(engine, owner):
    with engine.begin() as conn:
        created = transitions.create(conn, row_values(owner, {"name": "hints", "task_type": "echo", **SUBSCRIBED}))
    assert events.from_transition(created)[events.WEBHOOK_HINT] == "0"  # queued: stands for no webhook
    assert events.WEBHOOK_HINT not in events.from_outbox(outbox_row(engine, created.id, "queued"))


def test_other_consumers_decode_an_entry_with_the_hint(engine, owner, read_back):
    [(_, raw)] = read_back(events.from_transition(cancelled(engine, owner, **SUBSCRIBED)))
    decoded = events.decode(raw)
    assert (decoded["status"], decoded["result"], decoded[events.WEBHOOK_HINT]) == ("revoked", None, "1")


def test_recorder_drops_unsubscribed_and_statusless_events_without_touching_postgres(engine, db, owner, read_back):
    unsubscribed, plain = cancelled(engine, owner, **UNSUBSCRIBED), cancelled(engine, owner)
    entries = read_back(
        events.from_transition(unsubscribed),  # hint "0"
        events.from_transition(plain),  # hint "0"
        events.from_outbox(outbox_row(engine, unsubscribed.id, "queued")),  # queued, relayed: no hint
    )
    with checkouts(engine) as taken:
        assert record_events(engine, entries) == 0
    assert taken == []
    assert deliveries(db, unsubscribed.id) == deliveries(db, plain.id) == []


def test_recorder_records_a_subscribed_event(engine, db, owner, read_back):
    row = cancelled(engine, owner, **SUBSCRIBED)
    assert record_events(engine, read_back(events.from_transition(row))) == 1
    assert deliveries(db, row.id) == [("task.revoked", row.event_id)]


def test_recorder_loads_the_task_when_the_hint_is_missing(engine, db, owner, read_back):
    subscribed, unsubscribed = cancelled(engine, owner, **SUBSCRIBED), cancelled(engine, owner, **UNSUBSCRIBED)
    relayed = [events.from_outbox(outbox_row(engine, r.id, "revoked")) for r in (subscribed, unsubscribed)]
    with checkouts(engine) as taken:
        assert record_events(engine, read_back(*relayed)) == 1
    assert taken
    assert deliveries(db, subscribed.id) == [("task.revoked", subscribed.event_id)]
    assert deliveries(db, unsubscribed.id) == []


def test_recorder_looks_at_a_manual_trigger_whatever_its_hint(engine, owner, read_back):
    task = cancelled(engine, owner)
    with engine.begin() as conn:
        announced = transitions.run_one(conn, "announce", task_id=task.id, owner=owner, webhook_event="task.updated")
    fields = events.from_transition(announced)
    assert fields[events.WEBHOOK_HINT] == "0"
    with checkouts(engine) as taken:
        assert record_events(engine, read_back(fields)) == 0  # no callback: nothing to record
    assert taken
