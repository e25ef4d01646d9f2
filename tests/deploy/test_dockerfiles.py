"""deploy/docker/<service>.Dockerfile: one image per service, checked without a Docker engine.

Parsed with BuildKit's own parser (the `dockerfile` package) and linted with hadolint. Checked:
pinned base, multi-stage, only shared/ + that service copied, pinned installs, non-root USER,
a HEALTHCHECK on the service's health port using the standard library, the service's entry
point, a `migrate` target and a `dev` target (Tilt), no secrets in ENV/ARG, and a build context
(.dockerignore) that lets exactly those files through.
"""
from __future__ import annotations

import fnmatch
import re
import tomllib

import pytest

from .deploy_helpers import (
    DOCKER_DIR,
    PYTHON_BASE_IMAGE,
    REPO,
    SITE_PACKAGES,
    dockerfile_path,
    dockerfile_stages,
    effective,
    exec_form,
    final_stage,
    run,
    service_names,
    settings_defaults,
    tool,
)

SERVICES = service_names()
# The port whose /healthz the image's HEALTHCHECK must probe: (env var that may override it, default).
HEALTH_PORT = {
    "gateway": ("GATEWAY_BIND", "8000"),
    "worker": ("WORKER_METRICS_PORT", settings_defaults()["WORKER_METRICS_PORT"]),
    "scheduler": ("SCHEDULER_METRICS_PORT", settings_defaults()["SCHEDULER_METRICS_PORT"]),
    "dispatcher": ("DISPATCHER_METRICS_PORT", settings_defaults()["DISPATCHER_METRICS_PORT"]),
    "notifier": ("NOTIFIER_METRICS_PORT", settings_defaults()["NOTIFIER_METRICS_PORT"]),
}
SECRET_WORDS = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|PRIVATE", re.I)


def test_one_dockerfile_per_service_and_nothing_else():
    assert SERVICES, "no services/*/pyproject.toml found"
    found = sorted(p.name.removesuffix(".Dockerfile") for p in DOCKER_DIR.glob("*.Dockerfile"))
    assert found == SERVICES, f"deploy/docker/*.Dockerfile {found} != services/ folders {SERVICES}"
    assert set(HEALTH_PORT) >= set(SERVICES), "a new service needs its health port in HEALTH_PORT"


def test_hadolint_passes():
    files = [str(dockerfile_path(s)) for s in SERVICES]
    proc = run([tool("hadolint"), "--no-color", "--failure-threshold", "info", *files])
    assert proc.returncode == 0, f"hadolint:\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("service", SERVICES)
