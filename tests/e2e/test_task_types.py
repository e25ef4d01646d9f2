"""Every task type, submitted over the API, reaches its terminal status with the right result."""
from __future__ import annotations

import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

BODY = b"hello from the e2e http server\n" * 37


@pytest.fixture(scope="module")
def http_target():
    """A local HTTP server (private networks are allowed in this environment)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path == "/missing":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_every_task_type_reaches_its_terminal_status_with_the_right_result(client, http_target):
    cases = {
        "echo": ("echo", {"message": "hi", "n": [1, 2, {"x": None}]}),
        "compute_sum": ("compute", {"operation": "sum", "numbers": [1, 2, 3.5]}),
        "compute_product": ("compute", {"operation": "product", "numbers": [2, 3, 7]}),
        "compute_average": ("compute", {"operation": "average", "numbers": [1, 2, 3, 4]}),
        "sleep": ("sleep", {"duration": 0.2}),
        "http_request": ("http_request", {"url": f"{http_target}/page", "method": "GET"}),
        "transform": ("process_data", {"operation": "transform", "data": ["ab", 2, 1.5, None, True]}),
        "filter_truthy": ("process_data", {"operation": "filter", "data": [0, 1, "", "x", None, 2, []]}),
        "filter_even": ("process_data", {"operation": "filter", "predicate": "even", "data": [1, 2, 3, 4, 6, "8"]}),
        "aggregate": ("process_data", {"operation": "aggregate", "data": [3, "a", {"k": 1}]}),
        "send_email": ("send_email", {"to": "alice@example.com", "subject": "Hello", "body": "12345"}),
        "resize_image": ("resize_image", {"image_url": "https://img.example.com/a.png", "width": 320, "format": "png"}),
        "generate_report": ("generate_report", {"report_type": "analytics", "output_format": "csv",
                                                 "date_range": {"from": "2026-01-01"}}),
    }
    ids = {key: client.create(task_type, payload, name=f"types {key}")["id"] for key, (task_type, payload) in cases.items()}
    done = client.wait_all(ids.values(), timeout=30)
    by_key = {key: done[task_id] for key, task_id in ids.items()}

    for key, task in by_key.items():
        assert task["status"] == "success", f"{key}: {task['status']} {task['error_message']!r}"
        assert task["error_message"] == "", key
        assert task["started_at"] and task["completed_at"], key
    r = {key: task["result"] for key, task in by_key.items()}

    assert r["echo"] == {"echoed": cases["echo"][1]}
    assert r["compute_sum"] == {"operation": "sum", "result": 6.5}
    assert r["compute_product"] == {"operation": "product", "result": 42}
    assert r["compute_average"] == {"operation": "average", "result": 2.5}
    assert r["sleep"] == {"slept_for": 0.2}
    assert r["http_request"] == {"url": f"{http_target}/page", "status_code": 200, "content_length": len(BODY)}
    assert r["transform"] == {"processed": ["AB", 4, 3.0, None, True], "count": 5}
    assert r["filter_truthy"] == {"processed": [1, "x", 2], "count": 7}
    assert r["filter_even"] == {"processed": [2, 4, 6], "count": 6}
    assert r["aggregate"] == {"processed": {"count": 3, "items": [3, "a", {"k": 1}]}, "count": 3}

    email = r["send_email"]
    assert {k: email[k] for k in ("status", "to", "subject", "body_length")} == {
        "status": "sent", "to": "alice@example.com", "subject": "Hello", "body_length": 5}
    assert email["sent_at"]

    image = r["resize_image"]
    assert image["status"] == "resized"
    assert image["original_url"] == "https://img.example.com/a.png"
    assert image["new_dimensions"] == {"width": 320, "height": None}
    assert image["format"] == "png"

    report = r["generate_report"]
    assert report["status"] == "generated"
    assert report["report_id"].startswith("RPT-")
    assert report["report_type"] == "analytics" and report["output_format"] == "csv"
    assert report["date_range"] == {"from": "2026-01-01"}

    # the simulated delays of the reference are kept (0.5 s, 1 s, 2 s; sleep 0.2 s)
    def ran_for(key):
        t = by_key[key]
        return (datetime.fromisoformat(t["completed_at"]) - datetime.fromisoformat(t["started_at"])).total_seconds()

    assert ran_for("sleep") >= 0.2
    assert ran_for("send_email") >= 0.5
    assert ran_for("resize_image") >= 1.0
    assert ran_for("generate_report") >= 2.0


def test_bad_payloads_fail_with_a_clear_message_and_the_worker_keeps_working(client, http_target, system):
    bad = client.create("compute", {"operation": "modulo", "numbers": [1, 2]}, max_retries=1, name="bad compute")
    not_found = client.create("http_request", {"url": f"{http_target}/missing"}, max_retries=1, name="bad http")
    wrong_shape = client.create("sleep", ["not", "an", "object"], max_retries=1, name="bad sleep")
    done = client.wait_all([bad["id"], not_found["id"], wrong_shape["id"]], timeout=15)

    failed = done[bad["id"]]
    assert failed["status"] == "failure"
    assert "Unknown operation" in failed["error_message"] and "modulo" in failed["error_message"]
    assert failed["retry_count"] == 1
    assert failed["result"] is None
    assert done[not_found["id"]]["status"] == "failure"
    assert "404" in done[not_found["id"]]["error_message"]
    assert done[wrong_shape["id"]]["status"] == "failure"
    assert "payload must be an object" in done[wrong_shape["id"]]["error_message"]

    # the same worker process is still alive and runs the next task
    assert system.worker.alive()
    after = client.create("echo", {"still": "alive"})
    assert client.wait_status(after["id"], ("success", "failure"))["result"] == {"echoed": {"still": "alive"}}
