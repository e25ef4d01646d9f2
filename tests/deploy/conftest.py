"""tests/deploy: attach the service logs to a failing graceful-shutdown test's report."""
from __future__ import annotations

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    system = getattr(item, "funcargs", {}).get("system")
    if report.failed and system is not None and hasattr(system, "tails"):
        report.sections.append(("service logs (tails)", system.tails()))
