"""Hostile input: every answer is a JSON 4xx, or a 2xx whose data reads back exactly as sent;
never a 5xx, and never a write when the answer is a 4xx.

Bodies over the limit (413), nesting far beyond any parser's recursion limit, huge arrays and
objects, numbers beyond float/int limits, and the unicode that trips storage layers: lone
surrogates (not representable in UTF-8, so they must be refused), NUL, bidi overrides,
zero-width and non-characters, emoji, invalid UTF-8 bytes, overlong keys.
"""
from __future__ import annotations

import json
import sys
from decimal import Decimal

import pytest
import requests

from .helpers import SecUser, assert_json_error

LIMIT = 1024 * 1024  # MAX_BODY_BYTES default


def normal(value, depth: int = 0):
    """JSON data with every number as a Decimal of its value (1e308 and 10**308 compare equal),
    so a number stored as numeric and read back in another notation still counts as intact."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    if isinstance(value, list):
        return [normal(v, depth + 1) for v in value]
    return {k: normal(v, depth + 1) for k, v in value.items()}


def same(stored, sent) -> bool:
    """`normal(stored) == normal(sent)`, with room for the deepest bodies the API accepts."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))
    try:
        return normal(stored) == normal(sent)
    finally:
        sys.setrecursionlimit(limit)


def body(fields: str) -> bytes:
    """A create-task body from raw JSON member text (so any escape or byte can be placed)."""
    return ('{"task_type": "echo", ' + fields + "}").encode("utf-8", errors="surrogatepass")


def nested(depth: int, kind: str = "list") -> str:
    return "[" * depth + "]" * depth if kind == "list" else '{"a": ' * depth + "1" + "}" * depth


def digits(n: int) -> str:
    return "9" * n


