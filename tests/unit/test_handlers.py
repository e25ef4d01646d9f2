"""Worker task-type handlers: results, payload errors (always TaskError), interruptible waits,
and http_request against a local server. Run with PYTHONPATH=services/worker.
"""
import http.server
import json
import re
import threading
import time

import pytest
from worker.context import TaskContext, TaskError, TaskInterrupted, TaskTimeout
from worker.handlers import HANDLERS, get_handler, http_request

from shared.task_types import TASK_TYPES


class RecordingContext(TaskContext):
    """Records requested waits instead of waiting, so simulated delays cost nothing."""

    def __init__(self, timeout_s=30.0, **kwargs):
        super().__init__("test-task", timeout_s, **kwargs)
        self.slept = []

    def sleep(self, seconds):
        self.check()
        self.slept.append(seconds)


def run(task_type, payload, ctx=None):
    ctx = ctx or RecordingContext()
    result = get_handler(task_type)(payload, ctx)
    json.dumps(result, allow_nan=False)  # every result must be storable as strict JSON
    return result


# --- registry -------------------------------------------------------------------------------

def test_every_task_type_has_a_handler():
    assert set(HANDLERS) == set(TASK_TYPES)
    assert all(callable(get_handler(t)) for t in TASK_TYPES)


@pytest.mark.parametrize("task_type", ["nope", "", None, ["echo"]])
def test_unknown_task_type(task_type):
    with pytest.raises(TaskError, match="Unknown task type"):
        get_handler(task_type)


# --- payload shape: only TaskError ever escapes ------------------------------------------------

NOT_A_DICT = [None, [], [1, 2], "text", 5, 1.5, True]


@pytest.mark.parametrize("task_type", [t for t in TASK_TYPES if t != "echo"])
@pytest.mark.parametrize("payload", NOT_A_DICT)
def test_non_object_payload_is_task_error(task_type, payload):
    with pytest.raises(TaskError, match="payload must be an object"):
        run(task_type, payload)


WRONG_VALUES = [None, True, -1, 1e309, "x", "", [], [None], {}, {"a": 1}, float("nan")]
FIELDS = {
    "compute": ("operation", "numbers"),
    "sleep": ("duration",),
    "http_request": ("url", "method", "timeout"),
    "process_data": ("data", "operation", "predicate"),
    "send_email": ("to", "subject", "body"),
    "resize_image": ("image_url", "width", "height", "format"),
    "generate_report": ("report_type", "output_format", "date_range", "filters"),
}
VALID = {
    "compute": {"operation": "sum", "numbers": [1, 2]},
    "sleep": {"duration": 0},
    "http_request": {"url": "ftp://refused.example/"},  # refused before any network I/O
    "process_data": {"data": [1, 2], "operation": "filter"},
    "send_email": {"to": "a@example.com", "subject": "s", "body": "b"},
    "resize_image": {"image_url": "https://x/y.png", "width": 10, "height": 10},
    "generate_report": {"report_type": "summary", "output_format": "json"},
}


@pytest.mark.parametrize("task_type,field", [(t, f) for t, fs in FIELDS.items() for f in fs])
@pytest.mark.parametrize("value", WRONG_VALUES, ids=repr)
def test_wrong_field_values_never_raise_anything_but_task_error(task_type, field, value):
    payload = dict(VALID[task_type], **{field: value})
    try:
        run(task_type, payload)
    except TaskError:
        pass  # a clear refusal; succeeding is fine too when the value is acceptable


# --- echo -----------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [{"message": "hi", "n": [1, {"x": None}]}, [1, 2], "s", None, {}])
def test_echo(payload):
    assert run("echo", payload) == {"echoed": payload}


