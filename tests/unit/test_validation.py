"""The gateway's request validation: typed field readers and task field rules (no database)."""
from datetime import datetime, timezone

import pytest
from flask import Flask
from gateway.errors import ValidationError
from gateway.tasks.fields import read_task_fields, row_values
from gateway.validation import Fields, parse_datetime

from shared import transitions


@pytest.fixture(autouse=True)
def _app_context():
    with Flask(__name__).test_request_context():
        yield


def test_valid_task_gets_defaults_and_routing():
    fields = read_task_fields(
        {"name": "n", "task_type": "echo", "priority": 20, "callback_url": "https://x.test/h"}, allow_private_networks=True
    )
    assert fields["max_retries"] == 3 and fields["retry_delay"] == 60 and fields["timeout"] == 300
    assert fields["callback_events"] == ["task.succeeded", "task.failed", "task.revoked"]
    values = row_values(7, fields)
    assert set(values) == set(transitions.CREATE_COLUMNS)
    assert values["queue"] == "critical" and values["status"] == "queued" and values["owner_id"] == 7


def test_future_scheduled_at_makes_a_scheduled_task():
    fields = read_task_fields({"name": "n", "task_type": "echo", "scheduled_at": "2999-01-01T00:00:00Z"})
    values = row_values(1, fields)
    assert values["status"] == "scheduled" and values["enqueued_at"] is None


@pytest.mark.parametrize(
    "body, field",
    [
        ({"task_type": "echo"}, "name"),
        ({"name": "  ", "task_type": "echo"}, "name"),
        ({"name": "x" * 256, "task_type": "echo"}, "name"),
        ({"name": "n", "task_type": "nope"}, "task_type"),
        ({"name": "n", "task_type": "echo", "priority": "high"}, "priority"),
        ({"name": "n", "task_type": "echo", "priority": True}, "priority"),
        ({"name": "n", "task_type": "echo", "timeout": 0}, "timeout"),
        ({"name": "n", "task_type": "echo", "timeout": 3601}, "timeout"),
        ({"name": "n", "task_type": "echo", "max_retries": -1}, "max_retries"),
        ({"name": "n", "task_type": "echo", "scheduled_at": "tomorrow"}, "scheduled_at"),
        ({"name": "n", "task_type": "echo", "tags": "a,b"}, "tags"),
        ({"name": "n", "task_type": "echo", "tags": ["x" * 101]}, "tags"),
        ({"name": "n", "task_type": "echo", "metadata": []}, "metadata"),
        ({"name": "n", "task_type": "echo", "callback_url": "ftp://x"}, "callback_url"),
        ({"name": "n", "task_type": "echo", "callback_headers": {"a": 1}}, "callback_headers"),
        ({"name": "n", "task_type": "echo", "callback_events": ["task.exploded"]}, "callback_events"),
    ],
)
def test_invalid_fields_are_reported_by_name(body, field):
    with pytest.raises(ValidationError) as err:
        read_task_fields(body)
    assert field in err.value.fields and err.value.status == 400


def test_all_errors_are_reported_at_once():
    with pytest.raises(ValidationError) as err:
        read_task_fields({"task_type": "nope", "priority": "x"})
    assert {"name", "task_type", "priority"} <= set(err.value.fields)


def test_integral_floats_are_integers_but_fractions_are_not():
    f = Fields({"a": 3.0, "b": 3.5})
    assert f.integer("a", default=0) == 3
    f.integer("b", default=0)
    assert "b" in f.errors


def test_parse_datetime_assumes_utc_for_naive_values():
    assert parse_datetime("2030-01-02T03:04:05") == datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert parse_datetime("2030-01-02T03:04:05+02:00").utcoffset().total_seconds() == 7200
    assert parse_datetime("not a date") is None