# name -> raw create-task body
TASK_BODIES = {
    # nesting
    **{f"nested-list-{d}": body(f'"name": "n", "payload": {nested(d)}') for d in (64, 900, 5_000, 200_000)},
    **{f"nested-object-{d}": body(f'"name": "n", "payload": {nested(d, "object")}') for d in (64, 900, 5_000, 100_000)},
    "nested-metadata-5000": body(f'"name": "n", "metadata": {{"m": {nested(5_000)}}}'),
    # huge collections
    "payload-array-150k": body('"name": "n", "payload": {"xs": [' + ",".join(["1"] * 150_000) + "]}"),
    "payload-object-30k-keys": body('"name": "n", "payload": {' + ",".join(f'"k{i}": {i}' for i in range(30_000)) + "}"),
    "tags-10k": body('"name": "n", "tags": [' + ",".join(f'"t{i}"' for i in range(10_000)) + "]"),
    "tags-huge-item": body('"name": "n", "tags": ["' + "t" * 100_000 + '"]'),
    "metadata-10k-keys": body('"name": "n", "metadata": {' + ",".join(f'"k{i}": 1' for i in range(10_000)) + "}"),
    "callback-headers-1k": body('"name": "n", "callback_headers": {' + ",".join(f'"h{i}": "v"' for i in range(1000)) + "}"),
    "name-100k": body('"name": "' + "n" * 100_000 + '"'),
    # numbers
    "payload-1e400": body('"name": "n", "payload": {"x": 1e400}'),
    "payload-minus-1e400": body('"name": "n", "payload": {"x": -1e400}'),
    "payload-max-double": body('"name": "n", "payload": {"x": 1.7976931348623157e308}'),
    "payload-min-subnormal": body('"name": "n", "payload": {"x": 5e-324, "y": -0.0}'),
    "payload-int-300-digits": body(f'"name": "n", "payload": {{"x": {digits(300)}}}'),
    "payload-int-4000-digits": body(f'"name": "n", "payload": {{"x": {digits(4000)}}}'),
    "payload-int-5000-digits": body(f'"name": "n", "payload": {{"x": {digits(5000)}}}'),
    "payload-int-200k-digits": body(f'"name": "n", "payload": {{"x": {digits(200_000)}}}'),
    "payload-fraction-5000-digits": body('"name": "n", "payload": {"x": 0.' + "1" * 5000 + "}"),
    "payload-NaN": body('"name": "n", "payload": {"x": NaN}'),
    "payload-Infinity": body('"name": "n", "payload": {"x": Infinity}'),
    "priority-huge": body(f'"name": "n", "priority": {digits(30)}'),
    "priority-1e400": body('"name": "n", "priority": 1e400'),
    "max-retries-2-63": body('"name": "n", "max_retries": 9223372036854775808'),
    "timeout-float": body('"name": "n", "timeout": 1.5'),
    "retry-delay-negative": body('"name": "n", "retry_delay": -1'),
    # unicode
    "name-lone-high-surrogate": body(r'"name": "a\ud800b"'),
    "name-lone-low-surrogate": body(r'"name": "a\udc00b"'),
    "name-reversed-pair": body(r'"name": "\ude00\ud83d"'),
    "payload-lone-surrogate": body(r'"name": "n", "payload": {"s": "\udfff"}'),
    "payload-key-lone-surrogate": body(r'"name": "n", "payload": {"\ud800": 1}'),
    "tag-lone-surrogate": body(r'"name": "n", "tags": ["\ud800"]'),
    "metadata-key-lone-surrogate": body(r'"name": "n", "metadata": {"\udbff": "v"}'),
    "raw-cesu-surrogate-bytes": b'{"task_type": "echo", "name": "a\xed\xa0\x80b"}',
    "raw-invalid-utf8": b'{"task_type": "echo", "name": "a\xff\xfeb"}',
    "raw-overlong-utf8-slash": b'{"task_type": "echo", "name": "a\xc0\xafb"}',
    "raw-latin1-body": '{"task_type": "echo", "name": "caf\xe9"}'.encode("latin-1"),
    "name-nul": body(r'"name": "a\u0000b"'),
    "payload-nul": body(r'"name": "n", "payload": {"s": "\u0000"}'),
    "payload-key-nul": body(r'"name": "n", "payload": {"a\u0000": 1}'),
    "tag-nul": body(r'"name": "n", "tags": ["\u0000"]'),
    "metadata-nul-value": body(r'"name": "n", "metadata": {"k": "\u0000"}'),
    "bidi-zero-width-bom": body(r'"name": "\u202egnp.exe\u200b\u200c\u200d\u2060\ufeff", "tags": ["\u202e", "\u2066x\u2069"], "payload": {"\u202ekey": "\u200b"}, "metadata": {"\ufeff": "\u2028\u2029"}'),
    "non-characters-and-extremes": body(r'"name": "\uffff\ufffe\ud83f\udffe\udbff\udfff", "payload": {"s": "\u0085\u009f\u007f"}'),
    "emoji-escaped": body(r'"name": "\ud83d\udc69\u200d\ud83d\udc69\u200d\ud83d\udc67\ud83c\udff3\ufe0f\u200d\ud83c\udf08", "tags": ["\ud83d\ude00"]'),
    "emoji-raw-255": body('"name": "' + "\U0001F600" * 255 + '"'),
    "emoji-raw-256": body('"name": "' + "\U0001F600" * 256 + '"'),
    "combining-zalgo": body('"name": "' + "Z" + "\u0336\u0337\u0338" * 80 + '", "payload": {"z": "' + "a\u0301" * 5000 + '"}'),
    "overlong-payload-key-500k": body('"name": "n", "payload": {"' + "k" * 500_000 + '": 1}'),
    "overlong-metadata-key-100k": body('"name": "n", "metadata": {"' + "k" * 100_000 + '": 1}'),
    "overlong-header-name": body('"name": "n", "callback_headers": {"' + "H" * 10_000 + '": "v"}'),
    "duplicate-keys": body('"name": "first", "name": "second", "payload": {"a": 1, "a": 2}'),
    # not an object / not JSON
    "json-array": b"[1, 2, 3]",
    "json-string": b'"hello"',
    "json-null": b"null",
    "truncated": b'{"task_type": "echo", "name": "n", "payload": {"a": [1, 2',
    "empty-name-key-only": b'{"": ""}',
}