# --- compute --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "payload,expected",
    [
        ({"operation": "sum", "numbers": [1, 2, 3]}, 6),
        ({"operation": "sum", "numbers": []}, 0),
        ({"numbers": [1, 2, 3.5]}, 6.5),  # operation defaults to sum, as in the reference
        ({"operation": "product", "numbers": [2, 3, 4]}, 24),
        ({"operation": "product", "numbers": []}, 1),
        ({"operation": "average", "numbers": [1, 2, 3, 4]}, 2.5),
        ({"operation": "average", "numbers": [-2, 2.0]}, 0.0),
    ],
)
def test_compute(payload, expected):
    result = run("compute", payload)
    assert result == {"operation": payload.get("operation", "sum"), "result": expected}


@pytest.mark.parametrize(
    "payload,message",
    [
        ({"operation": "median", "numbers": [1]}, "Unknown operation"),
        ({"operation": ["sum"], "numbers": [1]}, "Unknown operation"),
        ({"operation": "sum"}, "'numbers' must be a list"),
        ({"operation": "sum", "numbers": "1,2"}, "'numbers' must be a list"),
        ({"operation": "sum", "numbers": [1, "2"]}, "'numbers' must be a list"),
        ({"operation": "sum", "numbers": [True, 1]}, "'numbers' must be a list"),
        ({"operation": "sum", "numbers": [None]}, "'numbers' must be a list"),
        ({"operation": "sum", "numbers": [float("inf")]}, "finite"),
        ({"operation": "average", "numbers": []}, "empty"),
        ({"operation": "product", "numbers": [10**300] * 20}, "too large"),
        ({"operation": "product", "numbers": [1e300, 1e300]}, "overflow"),
        ({"operation": "average", "numbers": [10**4000]}, "too large"),
    ],
)
def test_compute_errors(payload, message):
    with pytest.raises(TaskError, match=message):
        run("compute", payload)


# --- sleep ----------------------------------------------------------------------------------

def test_sleep_uses_ctx_sleep_and_caps_at_300():
    ctx = RecordingContext(timeout_s=1000)
    assert run("sleep", {"duration": 2.5}, ctx) == {"slept_for": 2.5}
    assert run("sleep", {"duration": 9999}, ctx) == {"slept_for": 300}
    assert run("sleep", {}, ctx) == {"slept_for": 1}  # reference default
    assert ctx.slept == [2.5, 300, 1]


def test_sleep_really_waits():
    start = time.monotonic()
    assert run("sleep", {"duration": 0.1}, TaskContext("t", 5)) == {"slept_for": 0.1}
    assert 0.09 <= time.monotonic() - start < 1


@pytest.mark.parametrize("duration", [-1, -0.01, "5", None, True, [1], float("nan"), float("inf")])
def test_sleep_invalid_duration(duration):
    with pytest.raises(TaskError, match="duration"):
        run("sleep", {"duration": duration})


def test_sleep_is_interrupted_by_revoke_from_another_thread():
    ctx = TaskContext("t", 60)
    timer = threading.Timer(0.1, ctx.interrupt, args=("revoked",))
    start = time.monotonic()
    timer.start()
    with pytest.raises(TaskInterrupted) as info:
        run("sleep", {"duration": 30}, ctx)
    elapsed = time.monotonic() - start
    assert info.value.reason == "revoked"
    assert 0.09 <= elapsed < 0.3


def test_sleep_past_the_time_limit_raises_task_timeout():
    ctx = TaskContext("t", 0.15)
    start = time.monotonic()
    with pytest.raises(TaskTimeout):
        run("sleep", {"duration": 30}, ctx)
    assert 0.14 <= time.monotonic() - start < 0.4


# --- process_data ---------------------------------------------------------------------------

def test_process_data_transform():
    data = ["abc", 2, 1.5, None, True, [1], {"k": "v"}, -3]
    result = run("process_data", {"data": data, "operation": "transform"})
    assert result == {"processed": ["ABC", 4, 3.0, None, True, [1], {"k": "v"}, -6], "count": 8}
    assert run("process_data", {"data": ["x"]}) == {"processed": ["X"], "count": 1}  # default op


