"""GET /api/v1/tasks/: pagination, filters, search, ordering, and owner scoping."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from integration_helpers import API, assert_error, unique

TASKS = f"{API}/tasks/"


@pytest.fixture(scope="module")
def lister(make_user):
    """A user of this module only, so counts are exact."""
    return make_user()


@pytest.fixture(scope="module")
def seeded(lister, other_user, create_task, db):
    """Seven tasks of `lister` with distinct priorities/statuses/types (+ one of another user)."""
    specs = [
        dict(name="alpha report", task_type="echo", priority=1, tags=["red", "Blue-Tag"]),
        dict(name="beta compute", task_type="compute", priority=5, tags=["green"]),
        dict(name="gamma sleeper", task_type="sleep", priority=10, tags=[]),
        dict(name="delta echo", task_type="echo", priority=20, tags=["red"]),
        dict(name="epsilon 100% literal_", task_type="echo", priority=5, tags=["weird%_tag"]),
        dict(name="zeta failed", task_type="compute", priority=7, tags=[]),
        dict(name="eta done", task_type="echo", priority=3, tags=["done"]),
    ]
    created = [create_task(lister.headers, **spec) for spec in specs]
    # distinct, increasing created_at so ordering by it is deterministic
    for i, task in enumerate(created):
        db.execute("UPDATE tasks SET created_at = now() - make_interval(mins => :m) WHERE id = :id", m=100 - i, id=task["id"])
    db.execute("UPDATE tasks SET status = 'failure' WHERE id = :id", id=created[5]["id"])
    db.execute("UPDATE tasks SET status = 'success' WHERE id = :id", id=created[6]["id"])
    db.execute("UPDATE tasks SET status = 'running' WHERE id = :id", id=created[2]["id"])
    foreign = create_task(other_user.headers, name="alpha report", tags=["red"])
    return {"tasks": created, "foreign": foreign}


def get(client, user, query: str = "", status: int = 200):
    response = client.get(f"{TASKS}{query}", headers=user.headers)
    assert response.status_code == status, response.get_json()
    return response.get_json()


def names(page: dict) -> list[str]:
    return [t["name"] for t in page["results"]]


def test_envelope_and_scoping(client, lister, seeded):
    page = get(client, lister)
    assert set(page) == {"count", "next", "previous", "results"}
    assert page["count"] == 7
    assert page["next"] is None and page["previous"] is None
    ids = {t["id"] for t in page["results"]}
    assert ids == {t["id"] for t in seeded["tasks"]}
    assert seeded["foreign"]["id"] not in ids
    assert all("callback_secret" not in t for t in page["results"])
    # default ordering is newest first
    assert names(page)[0] == "eta done" and names(page)[-1] == "alpha report"


def test_other_user_sees_only_their_own(client, other_user, seeded):
    page = get(client, other_user, "?page_size=100")
    ids = {t["id"] for t in page["results"]}
    assert seeded["foreign"]["id"] in ids
    assert not ids & {t["id"] for t in seeded["tasks"]}


def test_pagination_walk(client, lister, seeded):
    first = get(client, lister, "?page_size=3&ordering=created_at")
    assert first["count"] == 7 and len(first["results"]) == 3
    assert first["previous"] is None and first["next"]
    query = parse_qs(urlsplit(first["next"]).query)
    assert query["page"] == ["2"] and query["page_size"] == ["3"] and query["ordering"] == ["created_at"]

    second = client.get(first["next"], headers=lister.headers).get_json()
    assert len(second["results"]) == 3 and second["next"] and second["previous"]
    third = client.get(second["next"], headers=lister.headers).get_json()
    assert len(third["results"]) == 1 and third["next"] is None
    assert parse_qs(urlsplit(third["previous"]).query)["page"] == ["2"]

    walked = names(first) + names(second) + names(third)
    assert walked == [t["name"] for t in seeded["tasks"]]


def test_page_beyond_end_404(client, lister, seeded):
    assert_error(client.get(f"{TASKS}?page=3&page_size=5", headers=lister.headers), 404)
    assert_error(client.get(f"{TASKS}?page=99999999999999999999", headers=lister.headers), 404)
    # an empty first page is fine
    fresh_filter = get(client, lister, "?search=no-such-thing-anywhere")
    assert fresh_filter == {"count": 0, "next": None, "previous": None, "results": []}


@pytest.mark.parametrize("query", ["?page_size=101", "?page_size=0", "?page=0", "?page=-1", "?page=abc", "?page_size=x"])
def test_bad_pagination_400(client, lister, query):
    assert_error(client.get(f"{TASKS}{query}", headers=lister.headers), 400)


def test_page_size_100_allowed(client, lister, seeded):
    assert get(client, lister, "?page_size=100")["count"] == 7


@pytest.mark.parametrize(
    "query, expected",
    [
        ("?status=queued", {"alpha report", "beta compute", "delta echo", "epsilon 100% literal_"}),
        ("?status=failure", {"zeta failed"}),
        ("?status=running", {"gamma sleeper"}),
        ("?status=revoked", set()),
        ("?task_type=compute", {"beta compute", "zeta failed"}),
        ("?task_type=sleep", {"gamma sleeper"}),
        ("?priority=5", {"beta compute", "epsilon 100% literal_"}),
        ("?priority=20", {"delta echo"}),
        ("?task_type=echo&priority=5", {"epsilon 100% literal_"}),
        ("?status=queued&task_type=compute", {"beta compute"}),
    ],
)
def test_filters(client, lister, seeded, query, expected):
    page = get(client, lister, query + "&page_size=100")
    assert set(names(page)) == expected
    assert page["count"] == len(expected)


@pytest.mark.parametrize("query", ["?status=bogus", "?task_type=bogus", "?priority=high", "?status=%00", "?search=a%00b"])
def test_invalid_filters_400(client, lister, query):
    assert_error(client.get(f"{TASKS}{query}", headers=lister.headers), 400)


@pytest.mark.parametrize(
    "term, expected",
    [
        ("alpha", {"alpha report"}),
        ("ALPHA", {"alpha report"}),  # case-insensitive
        ("ep", {"epsilon 100% literal_", "gamma sleeper", "alpha report"}),  # substrings of names
        ("red", {"alpha report", "delta echo"}),  # by tag
        ("blue-tag", {"alpha report"}),  # tag, case-insensitive
        ("done", {"eta done"}),  # name and tag both match: listed once
        ("100%", {"epsilon 100% literal_"}),  # % is literal
        ("%", {"epsilon 100% literal_"}),
        ("_", {"epsilon 100% literal_"}),  # _ is literal (tag weird%_tag belongs to the same task)
        ("nothing-matches", set()),
    ],
)
def test_search_by_name_and_tag(client, lister, seeded, term, expected):
    from urllib.parse import quote

    page = get(client, lister, f"?search={quote(term)}&page_size=100")
    assert set(names(page)) == expected
    assert page["count"] == len(expected) == len(page["results"])


def test_search_does_not_leak_other_users(client, other_user, seeded):
    page = get(client, other_user, "?search=alpha")
    assert [t["id"] for t in page["results"]] == [seeded["foreign"]["id"]]


def test_next_link_keeps_special_characters(client, make_user, create_task):
    owner = make_user()
    for i in range(3):
        create_task(owner.headers, name=f"a&b #{i}")
    create_task(owner.headers, name="a-only")
    first = get(client, owner, "?search=a%26b%20%23&page_size=2")
    assert first["count"] == 3
    second = client.get(first["next"], headers=owner.headers)
    assert second.status_code == 200
    data = second.get_json()
    assert data["count"] == 3 and len(data["results"]) == 1
    assert set(names(first) + names(data)) == {"a&b #0", "a&b #1", "a&b #2"}


@pytest.mark.parametrize(
    "ordering, key, reverse",
    [
        ("priority", "priority", False),
        ("-priority", "priority", True),
        ("created_at", "created_at", False),
        ("-created_at", "created_at", True),
        ("status", "status", False),
        ("-status", "status", True),
    ],
)
def test_ordering(client, lister, seeded, ordering, key, reverse):
    results = get(client, lister, f"?ordering={ordering}&page_size=100")["results"]
    values = [t[key] for t in results]
    assert values == sorted(values, reverse=reverse)
    assert len(set(values)) > 1  # the fixture makes the ordering observable


def test_ordering_multiple_keys(client, lister, seeded):
    results = get(client, lister, "?ordering=-priority,created_at&page_size=100")["results"]
    pairs = [(-t["priority"], t["created_at"]) for t in results]
    assert pairs == sorted(pairs)
    assert [t["name"] for t in results if t["priority"] == 5] == ["beta compute", "epsilon 100% literal_"]


@pytest.mark.parametrize("ordering", ["name", "-owner_id", "priority,bogus", "callback_secret"])
def test_invalid_ordering_400(client, lister, ordering):
    assert "ordering" in assert_error(client.get(f"{TASKS}?ordering={ordering}", headers=lister.headers), 400)


def test_list_requires_auth(client):
    assert_error(client.get(TASKS), 401)


def test_fresh_user_empty_list(client, make_user):
    owner = make_user(username=unique("empty"))
    assert get(client, owner) == {"count": 0, "next": None, "previous": None, "results": []}