@pytest.fixture(scope="module")
def poster(system):
    return SecUser(system)


def _count(db, table: str, owner: int) -> int:
    return db.scalar(f"SELECT count(*) FROM {table} WHERE owner_id = :o", o=owner)


def _check_stored_task(user: SecUser, sent: bytes, task: dict) -> None:
    """A 201's task reads back with exactly the name/payload/tags/metadata that were sent
    (as Python's JSON parser reads them: the last of duplicate keys wins)."""
    sent_obj = json.loads(sent)
    stored = user.task(task["id"])
    for name, default in (("name", None), ("payload", {}), ("tags", []), ("metadata", {})):
        if name in sent_obj or default is not None:
            assert same(stored[name], sent_obj.get(name, default)), name


@pytest.mark.parametrize("case", list(TASK_BODIES))
def test_create_task_hostile_body(poster, db, case):
    """POST /tasks/ with a hostile body: a JSON 4xx and no new row, or 201 stored intact."""
    raw = TASK_BODIES[case]
    before = _count(db, "tasks", poster.id)
    r = poster.call("POST", "/tasks/", data=raw, headers={"Content-Type": "application/json"})
    assert r.status_code < 500, f"{case}: {r.status_code} {r.text[:300]}"
    if r.status_code == 201:
        _check_stored_task(poster, raw, r.json())
        assert _count(db, "tasks", poster.id) == before + 1
    else:
        assert_json_error(r, (400, 413, 415, 422))
        assert _count(db, "tasks", poster.id) == before, f"{case}: a refused request wrote a task"


SCHEDULE_CASES = ["nested-list-200000", "nested-object-5000", "payload-int-5000-digits", "payload-1e400",
                  "name-lone-high-surrogate", "payload-key-lone-surrogate", "name-nul", "bidi-zero-width-bom",
                  "emoji-escaped", "overlong-payload-key-500k", "tags-10k", "raw-invalid-utf8"]


@pytest.mark.parametrize("case", SCHEDULE_CASES)
def test_create_schedule_hostile_body(poster, db, case):
    """POST /schedules/ with the same bodies (plus a timing): a JSON 4xx and no row, or 201 with
    the template stored intact."""
    raw = TASK_BODIES[case].replace(b'{"task_type"', b'{"interval_seconds": 86400, "task_type"', 1)
    before = _count(db, "schedules", poster.id)
    r = poster.call("POST", "/schedules/", data=raw, headers={"Content-Type": "application/json"})
    assert r.status_code < 500, f"{case}: {r.status_code} {r.text[:300]}"
    if r.status_code == 201:
        sent, stored = json.loads(raw), poster.ok("GET", f"/schedules/{r.json()['id']}/")
        for name in ("name", "payload", "tags", "metadata"):
            if name in sent:
                assert same(stored[name], sent[name]), name
    else:
        assert_json_error(r, (400, 413, 415, 422))
        assert _count(db, "schedules", poster.id) == before


PROFILE_VALUES = {
    "lone-surrogate": r'"\ud800"', "nul": r'"a\u0000"', "bidi": r'"\u202eevil\u200b"', "emoji": r'"\ud83d\ude00"',
    "huge": '"' + "x" * 100_000 + '"', "nested": nested(100_000), "number": "1e400",
}


@pytest.mark.parametrize("case", list(PROFILE_VALUES))
def test_profile_update_hostile_value(system, case):
    """PATCH /auth/profile/ first_name: a JSON 4xx with the profile unchanged, or 200 intact."""
    user = SecUser(system)
    before = user.ok("GET", "/auth/profile/")
    raw = ('{"first_name": ' + PROFILE_VALUES[case] + "}").encode()
    r = user.call("PATCH", "/auth/profile/", data=raw, headers={"Content-Type": "application/json"})
    assert r.status_code < 500, f"{case}: {r.status_code} {r.text[:300]}"
    after = user.ok("GET", "/auth/profile/")
    if r.status_code == 200:
        assert after["first_name"] == json.loads(raw)["first_name"]
    else:
        assert_json_error(r, (400, 413))
        assert after == before