def test_process_data_filter():
    data = [0, 1, 2, 3, 4, "", "a", None, [], [0], False, True, 6.0]
    truthy = run("process_data", {"data": data, "operation": "filter"})
    assert truthy == {"processed": [1, 2, 3, 4, "a", [0], True, 6.0], "count": len(data)}
    even = run("process_data", {"data": data, "operation": "filter", "predicate": "even"})
    assert even == {"processed": [0, 2, 4], "count": len(data)}


def test_process_data_aggregate():
    data = [1, "b", None]
    assert run("process_data", {"data": data, "operation": "aggregate"}) == {
        "processed": {"count": 3, "items": [1, "b", None]},
        "count": 3,
    }


@pytest.mark.parametrize(
    "payload,message",
    [
        ({"operation": "transform"}, "'data' must be a list"),
        ({"data": "abc", "operation": "transform"}, "'data' must be a list"),
        ({"data": {"a": 1}, "operation": "aggregate"}, "'data' must be a list"),
        ({"data": [1], "operation": "sort"}, "Unknown operation"),
        ({"data": [1], "operation": "filter", "predicate": "odd"}, "Unknown predicate"),
        ({"data": [1e308], "operation": "transform"}, "overflow"),
    ],
)
def test_process_data_errors(payload, message):
    with pytest.raises(TaskError, match=message):
        run("process_data", payload)


# --- send_email -----------------------------------------------------------------------------

def test_send_email():
    ctx = RecordingContext()
    result = run("send_email", {"to": "user@example.com", "subject": "Hello", "body": "Hi there"}, ctx)
    assert ctx.slept == [0.5]
    sent_at = result.pop("sent_at")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", sent_at)
    assert result == {"status": "sent", "to": "user@example.com", "subject": "Hello", "body_length": 8}
    defaults = run("send_email", {"to": "a.b+c@mail.example.org"})
    assert (defaults["subject"], defaults["body_length"]) == ("No Subject", 0)


@pytest.mark.parametrize(
    "payload,message",
    [
        ({"subject": "x"}, "'to' email address is required"),
        ({"to": ""}, "'to' email address is required"),
        ({"to": "not-an-email"}, "Invalid email"),
        ({"to": "user@localhost"}, "Invalid email"),
        ({"to": "a@@example.com"}, "Invalid email"),
        ({"to": "a b@example.com"}, "Invalid email"),
        ({"to": "@example.com"}, "Invalid email"),
        ({"to": "a@example."}, "Invalid email"),
        ({"to": "a@" + "x" * 260 + ".com"}, "Invalid email"),
        ({"to": ["a@example.com"]}, "'to' must be a string"),
        ({"to": "a@example.com", "subject": 5}, "'subject' must be a string"),
        ({"to": "a@example.com", "body": {"html": "x"}}, "'body' must be a string"),
        ({"to": "a@example.com", "subject": "hi\r\nBcc: evil@example.com"}, "line breaks"),
        ({"to": "a@example.com\nbcc@example.com"}, "line breaks"),
    ],
)
def test_send_email_errors(payload, message):
    ctx = RecordingContext()
    with pytest.raises(TaskError, match=message):
        run("send_email", payload, ctx)
    assert ctx.slept == []  # refused before the simulated send


def test_send_email_delay_is_interruptible():
    ctx = TaskContext("t", 60)
    ctx.interrupt("shutdown")
    with pytest.raises(TaskInterrupted):
        run("send_email", {"to": "a@example.com"}, ctx)


# --- resize_image ---------------------------------------------------------------------------

def test_resize_image():
    ctx = RecordingContext()
    result = run("resize_image", {"image_url": "https://img.example.com/a.png", "width": 800, "height": 600, "format": "webp"}, ctx)
    assert ctx.slept == [1.0]
    assert result == {
        "status": "resized",
        "original_url": "https://img.example.com/a.png",
        "new_dimensions": {"width": 800, "height": 600},
        "format": "webp",
        "output_url": "https://cdn.example.com/resized/800x600.webp",
    }


