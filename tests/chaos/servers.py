"""The chaos run's own Postgres and Redis, so it may wipe and restart them freely.

Never the shared servers on 5432/6379: other people use those. Binaries and the Postgres
start-up recipe come from deploy/local/bootstrap.py (standard library only, imported by
path); data lives in a temp directory removed by `stop()`.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from support.stack import LOCALHOST, REPO, free_port

PG_USER = "postgres"
DB_NAME = "taskqueue_chaos"


def load_bootstrap():
    """deploy/local/bootstrap.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("tq_bootstrap", REPO / "deploy" / "local" / "bootstrap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bootstrap = load_bootstrap()


def wait_for(probe, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:g}s")
        time.sleep(0.2)


class PrivatePostgres:
    """An initdb'd cluster on a free port, run by the `postgres` OS user when we are root."""

    def __init__(self, root: Path):
        self.port = free_port()
        self.dir = root / "postgres"
        self.data, self.log = self.dir / "data", self.dir / "server.log"
        self.bindir = bootstrap.system_postgres_bin() or bootstrap.find_postgres_bin()
        self.url = f"postgresql://{PG_USER}@{LOCALHOST}:{self.port}/{DB_NAME}"

    def init(self) -> "PrivatePostgres":
        self.dir.mkdir(parents=True)
        if bootstrap.IS_ROOT:
            bootstrap.ensure_pg_os_user()
            shutil.chown(self.dir, PG_USER, PG_USER)
        self.dir.chmod(0o700)
        bootstrap.init_postgres(self.bindir, self.data, LOCALHOST, self.port, PG_USER)
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("max_connections = 300\n")  # 2 gateways x pool + workers + replicas + checks
        return self

    def ready(self) -> bool:
        return bootstrap.postgres_ready(LOCALHOST, self.port, PG_USER)

    def start(self) -> None:
        self._pg_ctl("-l", self.log, "-w", "-t", "60", "start")
        wait_for(self.ready, f"postgres :{self.port}")

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("-m", mode, "-w", "-t", "60", "stop", check=False)

    def _pg_ctl(self, *args, check: bool = True) -> None:
        bootstrap.as_pg_user([self.bindir / "pg_ctl", "-D", self.data, *args], check=check, start_new_session=True)


class PrivateRedis:
    """A redis-server child process without persistence: a restart is a full data wipe."""

    def __init__(self, root: Path):
        self.port = free_port()
        self.dir = root / "redis"
        self.server = bootstrap.system_redis_server() or bootstrap.find_redis_server()
        self.url = f"redis://{LOCALHOST}:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def ready(self) -> bool:
        return bootstrap.redis_ready(LOCALHOST, self.port)

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        log = open(self.dir / "redis.log", "ab")
        argv = [str(self.server), "--port", str(self.port), "--bind", LOCALHOST, "--save", "", "--appendonly", "no",
                "--dir", str(self.dir), "--maxclients", "2000"]
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        wait_for(self.ready, f"redis :{self.port}")

    def kill(self) -> None:
        """kill -9: every key is gone (no RDB, no AOF)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Servers:
    """Both private servers under one temp directory; `stop()` removes it (idempotent)."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="taskqueue-chaos-data-"))
        self.root.chmod(0o755)  # the postgres OS user must reach its data directory
        self.postgres = PrivatePostgres(self.root)
        self.redis = PrivateRedis(self.root)

    def start(self) -> "Servers":
        self.redis.start()
        self.postgres.init().start()
        return self

    def stop(self) -> None:
        try:
            self.redis.kill()
            self.postgres.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
