"""The OpenAPI document and the docs page: complete (every route and method), valid OpenAPI 3,
served without auth, the docs page fully local, and real responses matching its schemas."""
from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from integration_helpers import API
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture(scope="module")
def document(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


@pytest.fixture(scope="module")
def conforms(document):
    """`conforms(body, "Task")`: validate a response body against a component schema."""

    def _conforms(body, schema):
        schema = {"$ref": f"#/components/schemas/{schema}"} if isinstance(schema, str) else schema
        OAS30Validator({**schema, "components": document["components"]}).validate(body)

    return _conforms


def _documented_path(rule: str) -> str:
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule)


def test_every_route_and_method_is_documented(app, document):
    routes = [
        r for r in app.url_map.iter_rules()
        if not r.rule.startswith("/admin") and r.endpoint != "static" and not r.endpoint.endswith(".static")
    ]
    assert len(routes) >= 30
    missing = [
        f"{method} {rule.rule}"
        for rule in routes
        for method in sorted(rule.methods - AUTOMATIC_METHODS)
        if method.lower() not in document["paths"].get(_documented_path(rule.rule), {})
    ]
    assert missing == []


def test_document_is_valid_openapi_3(document):
    assert document["openapi"].startswith("3.")
    validate(document)


def test_protected_operations_declare_bearer_auth_and_public_ones_none(document):
    operations = {f"{m.upper()} {p}": op for p, item in document["paths"].items() for m, op in item.items()}
    assert operations[f"POST {API}/tasks/"]["security"] == [{"bearerAuth": []}]
    assert "401" in operations[f"GET {API}/tasks/{{task_id}}/"]["responses"]
    for public in (f"POST {API}/auth/register/", f"POST {API}/auth/token/", "GET /healthz", "GET /api/openapi.json"):
        assert operations[public]["security"] == []
    schemes = document["components"]["securitySchemes"]["bearerAuth"]
    assert (schemes["type"], schemes["scheme"]) == ("http", "bearer")


def test_request_schemas_come_from_the_validating_specs(document):
    create = document["paths"][f"{API}/tasks/"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["name", "task_type"]
    assert body["properties"]["timeout"]["maximum"] == 3600
    assert {"400", "401", "413", "429"} <= set(create["responses"])
    listing = document["paths"][f"{API}/tasks/"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"page", "page_size", "status", "task_type", "priority",
                                                          "search", "ordering"}


class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def test_docs_page_loads_only_local_assets(client):
    response = client.get("/api/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert not re.search(r"https?://", page)
    parser = _Assets()
    parser.feed(page)
    assert any(u.endswith("swagger-ui-bundle.js") for u in parser.urls)
    for url in parser.urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        asset.close()
    assert "/api/openapi.json" in page


def test_validation_errors_match_the_error_schema(client, user, conforms):
    response = client.post(f"{API}/tasks/", json={"task_type": "nope"}, headers=user.headers)
    assert response.status_code == 400
    body = response.get_json()
    assert body["name"] == ["This field is required."]
    conforms(body, "Error")
    unauthenticated = client.get(f"{API}/tasks/")
    assert unauthenticated.status_code == 401
    conforms(unauthenticated.get_json(), "Error")


def test_task_responses_match_their_schemas(client, user, create_task, document, conforms):
    task = create_task(user.headers, payload={"x": 1}, tags=["a"], callback_url="https://example.com/hook")
    conforms(task, "Task")
    conforms(client.get(f"{API}/tasks/{task['id']}/", headers=user.headers).get_json(), "Task")
    listing = document["paths"][f"{API}/tasks/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    conforms(client.get(f"{API}/tasks/?page_size=1", headers=user.headers).get_json(), listing)
    conforms(client.get(f"{API}/tasks/stats/", headers=user.headers).get_json(), "TaskStats")
    conforms(client.post(f"{API}/tasks/{task['id']}/cancel/", headers=user.headers).get_json(), "TaskActionResult")
    triggered = client.post(f"{API}/tasks/{task['id']}/trigger_webhook/", headers=user.headers).get_json()
    conforms(triggered, "WebhookTriggered")
    deliveries = client.get(f"{API}/tasks/{task['id']}/webhook-deliveries/", headers=user.headers).get_json()
    conforms(deliveries[0], "WebhookDelivery")
    detail = client.get(f"{API}/tasks/{task['id']}/webhook-deliveries/{deliveries[0]['id']}/", headers=user.headers)
    conforms(detail.get_json(), "WebhookDeliveryDetail")


def test_account_and_schedule_responses_match_their_schemas(client, fresh_user, conforms):
    headers = fresh_user.headers
    conforms(client.get(f"{API}/auth/profile/", headers=headers).get_json(), "User")
    login = client.post(f"{API}/auth/token/", json={"username": fresh_user.username, "password": fresh_user.password})
    conforms(login.get_json(), "Login")
    conforms(client.post(f"{API}/auth/token/refresh/", json={"refresh": login.get_json()["refresh"]}).get_json(),
             "TokenPair")
    schedule = client.post(f"{API}/schedules/", json={"name": "n", "cron": "@daily", "task_type": "echo"}, headers=headers)
    assert schedule.status_code == 201
    conforms(schedule.get_json(), "Schedule")
    conforms(client.post(f"{API}/schedules/{schedule.get_json()['id']}/pause/", headers=headers).get_json(), "Schedule")


def test_dead_letter_responses_match_their_schemas(client, user, create_task, engine, conforms):
    from shared import transitions

    task = create_task(user.headers, max_retries=0)
    with engine.begin() as conn:
        assert transitions.run_one(conn, "claim", task_id=task["id"], lease=timedelta(seconds=30), worker="t")
        assert transitions.run_one(conn, "fail", task_id=task["id"], claim=1, error="boom", error_traceback="tb",
                                   failures=1)
    entries = client.get(f"{API}/dead-letters/?reprocessed=false", headers=user.headers).get_json()
    entry = next(e for e in entries["results"] if e["original_task"] == task["id"])
    conforms(entry, "DeadLetter")
    reprocessed = client.post(f"{API}/dead-letters/{entry['id']}/reprocess/", headers=user.headers)
    assert reprocessed.status_code == 201
    conforms(reprocessed.get_json(), "Task")
    conforms(client.get(f"{API}/dead-letters/{entry['id']}/", headers=user.headers).get_json(), "DeadLetter")