def test_resize_image_one_dimension_and_default_format():
    result = run("resize_image", {"image_url": "https://x/a.png", "height": 100})
    assert result["new_dimensions"] == {"width": None, "height": 100}
    assert result["format"] == "jpeg"
    assert result["output_url"] == "https://cdn.example.com/resized/autox100.jpeg"


@pytest.mark.parametrize(
    "payload,message",
    [
        ({"width": 10}, "'image_url' is required"),
        ({"image_url": "", "width": 10}, "'image_url' is required"),
        ({"image_url": 123, "width": 10}, "'image_url' must be a string"),
        ({"image_url": "https://x/" + "a" * 3000, "width": 10}, "'image_url' must be a string"),
        ({"image_url": "https://x/a.png"}, "At least 'width' or 'height'"),
        ({"image_url": "https://x/a.png", "width": 0}, "'width' must be an integer"),
        ({"image_url": "https://x/a.png", "width": -5}, "'width' must be an integer"),
        ({"image_url": "https://x/a.png", "width": 10.5}, "'width' must be an integer"),
        ({"image_url": "https://x/a.png", "width": "800"}, "'width' must be an integer"),
        ({"image_url": "https://x/a.png", "height": True}, "'height' must be an integer"),
        ({"image_url": "https://x/a.png", "height": 10001}, "'height' must be an integer"),
        ({"image_url": "https://x/a.png", "width": 10, "format": "bmp"}, "Invalid format"),
        ({"image_url": "https://x/a.png", "width": 10, "format": None}, "Invalid format"),
    ],
)
def test_resize_image_errors(payload, message):
    with pytest.raises(TaskError, match=message):
        run("resize_image", payload)


# --- generate_report ------------------------------------------------------------------------

def test_generate_report():
    ctx = RecordingContext()
    payload = {"report_type": "financial", "output_format": "csv", "date_range": {"from": "2024-01-01"}, "filters": {"x": 1}}
    result = run("generate_report", payload, ctx)
    assert ctx.slept == [2.0]
    assert result["status"] == "generated"
    assert re.fullmatch(r"RPT-\d+-[0-9a-f]{8}", result["report_id"])
    assert result["download_url"] == f"https://reports.example.com/{result['report_id']}.csv"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", result.pop("generated_at"))
    assert {k: result[k] for k in ("report_type", "output_format", "date_range", "filters_applied")} == {
        "report_type": "financial",
        "output_format": "csv",
        "date_range": {"from": "2024-01-01"},
        "filters_applied": {"x": 1},
    }
    other = run("generate_report", {})
    assert (other["report_type"], other["output_format"]) == ("summary", "json")  # reference defaults
    assert other["report_id"] != result["report_id"]


@pytest.mark.parametrize(
    "payload,message",
    [
        ({"report_type": "weekly"}, "Invalid report_type"),
        ({"output_format": "docx"}, "Invalid output_format"),
        ({"report_type": ["summary"]}, "Invalid report_type"),
        ({"date_range": "last week"}, "must be objects"),
        ({"filters": [1]}, "must be objects"),
    ],
)
def test_generate_report_errors(payload, message):
    with pytest.raises(TaskError, match=message):
        run("generate_report", payload)


