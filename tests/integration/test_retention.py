"""The scheduler's retention job (scheduler/retention.py) against the real test database.

Rows are written with SQL at chosen ages (the API cannot backdate them); each test has its own
user, deleted afterwards with everything it owns, and checks its own rows by id, so the other
integration tests sharing the database neither disturb it nor are disturbed.
"""
from __future__ import annotations

import dataclasses
import threading

import pytest
from integration_helpers import unique
from prometheus_client import REGISTRY
from scheduler import retention
from scheduler.retention import Retention
from sqlalchemy import text

DAY = 86_400
OLD = 3 * DAY  # past the 1-day retention the tests configure
FRESH = 60


def insert(db, sql: str, **params):
    """Run an INSERT ... RETURNING in its own committed transaction; returns the first column."""
    with db.engine.begin() as conn:
        return conn.execute(text(sql), params).scalar()


@pytest.fixture
def owner(db):
    """A user of the test's own (a row: the job never looks at users), deleted with all it owns."""
    user = insert(db, "INSERT INTO users (username, email, password_hash) "
                      "VALUES (:u, :u || '@example.com', '!') RETURNING id", u=unique("retention"))
    yield user
    db.execute("DELETE FROM users WHERE id = :o", o=user)  # tasks, deliveries, schedules... cascade


@pytest.fixture
def configured(settings, engine):
    """`configured(**retention_fields)` -> a Retention with 1-day task/delivery retention by default."""

    def make(**fields) -> Retention:
        values = {"retention_tasks_days": 1, "retention_deliveries_days": 1, "retention_dead_letters_days": 0,
                  "retention_batch_size": 100, "webhook_reconcile_hours": 24, **fields}
        return Retention(engine, dataclasses.replace(settings, **values))

    return make


def add_task(db, owner: int, status: str, completed_ago: float | None) -> str:
    """A task in `status`, finished `completed_ago` seconds ago (None: not finished)."""
    return str(insert(
        db,
        "INSERT INTO tasks (owner_id, name, task_type, queue, status, created_at, completed_at) "
        "VALUES (:o, 'retention', 'echo', 'default', :s, now() - interval '10 days', "
        "        now() - make_interval(secs => CAST(:ago AS double precision))) RETURNING id",
        o=owner, s=status, ago=completed_ago,
    ))


def add_dead_letter(db, owner: int, task_id: str, reprocessed: bool, age: float = OLD) -> str:
    return str(insert(
        db,
        "INSERT INTO dead_letters (owner_id, original_task_id, task_name, task_type, reprocessed, created_at) "
        "VALUES (:o, :t, 'retention', 'echo', :r, now() - make_interval(secs => :age)) RETURNING id",
        o=owner, t=task_id, r=reprocessed, age=age,
    ))


def add_delivery(db, owner: int, task_id: str, status: str, age: float, attempts: int = 2) -> str:
    delivery = str(insert(
        db,
        "INSERT INTO webhook_deliveries (task_id, owner_id, event, status, request_url, queued_at) "
        "VALUES (:t, :o, 'task.succeeded', :s, 'http://127.0.0.1:9/hook', now() - make_interval(secs => :age)) "
        "RETURNING id",
        t=task_id, o=owner, s=status, age=age,
    ))
    for n in range(1, attempts + 1):
        db.execute("INSERT INTO webhook_attempts (delivery_id, attempt, created_at) "
                   "VALUES (:d, :n, now() - make_interval(secs => :age))", d=delivery, n=n, age=age)
    return delivery


def exists(db, table: str, key: str, value: str) -> bool:
    return bool(db.scalar(f"SELECT count(*) FROM {table} WHERE {key} = :v", v=value))


def tasks_left(db, ids: list[str]) -> set[str]:
    return {str(r[0]) for r in db.all("SELECT id FROM tasks WHERE id = ANY(CAST(:ids AS uuid[]))", ids=ids)}


def deleted_metric(table: str) -> float:
    return REGISTRY.get_sample_value("taskqueue_scheduler_retention_deleted_total", {"table": table}) or 0.0


def test_old_finished_tasks_go_and_fresh_or_unfinished_ones_stay(db, owner, configured):
    old = [add_task(db, owner, status, OLD) for status in ("success", "failure", "revoked")]
    fresh = [add_task(db, owner, status, FRESH) for status in ("success", "failure", "revoked")]
    # The status decides, not the timestamps: unfinished tasks stay even with an old completed_at.
    unfinished = [add_task(db, owner, status, OLD) for status in ("pending", "scheduled", "queued", "running", "retry")]
    before = deleted_metric("tasks")

    deleted = configured().run()

    assert tasks_left(db, old + fresh + unfinished) == set(fresh + unfinished)
    assert deleted["tasks"] >= 3
    assert deleted_metric("tasks") - before == deleted["tasks"]


def test_a_task_goes_with_its_deliveries_attempts_and_reprocessed_dead_letter(db, owner, configured):
    task = add_task(db, owner, "failure", OLD)
    dead = add_dead_letter(db, owner, task, reprocessed=True)
    delivery = add_delivery(db, owner, task, "success", age=FRESH)  # fresh, but its task goes

    configured().run()

    assert not exists(db, "tasks", "id", task)
    assert not exists(db, "dead_letters", "id", dead)
    assert not exists(db, "webhook_deliveries", "id", delivery)
    assert not exists(db, "webhook_attempts", "delivery_id", delivery)


