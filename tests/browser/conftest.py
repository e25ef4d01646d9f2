"""Browser tests of the admin dashboard: a real gateway (python -m gateway), a real headless browser.

The package runs against its own database (`taskqueue_browser_test`, recreated and migrated at
start) and Redis db 8, so nothing else in the suite sees its data. The browser is Debian's
`chromium` at /usr/bin/chromium (installed by `make test` through the bootstrap when running as
root), driven by the Python `playwright` package as a driver only: no browser is downloaded.
Without that binary every test here is skipped, with the reason.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from e2e.e2e_helpers import System, running

DATABASE_NAME = "taskqueue_browser_test"
REDIS_DB = 8
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="package")
def store(own_store):
    return own_store(DATABASE_NAME, REDIS_DB, "browser-tests")


@pytest.fixture(scope="package")
def gateway(store, tmp_path_factory):
    """The gateway (python -m gateway) on a free port; yields its base URL."""
    system = System(tmp_path_factory.mktemp("browser-logs"), store.process_env())
    with running(system, system.start_gateway):
        yield system.base_url


@pytest.fixture(scope="package")
def chromium():
    """A headless Debian chromium driven by playwright (the Python package only drives it)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `make test` installs Debian's chromium with apt-get when run as root "
                    "(apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium, tmp_path, request):
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(15_000)
    pg = context.new_page()
    yield pg
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        shot = tmp_path / "failure.png"
        pg.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failing page: {shot}")
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