def test_register_with_hostile_username_is_refused_or_intact(system, db):
    """Registration with lone surrogates, NUL, bidi overrides or huge usernames: a 4xx and no
    user, or 201 with the name stored exactly."""
    for value in (r'"\ud800x"', r'"x\u0000"', r'"\u202eadmin"', '"' + "u" * 100_000 + '"', r'"adm\u0131n"'):
        users = db.scalar("SELECT count(*) FROM users")
        raw = ('{"username": ' + value + ', "email": "x@example.com", "password": "pw-long-enough-1", '
               '"password_confirm": "pw-long-enough-1"}').encode()
        response = requests.post(f"{system.base_url}/api/v1/auth/register/", data=raw,
                                               headers={"Content-Type": "application/json"}, timeout=15)
        assert response.status_code < 500, (value[:40], response.status_code, response.text[:300])
        if response.status_code == 201:
            assert response.json()["user"]["username"] == json.loads(raw)["username"]
        else:
            assert_json_error(response, (400, 413))
            assert db.scalar("SELECT count(*) FROM users") == users


def _big(n: int) -> bytes:
    return ('{"name": "big", "task_type": "echo", "payload": {"blob": "' + "a" * n + '"}}').encode()


@pytest.mark.parametrize("path,method,auth", [("/tasks/", "POST", True), ("/schedules/", "POST", True),
                                              ("/auth/profile/", "PATCH", True), ("/auth/register/", "POST", False),
                                              ("/auth/token/", "POST", False)])
def test_body_over_the_limit_is_413(poster, db, path, method, auth):
    """A body over MAX_BODY_BYTES gets 413 JSON and writes nothing, with or without a
    Content-Length (chunked upload), authenticated or not."""
    before = (_count(db, "tasks", poster.id), _count(db, "schedules", poster.id), db.scalar("SELECT count(*) FROM users"))
    raw = _big(LIMIT + 10)
    # Connection: close, because a server may drop a kept-alive connection whose unread body it
    # gives up draining, and a pooled client would then fail its next request on it.
    headers = {"Content-Type": "application/json", "Connection": "close"}
    r = poster.call(method, path, data=raw, auth=auth, headers=headers)
    assert_json_error(r, 413)
    chunks = (raw[i:i + 65536] for i in range(0, len(raw), 65536))
    r = poster.call(method, path, data=chunks, auth=auth, headers=headers)
    assert_json_error(r, (400, 413))
    after = (_count(db, "tasks", poster.id), _count(db, "schedules", poster.id), db.scalar("SELECT count(*) FROM users"))
    assert after == before


def test_body_just_under_the_limit_is_accepted_intact(poster):
    """Positive control for the limit: a body just under it is accepted and stored whole."""
    raw = _big(LIMIT - 200)
    assert len(raw) < LIMIT
    r = poster.call("POST", "/tasks/", data=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text[:300]
    assert poster.task(r.json()["id"])["payload"] == json.loads(raw)["payload"]


@pytest.mark.parametrize("query", ["search=%ED%A0%80", "search=%FF%FE", "search=%00", "search=%E2%80%AE%F0%9F%98%80",
                                   "ordering=" + "x" * 5000, "page=" + "9" * 40, "page_size=-1", "priority=1e400",
                                   "status=%00", "task_type=%ED%A0%80", "search=" + "%F0%9F%98%80" * 2000])
def test_hostile_query_strings_never_5xx(poster, query):
    """Task list filters with invalid UTF-8, NUL, huge numbers and huge values: 200 or a JSON 4xx
    (a request line over the server's limit is refused by the server itself, before the app, with 400/414)."""
    r = poster.call("GET", f"/tasks/?{query}", headers={"Connection": "close"})
    assert r.status_code < 500, f"{query[:60]}: {r.status_code} {r.text[:300]}"
    if len(query) > 4000:
        assert r.status_code in (400, 414), r.status_code
    elif r.status_code != 200:
        assert_json_error(r, (400, 404))
