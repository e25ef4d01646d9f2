"""deploy/grafana/taskqueue.json against the metrics the services define: every metric a panel
queries exists, and every metric a service defines is on some panel.

The defined metrics are read from the Prometheus registry after importing every
`services/<name>/<name>/metrics.py` (plus prometheus-flask-exporter's HTTP metrics under the
gateway's prefix), and cross-checked with the names written in those files.
"""
from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "taskqueue.json"
METRIC_MODULES = sorted(REPO.glob("services/*/*/metrics.py"))
NAME = re.compile(r"\btaskqueue_[a-z0-9_]+\b")
WRITTEN = re.compile(r"""\b(?:Counter|Gauge|Histogram|Summary|Info|Enum)\(\s*["'](taskqueue_[a-z0-9_]+)["']""")
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count"),
            "summary": ("_sum", "_count", ""), "info": ("_info",)}


def panels(items: list[dict]):
    for item in items:
        yield item
        yield from panels(item.get("panels", []))


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


@pytest.fixture(scope="module")
def defined() -> dict[str, set[str]]:
    """{metric family: the series names PromQL can use for it}, for every taskqueue_ metric."""
    from flask import Flask
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_flask_exporter import PrometheusMetrics

    for path in METRIC_MODULES:
        importlib.import_module(f"{path.parent.name}.metrics")
    from gateway.metrics import HTTP_PREFIX

    exporter = CollectorRegistry()
    PrometheusMetrics(Flask("dashboard-test"), defaults_prefix=HTTP_PREFIX, registry=exporter)
    families = {}
    for registry in (REGISTRY, exporter):
        for family in registry.collect():
            if family.name.startswith("taskqueue_") and not family.name.endswith("_info") and family.type != "info":
                families[family.name] = {family.name + suffix for suffix in SUFFIXES[family.type]}
    return families


def test_dashboard_is_a_grafana_dashboard(dashboard):
    assert dashboard["title"] and dashboard["uid"] == "taskqueue" and dashboard["schemaVersion"] >= 36
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]
    ids = [p["id"] for p in panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(dashboard["panels"]):
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["refId"], panel["title"]
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


def test_every_queried_metric_exists(dashboard, defined):
    series = set().union(*defined.values())
    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            unknown = set(NAME.findall(target["expr"])) - series
            assert not unknown, f"panel {panel['title']!r} queries undefined metrics {sorted(unknown)}"


def test_every_defined_metric_is_on_a_panel(dashboard, defined):
    queried = {name for p in panels(dashboard["panels"]) for t in p.get("targets", []) for name in NAME.findall(t["expr"])}
    missing = sorted(family for family, names in defined.items() if not names & queried)
    assert not missing, f"metrics on no panel of {DASHBOARD.name}: {missing}"


def test_the_registry_saw_every_metric_written_in_the_metrics_modules(defined):
    """Guards the registry-based list above against a module it failed to import or read."""
    assert {p.parent.name for p in METRIC_MODULES} >= {"gateway", "worker", "scheduler", "dispatcher", "notifier"}
    series = set().union(*defined.values())
    for path in METRIC_MODULES:
        for name in WRITTEN.findall(path.read_text()):
            assert name in series or name in defined, f"{path.relative_to(REPO)}: {name} not registered"


def test_metric_names_follow_prometheus_conventions(defined):
    for family, names in defined.items():
        service = family.split("_")[1]
        assert service in {"gateway", "worker", "scheduler", "dispatcher", "notifier"}, family
        assert not family.endswith("_total") or family + "_total" in names, family
        if any(name.endswith("_bucket") for name in names):
            assert family.endswith("_seconds"), f"{family}: histograms here measure time, in seconds"
