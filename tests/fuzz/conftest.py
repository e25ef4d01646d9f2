"""The fuzz target: the gateway alone (python -m gateway), on this package's own database
(taskqueue_fuzz_test, recreated and migrated at start) and Redis db 11, with rate limiting off
(the fuzzer sends thousands of requests from one IP as one user).

`seeded` registers a user and creates one of every object (tasks with and without webhooks, a
failed task and its dead letter, a webhook delivery, a schedule): the list endpoints then
return real items whose shape the fuzzer checks against the document, and the fuzzer is
given their ids as path parameters, so the detail and action endpoints run past their 404.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from e2e.e2e_helpers import Client, System, running

DATABASE_NAME = "taskqueue_fuzz_test"
REDIS_DB = 11
# DB_POOL_SIZE: the machine's Postgres also serves other test systems; one gateway worker
# thread pool needs few connections.
PROCESS_ENV = {"RATELIMIT_ENABLED": "false", "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true", "DB_POOL_SIZE": "2"}


_SUMMARY = pytest.StashKey[list]()


@pytest.fixture
def summary_line(pytestconfig):
    """`summary_line(text)`: shown in pytest's terminal summary, so the fuzz figures appear in
    every run (`make test` does not pass -s)."""
    return lambda text: pytestconfig.stash.setdefault(_SUMMARY, []).append(text)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for line in config.stash.get(_SUMMARY, []):
        terminalreporter.write_line(line)


@dataclass
class Seeded:
    client: Client
    ids: dict[str, list[str]]  # path parameter name -> ids of the user's objects


@pytest.fixture(scope="package")
def store(own_store):
    return own_store(DATABASE_NAME, REDIS_DB, "fuzz-tests")


@pytest.fixture(scope="package")
def gateway(store, tmp_path_factory):
    sysm = System(tmp_path_factory.mktemp("fuzz-logs"), store.process_env(**PROCESS_ENV))
    with running(sysm, sysm.start_gateway):
        yield sysm


@pytest.fixture(scope="package")
def seeded(gateway, store) -> Seeded:
    from shared import transitions

    client = Client(gateway.base_url)
    plain = client.create("echo", {"x": 1}, tags=["seed"], metadata={"k": "v"})
    hooked = client.create("compute", {"operation": "sum", "numbers": [1, 2]}, priority=20,
                           callback_url="http://127.0.0.1:9/hook", callback_headers={"X-Seed": "1"})
    trigger = client.post(f"/tasks/{hooked['id']}/trigger_webhook/", json={"event": "task.succeeded"}, expect=200)
    delivery = trigger.json()["delivery_id"]
    failed = client.create("echo", max_retries=0)
    with store.engine.begin() as conn:
        assert transitions.run_one(conn, "claim", task_id=failed["id"], lease=timedelta(seconds=30), worker="fuzz")
        assert transitions.run_one(conn, "fail", task_id=failed["id"], claim=1, error="boom", error_traceback="tb",
                                   failures=1)
    [entry] = client.get("/dead-letters/").json()["results"]
    schedules = [
        client.post("/schedules/", json=body, expect=201).json()["id"]
        for body in ({"name": "cron", "cron": "0 3 * * *", "task_type": "echo"},
                     {"name": "interval", "interval_seconds": 60, "task_type": "echo", "enabled": False})
    ]
    yield Seeded(client, {
        "task_id": [hooked["id"], plain["id"], failed["id"]],
        "delivery_id": [delivery],
        "entry_id": [entry["id"]],
        "schedule_id": schedules,
    })
    client.http.close()
