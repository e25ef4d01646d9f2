"""The gateway's request validation: field specs (read + JSON Schema), task field rules and
query parameters (no database)."""
from datetime import datetime, timezone

import pytest
from flask import Flask
from gateway.errors import ValidationError
from gateway.openapi import params
from gateway.openapi.body import Body
from gateway.openapi.fields import Integer, Invalid, String, parse_datetime
from gateway.tasks.fields import TASK, read_task_fields, row_values

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
    spec = Integer(default=0)
    assert spec.parse(3.0) == 3
    with pytest.raises(Invalid, match="A valid integer is required."):
        spec.parse(3.5)


def test_absent_and_null_mean_the_default_and_the_schema_says_nullable():
    body = Body({"n": Integer(default=7, min_value=0, max_value=9), "s": String(required=True)})
    assert body.read({"n": None, "s": "x"}) == {"n": 7, "s": "x"}
    assert body.schema() == {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 0, "maximum": 9, "nullable": True},
            "s": {"type": "string", "maxLength": 255},
        },
        "required": ["s"],
    }


def test_partial_read_takes_only_the_given_fields_but_refuses_null_for_required_ones():
    body = Body({"a": String(required=True), "b": String()})
    assert body.read({"b": "x"}, partial=True) == {"b": "x"}
    with pytest.raises(ValidationError) as err:
        body.read({"a": None}, partial=True)
    assert err.value.fields == {"a": ["This field is required."]}
    assert "required" not in body.schema(partial=True)


def test_task_schema_documents_the_rules_that_are_enforced():
    schema = TASK.schema()
    assert schema["required"] == ["name", "task_type"]
    timeout = schema["properties"]["timeout"]
    assert (timeout["minimum"], timeout["maximum"]) == (1, 3600)
    read_task_fields({"name": "n", "task_type": "echo", "timeout": 3600})
    with pytest.raises(ValidationError, match="timeout: Ensure this value is between 1 and 3600."):
        read_task_fields({"name": "n", "task_type": "echo", "timeout": 3601})


def test_first_bad_query_parameter_is_a_400_named_after_it():
    query = params.Query({"limit": params.WholeNumber(min_value=1, max_value=5, default=2),
                          "ordering": params.Ordering(("name",), default=[])})
    with Flask(__name__).test_request_context("/?ordering=-name,name"):
        assert query.read() == {"limit": 2, "ordering": [("name", True), ("name", False)]}
    with Flask(__name__).test_request_context("/?limit=9&ordering=nope"):
        with pytest.raises(ValidationError) as err:
            query.read()
    assert err.value.fields == {"limit": ["Ensure this value is between 1 and 5."]}


def test_parse_datetime_assumes_utc_for_naive_values():
    assert parse_datetime("2030-01-02T03:04:05") == datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert parse_datetime("2030-01-02T03:04:05+02:00").utcoffset().total_seconds() == 7200
    assert parse_datetime("not a date") is None
