"""Browser tests of the admin dashboard: a real gateway under gunicorn, a real headless browser.

The package runs against its own database (`taskqueue_browser_test`, recreated and migrated at
start) and Redis db 8, so nothing else in the suite sees its data. The browser is Debian's
`chromium` at /usr/bin/chromium (installed by `make test` through the bootstrap when running as
root), driven by the Python `playwright` package as a driver only: no browser is downloaded.
Without that binary every test here is skipped, with the reason.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

DATABASE_NAME = "taskqueue_browser_test"
REDIS_DB = "8"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO = Path(__file__).resolve().parents[2]
GUNICORN_CONF = REPO / "services" / "gateway" / "gunicorn.conf.py"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="package")
def br_settings(settings):
    """The session settings pointed at this package's database and Redis db."""
    from sqlalchemy.engine import make_url

    from shared.db import sqlalchemy_url

    database_url = make_url(sqlalchemy_url(settings.database_url)).set(database=DATABASE_NAME)
    parts = urlsplit(settings.redis_url)
    return dataclasses.replace(
        settings,
        database_url=database_url.render_as_string(hide_password=False),
        redis_url=urlunsplit(parts._replace(path=f"/{REDIS_DB}")),
    )


@pytest.fixture(scope="package")
def br_engine(br_settings, recreate_database):
    from shared.db import make_engine
    from shared.migrate import upgrade

    recreate_database(br_settings.database_url)
    upgrade(br_settings.database_url)  # creates it again, then migrates from scratch
    engine = make_engine(br_settings.database_url, pool_size=2, application_name="browser-tests")
    yield engine
    engine.dispose()


@pytest.fixture(scope="package")
def br_redis(br_settings):
    import redis

    client = redis.Redis.from_url(br_settings.redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="package")
def gateway(br_settings, br_engine, br_redis, tmp_path_factory):
    """The gateway under gunicorn (one worker) on a free port; yields its base URL."""
    port = free_port()
    run_dir = tmp_path_factory.mktemp("browser-gateway")
    (run_dir / "metrics").mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": br_settings.database_url,
        "REDIS_URL": br_settings.redis_url,
        "GATEWAY_BIND": f"127.0.0.1:{port}",
        "GATEWAY_WORKERS": "1",
        "GATEWAY_THREADS": "4",
        "PROMETHEUS_MULTIPROC_DIR": str(run_dir / "metrics"),
        "XDG_RUNTIME_DIR": str(run_dir),  # no gunicorn state shared with another gateway of this user
        "PYTHONUNBUFFERED": "1",
    }
    log_path = run_dir / "gateway.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "gateway.app:create_app()"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        while True:
            try:
                with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gateway did not become ready:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        yield base_url
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


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