def test_a_dead_letter_not_reprocessed_keeps_its_task_until_it_expires(db, owner, configured):
    task = add_task(db, owner, "failure", OLD)
    dead = add_dead_letter(db, owner, task, reprocessed=False, age=OLD)

    configured().run()  # dead letters kept until reprocessed (RETENTION_DEAD_LETTERS_DAYS=0)
    assert exists(db, "tasks", "id", task) and exists(db, "dead_letters", "id", dead)

    configured(retention_dead_letters_days=5).run()  # not yet 5 days old
    assert exists(db, "tasks", "id", task) and exists(db, "dead_letters", "id", dead)

    deleted = configured(retention_dead_letters_days=2).run()  # the entry expires, its task follows in the same run
    assert not exists(db, "dead_letters", "id", dead) and not exists(db, "tasks", "id", task)
    assert deleted["dead_letters"] >= 1 and deleted["tasks"] >= 1


def test_a_task_with_a_pending_delivery_stays(db, owner, configured):
    task = add_task(db, owner, "success", OLD)
    pending = add_delivery(db, owner, task, "pending", age=OLD)

    configured().run()

    assert exists(db, "tasks", "id", task) and exists(db, "webhook_deliveries", "id", pending)
    db.execute("UPDATE webhook_deliveries SET status = 'failure' WHERE id = :d", d=pending)
    configured().run()
    assert not exists(db, "tasks", "id", task) and not exists(db, "webhook_deliveries", "id", pending)


def test_old_finished_deliveries_go_with_their_attempts_outside_the_reconcile_window(db, owner, configured):
    task = add_task(db, owner, "running", None)  # a task that stays: only its deliveries are judged
    old = [add_delivery(db, owner, task, status, age=OLD) for status in ("success", "failure")]
    pending = add_delivery(db, owner, task, "pending", age=OLD)
    fresh = add_delivery(db, owner, task, "success", age=FRESH)
    in_window = add_delivery(db, owner, task, "success", age=2 * 3600)  # older than 1 hour, inside 24 h
    before = deleted_metric("webhook_attempts")

    deleted = configured(retention_deliveries_days=1 / 24).run()

    for delivery in old:
        assert not exists(db, "webhook_deliveries", "id", delivery)
        assert not exists(db, "webhook_attempts", "delivery_id", delivery)
    for delivery in (pending, fresh, in_window):
        assert exists(db, "webhook_deliveries", "id", delivery)
        assert db.scalar("SELECT count(*) FROM webhook_attempts WHERE delivery_id = :d", d=delivery) == 2
    assert exists(db, "tasks", "id", task)
    assert deleted["webhook_deliveries"] >= 2 and deleted["webhook_attempts"] >= 4
    assert deleted_metric("webhook_attempts") - before == deleted["webhook_attempts"]


def test_expired_revoked_tokens_and_old_schedule_fires_go(db, owner, configured):
    db.execute("INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES "
               "(:a, :o, now() - interval '2 hours'), (:b, :o, now() - interval '10 minutes'), "
               "(:c, :o, now() + interval '7 days')", a=f"old-{owner}", b=f"skew-{owner}", c=f"live-{owner}", o=owner)
    schedule = str(insert(db, "INSERT INTO schedules (owner_id, name, interval_seconds, task_type) "
                             "VALUES (:o, 'retention', 60, 'echo') RETURNING id", o=owner))
    db.execute("INSERT INTO schedule_fires (schedule_id, fire_at) VALUES "
               "(:s, now() - interval '3 days'), (:s, now() - interval '12 hours')", s=schedule)

    # A retention shorter than a day still keeps a day of fires (their second guard).
    configured(retention_tasks_days=0.1).run()

    tokens = {r[0] for r in db.all("SELECT jti FROM revoked_tokens WHERE user_id = :o", o=owner)}
    assert tokens == {f"skew-{owner}", f"live-{owner}"}
    ages = db.all("SELECT extract(epoch FROM now() - fire_at) FROM schedule_fires WHERE schedule_id = :s", s=schedule)
    assert [round(a[0] / 3600) for a in ages] == [12]


def test_zero_keeps_forever(db, owner, configured):
    task = add_task(db, owner, "success", 400 * DAY)
    other = add_task(db, owner, "running", None)
    delivery = add_delivery(db, owner, other, "success", age=400 * DAY)
    schedule = str(insert(db, "INSERT INTO schedules (owner_id, name, interval_seconds, task_type) "
                             "VALUES (:o, 'retention', 60, 'echo') RETURNING id", o=owner))
    db.execute("INSERT INTO schedule_fires (schedule_id, fire_at) VALUES (:s, now() - interval '400 days')", s=schedule)

    deleted = configured(retention_tasks_days=0, retention_deliveries_days=0).run()

    assert exists(db, "tasks", "id", task) and exists(db, "webhook_deliveries", "id", delivery)
    assert exists(db, "schedule_fires", "schedule_id", schedule)
    assert set(deleted) == {"revoked_tokens"}  # the only rule that is always on


def test_batches_delete_everything_due_and_stop_at_the_cap(db, owner, configured, monkeypatch):
    ids = [add_task(db, owner, "success", OLD + n) for n in range(7)]
    job = configured(retention_batch_size=2)

    monkeypatch.setattr(retention, "MAX_BATCHES", 2)  # 2 batches of 2 per run
    job.run()
    assert len(tasks_left(db, ids)) == 3
    assert tasks_left(db, ids) == set(ids[:3])  # oldest first: the largest ages went

    monkeypatch.undo()
    job.run()
    assert tasks_left(db, ids) == set()


def test_two_replicas_delete_each_row_once(db, owner, configured):
    ids = [add_task(db, owner, "success", OLD + n) for n in range(300)]
    jobs = [configured(retention_batch_size=10) for _ in range(2)]
    results: list[dict] = []
    errors: list[BaseException] = []

    def run(job):
        try:
            results.append(job.run())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert not errors
    assert tasks_left(db, ids) == set()
    assert sum(r["tasks"] for r in results) == 300  # SKIP LOCKED: split between them, none twice