# --- http_request ---------------------------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.paths.append(self.path)
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.end_headers()
        elif self.path == "/loop":
            self.send_response(301)
            self.send_header("Location", "/loop")
            self.end_headers()
        elif self.path == "/to-file":
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.end_headers()
        elif self.path == "/missing":
            self._body(404, b"not here")
        elif self.path == "/big":
            self._body(200, b"z" * 5000)
        elif self.path == "/slow":
            time.sleep(0.6)
            self._body(200, b"late")
        else:
            self._body(200, b"hello world")

    def _body(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.paths = []
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    srv.base = f"http://127.0.0.1:{srv.server_port}"
    yield srv
    srv.shutdown()
    srv.server_close()


def private_ok(timeout_s=10):
    return TaskContext("t", timeout_s, allow_private_networks=True)


def test_context_refuses_private_networks_by_default():
    assert TaskContext("t", 1).allow_private_networks is False


def test_http_request_against_local_server(server):
    result = run("http_request", {"url": server.base + "/ok"}, private_ok())
    assert result == {"url": server.base + "/ok", "status_code": 200, "content_length": 11}
    assert server.paths == ["/ok"]


def test_http_request_follows_redirects(server):
    result = run("http_request", {"url": server.base + "/redirect", "method": "get"}, private_ok())
    assert result == {"url": server.base + "/redirect", "status_code": 200, "content_length": 11}
    assert server.paths == ["/redirect", "/ok"]


def test_http_request_redirect_limits(server):
    with pytest.raises(TaskError, match="redirects"):
        run("http_request", {"url": server.base + "/loop"}, private_ok())
    assert len(server.paths) == 6
    with pytest.raises(TaskError, match="scheme"):
        run("http_request", {"url": server.base + "/to-file"}, private_ok())


def test_http_request_non_2xx_fails_like_the_reference(server):
    with pytest.raises(TaskError, match="404"):
        run("http_request", {"url": server.base + "/missing"}, private_ok())


def test_http_request_body_is_capped(server, monkeypatch):
    monkeypatch.setattr(http_request, "MAX_BODY_BYTES", 1000)
    monkeypatch.setattr(http_request, "CHUNK_BYTES", 256)
    result = run("http_request", {"url": server.base + "/big"}, private_ok())
    assert result == {"url": server.base + "/big", "status_code": 200, "content_length": 1000, "truncated": True}


def test_http_request_read_timeout_is_task_error(server):
    start = time.monotonic()
    with pytest.raises(TaskError, match="timed out"):
        run("http_request", {"url": server.base + "/slow", "timeout": 0.2}, private_ok())
    assert time.monotonic() - start < 0.55


def test_http_request_timeout_bounded_by_remaining_task_time(server):
    start = time.monotonic()
    with pytest.raises((TaskError, TaskTimeout)):
        run("http_request", {"url": server.base + "/slow"}, private_ok(timeout_s=0.2))
    assert time.monotonic() - start < 0.55


def test_http_request_connection_refused_is_task_error():
    import socket

    with socket.socket() as s:  # find a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TaskError, match="HTTP request failed"):
        run("http_request", {"url": f"http://127.0.0.1:{port}/"}, private_ok())


def test_http_request_refuses_loopback_when_private_not_allowed(server):
    with pytest.raises(TaskError, match="refused.*loopback"):
        run("http_request", {"url": server.base + "/ok"}, TaskContext("t", 10))
    assert server.paths == []


def test_http_request_rechecks_address_at_connect_time(server, monkeypatch):
    """Even if the pre-check were fooled (DNS rebinding), the connection is not made."""
    monkeypatch.setattr(http_request, "check_url", lambda url, allow_private: None)
    with pytest.raises(TaskError, match="refused"):
        run("http_request", {"url": f"http://localhost:{server.server_port}/ok"}, TaskContext("t", 10))
    assert server.paths == []


def test_http_request_revoked_before_start(server):
    ctx = private_ok()
    ctx.interrupt("revoked")
    with pytest.raises(TaskInterrupted):
        run("http_request", {"url": server.base + "/ok"}, ctx)
    assert server.paths == []


@pytest.mark.parametrize(
    "payload,message",
    [
        ({}, "URL is required"),
        ({"url": ""}, "URL is required"),
        ({"url": 42}, "'url' must be a string"),
        ({"url": "not a url"}, "URL refused"),
        ({"url": "file:///etc/passwd"}, "URL refused"),
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "metadata"),
        ({"url": "https://example.com/", "method": "POST"}, "'method' must be GET"),
        ({"url": "https://example.com/", "timeout": 0}, "'timeout' must be a positive"),
        ({"url": "https://example.com/", "timeout": "5"}, "'timeout' must be a positive"),
    ],
)
def test_http_request_errors(payload, message):
    with pytest.raises(TaskError, match=message):
        run("http_request", payload, private_ok())