class TestDockerfile:
    def test_pinned_base_and_multi_stage(self, service):
        path = dockerfile_path(service)
        stages = dockerfile_stages(path)
        assert len(stages) >= 3, f"{path.name}: expected build/runtime stages, got {list(stages)}"
        for name, instructions in stages.items():
            image = instructions[0].value[0]
            if image in stages:
                continue  # FROM an earlier stage
            assert re.fullmatch(re.escape(PYTHON_BASE_IMAGE) + r"(@sha256:[0-9a-f]{64})?", image), (
                f"{path.name} stage {name}: base {image!r} is not the pinned {PYTHON_BASE_IMAGE}[@sha256:...]")
        assert final_stage(path) == service, f"{path.name}: the default (last) stage should be named {service!r}"

    def test_copies_only_shared_and_its_own_service(self, service):
        path = dockerfile_path(service)
        sources = set()
        for instructions in dockerfile_stages(path).values():
            for cmd in instructions:
                if cmd.cmd.upper() in ("COPY", "ADD"):
                    assert cmd.cmd.upper() == "COPY", f"{path.name}: use COPY, not {cmd.original!r}"
                    if any(f.startswith("--from=") for f in cmd.flags):
                        continue
                    sources.update(v.rstrip("/") for v in cmd.value[:-1])
        allowed = {"shared", f"services/{service}", "deploy/local/constraints.txt"}
        extra = {s for s in sources if not any(s == a or s.startswith(a + "/") for a in allowed)}
        assert not extra, f"{path.name} copies {sorted(extra)}: an image holds only shared/ and services/{service}"
        assert {"shared", f"services/{service}", "deploy/local/constraints.txt"} <= sources
        for src in sources:
            assert (REPO / src).exists(), f"{path.name}: COPY source {src} does not exist"

    def test_installs_pinned_dependencies(self, service):
        path = dockerfile_path(service)
        installs = [c for st in dockerfile_stages(path).values() for c in st
                    if c.cmd.upper() == "RUN" and "pip install" in c.value[0]]
        assert installs, f"{path.name}: no pip install"
        for cmd in installs:
            line = cmd.value[0]
            assert re.search(r"(-c|--constraint)\s+\S*constraints\.txt", line), (
                f"{path.name}: pip install without -c constraints.txt: {line}")
            other = [s for s in SERVICES if s != service and f"services/{s}" in line]
            assert not other, f"{path.name} installs other services {other}"

    def test_runs_as_non_root(self, service):
        path = dockerfile_path(service)
        for target in (service, "migrate", "dev"):
            user = effective(path, target, "USER")
            assert user is not None, f"{path.name} [{target}]: no USER (would run as root)"
            uid = user.value[0].split(":")[0]
            assert uid.isdigit() and int(uid) != 0, (
                f"{path.name} [{target}]: USER {user.value[0]!r} must be a numeric non-root uid "
                "(Kubernetes runAsNonRoot can only verify numeric ids)")

    def test_healthcheck_uses_stdlib_on_the_health_port(self, service):
        path = dockerfile_path(service)
        check = effective(path, service, "HEALTHCHECK")
        assert check is not None and check.value[0].upper() == "CMD", f"{path.name}: no HEALTHCHECK CMD"
        argv = exec_form(check)[1:]
        assert argv[:2] == ["python", "-c"], f"{path.name}: HEALTHCHECK should run python -c (no curl in slim images)"
        code = argv[2]
        env_name, port = HEALTH_PORT[service]
        assert "urllib.request" in code and "/healthz" in code, code
        assert env_name in code and port in code, f"{path.name}: HEALTHCHECK should probe {env_name} (default {port})"
        compile(code, "HEALTHCHECK", "exec")  # valid Python
        assert any(f.startswith("--interval=") for f in check.flags)
        assert any(f.startswith("--timeout=") for f in check.flags)

    def test_entrypoint_is_the_service(self, service):
        path = dockerfile_path(service)
        argv = exec_form(effective(path, service, "ENTRYPOINT"))
        assert argv == ["python", "-m", service], argv
        main = REPO / "services" / service / service / "__main__.py"
        if service == "gateway":  # the launcher of the HTTP server (Granian): it must exist, no skip
            assert main.exists(), f"{path.name}: python -m gateway needs services/gateway/gateway/__main__.py"
            # ...and the server it runs is installed in the image, at the pinned version
            project = tomllib.loads((REPO / "services" / "gateway" / "pyproject.toml").read_text())["project"]
            assert any(re.match(r"granian\b", d, re.I) for d in project["dependencies"]), project["dependencies"]
            pins = (REPO / "deploy" / "local" / "constraints.txt").read_text()
            assert re.search(r"^granian==\S+", pins, re.M | re.I), "constraints.txt must pin granian"
        elif not main.exists():
            pytest.skip(f"services/{service}/{service}/__main__.py is not written yet (python -m {service})")

    def test_migrate_target(self, service):
        path = dockerfile_path(service)
        assert "migrate" in dockerfile_stages(path), f"{path.name}: no `migrate` target"
        assert exec_form(effective(path, "migrate", "ENTRYPOINT")) == ["python", "-m", "shared.migrate"]
        assert (REPO / "shared" / "migrate.py").exists()

    def test_dev_target_lets_tilt_sync_the_sources(self, service):
        path = dockerfile_path(service)
        assert "dev" in dockerfile_stages(path), f"{path.name}: no `dev` target (deploy/Tiltfile builds it)"
        chowns = " ".join(c.value[0] for c in dockerfile_stages(path)["dev"] if c.cmd.upper() == "RUN")
        for target in (f"{SITE_PACKAGES}/{service}", f"{SITE_PACKAGES}/shared", "/app"):
            assert target in chowns, f"{path.name} [dev]: {target} must belong to the app user for live_update"
        venv_python = [c for st in dockerfile_stages(path).values() for c in st
                       if c.cmd.upper() == "RUN" and "python -m venv /opt/venv" in c.value[0]]
        assert venv_python, f"{path.name}: the venv must live in /opt/venv ({SITE_PACKAGES} is synced by Tilt)"

    def test_no_secrets_baked_in(self, service):
        path = dockerfile_path(service)
        for instructions in dockerfile_stages(path).values():
            for cmd in instructions:
                if cmd.cmd.upper() not in ("ENV", "ARG", "LABEL"):
                    continue
                words = list(cmd.value)
                names = words[0::2] if cmd.cmd.upper() != "ARG" else [w.split("=")[0] for w in words]
                for name in names:
                    assert not SECRET_WORDS.search(name), f"{path.name}: {cmd.original!r} bakes a secret into the image"
                assert not re.search(r"(postgres(ql)?|redis)://[^/\s]*:[^@/\s]+@", cmd.original), cmd.original


# --------------------------------------------------------------------------- build context


def dockerignore_rules() -> list[tuple[bool, str]]:
    rules = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        rules.append((negate, line[1:] if negate else line))
    return rules


def excluded(path: str, rules) -> bool:
    """Docker's rule: the last matching pattern wins (a pattern also matches everything below it)."""
    result = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for negate, pattern in rules:
        pattern = pattern.rstrip("/")
        regex = fnmatch.translate(pattern.replace("**/", "\0")).replace("\0", "(.*/)?")
        if any(re.fullmatch(regex, p) for p in prefixes):
            result = not negate
    return result


def test_dockerignore_sends_only_what_the_images_need():
    rules = dockerignore_rules()
    for path in ("shared/settings.py", "shared/migrations/script.py.mako", "deploy/local/constraints.txt",
                 *(f"services/{s}/pyproject.toml" for s in SERVICES),
                 *(f"services/{s}/{s}/__main__.py" for s in SERVICES)):
        assert not excluded(path, rules), f".dockerignore excludes {path}, which an image needs"
    for path in (".env", ".git/config", ".venv/bin/python", ".local/pg/postgresql.conf", "tests/conftest.py",
                 "deploy/k8s/base/kustomization.yaml", "docker-compose.yml", "shared/__pycache__/x.pyc",
                 "services/gateway/taskqueue_gateway.egg-info/PKG-INFO", "services/worker/.env"):
        assert excluded(path, rules), f".dockerignore lets {path} into the build context"
