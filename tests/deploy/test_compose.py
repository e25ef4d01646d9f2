"""docker-compose.yml: valid against the compose spec and shaped like the README's "Docker" section.

Validated with check-jsonschema's bundled compose-spec schema (no Docker needed), then checked:
every service has a health check; builds point at existing contexts, Dockerfiles and targets;
the app services cover the services/ folders (the worker twice: critical,high and default,low);
start order through depends_on conditions; scalable workers; variables documented in .env.example.
"""
from __future__ import annotations

import re

import pytest

from .deploy_helpers import (
    COMPOSE_FILE,
    REPO,
    dockerfile_path,
    dockerfile_stages,
    load_yaml,
    queues,
    run,
    service_names,
    settings_defaults,
    tool,
)

WORKER_SERVICES = {"worker-fast": "critical,high", "worker-bulk": "default,low"}
PUBLISHED = {"gateway": 8000, "notifier": 8001, "postgres": 5432, "redis": 6379}


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(COMPOSE_FILE)


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def dockerfile_of(svc: dict) -> str:
    build = svc["build"]
    return build["dockerfile"] if isinstance(build, dict) else "Dockerfile"


def app_services(services) -> dict:
    """Long-running services built from this repository (not the one-shot migrate)."""
    return {name: s for name, s in services.items() if "build" in s and name != "migrate"}


def test_valid_against_the_compose_spec():
    proc = run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)])
    assert proc.returncode == 0, f"check-jsonschema (compose-spec):\n{proc.stdout}{proc.stderr}"


def test_every_service_has_a_healthcheck(services):
    for name, svc in services.items():
        check = svc.get("healthcheck")
        assert check and not check.get("disable"), f"compose service {name} has no healthcheck"
        test = check["test"]
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, (name, test)


def test_app_healthchecks_probe_the_service_port(services):
    defaults = settings_defaults()
    ports = {"gateway": "8000", "worker": defaults["WORKER_METRICS_PORT"], "scheduler": defaults["SCHEDULER_METRICS_PORT"],
             "dispatcher": defaults["DISPATCHER_METRICS_PORT"], "notifier": defaults["NOTIFIER_METRICS_PORT"]}
    for name, svc in app_services(services).items():
        image = dockerfile_of(svc).rsplit("/", 1)[-1].removesuffix(".Dockerfile")
        code = " ".join(svc["healthcheck"]["test"])
        assert f"127.0.0.1:{ports[image]}/" in code and ("/healthz" in code or "/readyz" in code), (name, code)
        assert code.split()[1:3] == ["python", "-c"], f"{name}: probe with the image's python (stdlib urllib)"


def test_builds_exist(services):
    built = {name: s for name, s in services.items() if "build" in s}
    assert built, "no service is built from this repository"
    for name, svc in built.items():
        build = svc["build"]
        assert isinstance(build, dict), f"{name}: use the long build syntax (context + dockerfile)"
        context = REPO / build.get("context", ".")
        assert context.is_dir(), f"{name}: build context {context} does not exist"
        dockerfile = context / dockerfile_of(svc)
        assert dockerfile.is_file(), f"{name}: Dockerfile {dockerfile} does not exist"
        if "target" in build:
            assert build["target"] in dockerfile_stages(dockerfile), f"{name}: no stage {build['target']!r} in {dockerfile}"
        assert svc.get("image", "").startswith("taskqueue/"), f"{name}: tag the image taskqueue/<name>:${{TAG}}"


def test_app_services_match_the_services_folders(services):
    apps = app_services(services)
    images = {dockerfile_of(s).rsplit("/", 1)[-1].removesuffix(".Dockerfile") for s in apps.values()}
    assert images == set(service_names()), f"compose runs images {sorted(images)}; services/ has {service_names()}"
    for name, svc in apps.items():
        image = dockerfile_of(svc).rsplit("/", 1)[-1].removesuffix(".Dockerfile")
        assert dockerfile_path(image) == REPO / dockerfile_of(svc)
        expected = {image} if image != "worker" else set(WORKER_SERVICES)
        assert name in expected, f"compose service {name} runs the {image} image"


def test_workers_split_by_priority_and_scalable(services):
    served = []
    for name, spec in WORKER_SERVICES.items():
        svc = services[name]
        assert svc["command"] == ["--queues", spec], f"{name}: expected --queues {spec}"
        served += spec.split(",")
        assert "container_name" not in svc, f"{name}: container_name prevents --scale"
        assert "ports" not in svc, f"{name}: fixed host ports prevent --scale"
    assert sorted(served) == sorted(queues()), f"workers serve {served}, queues are {queues()}"


def test_no_container_names_and_only_entry_points_published(services):
    for name, svc in services.items():
        assert "container_name" not in svc, f"{name}: container_name prevents --scale"
        if "ports" in svc:
            assert name in PUBLISHED, f"{name} publishes ports; only {sorted(PUBLISHED)} should"
            assert any(str(p).endswith(f":{PUBLISHED[name]}") for p in svc["ports"]), (name, svc["ports"])
    for name in ("postgres", "redis"):
        for port in services[name].get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} must only be published on loopback: {port}"


def test_backing_services(compose, services):
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    for name in ("postgres", "redis"):
        volumes = services[name].get("volumes", [])
        assert volumes, f"{name} has no volume: its data would not survive `docker compose down`"
        named = volumes[0].split(":")[0]
        assert named in compose.get("volumes", {}), f"{name}: volume {named} is not declared"


def test_start_order(services):
    migrate = services["migrate"]
    assert migrate["build"]["target"] == "migrate"
    assert migrate.get("restart") == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in app_services(services):
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
        assert deps["migrate"]["condition"] == "service_completed_successfully", name


def test_configuration_comes_from_dot_env(services):
    for name in [*app_services(services), "migrate"]:
        env_files = services[name].get("env_file", [])
        paths = [e if isinstance(e, str) else e["path"] for e in env_files]
        assert ".env" in paths, f"{name}: no env_file .env"
        env = services[name]["environment"]
        assert "@postgres:5432/" in env["DATABASE_URL"] and env["REDIS_URL"].startswith("redis://redis:6379/"), name
    example = (REPO / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", example, re.M))
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)(?::?[-?][^}]*)?\}", COMPOSE_FILE.read_text()))
    assert used <= documented, f"variables used in docker-compose.yml but not in .env.example: {sorted(used - documented)}"
    known = set(settings_defaults()) | {"JWT_SECRET_KEY", "MAX_BODY_BYTES", "GATEWAY_WORKERS", "GATEWAY_THREADS"}
    app_vars = documented - used
    assert app_vars <= known, f".env.example sets variables no service reads: {sorted(app_vars - known)}"
    assert re.search(r"^JWT_SECRET_KEY=\s*$", example, re.M), ".env.example must not hold a real JWT key"
    assert ".env" in (REPO / ".gitignore").read_text().split(), ".env must be git-ignored"


def test_stop_grace_covers_each_shutdown(services):
    def seconds(value: str) -> float:
        m = re.fullmatch(r"(\d+)s", str(value))
        assert m, value
        return float(m.group(1))

    defaults = settings_defaults()
    worker_need = float(defaults["WORKER_SHUTDOWN_GRACE"]) + 30  # grace, then Dramatiq's stop timeout margin
    for name in WORKER_SERVICES:
        assert seconds(services[name]["stop_grace_period"]) >= worker_need, name
    from .deploy_helpers import gateway_graceful_timeout

    assert seconds(services["gateway"]["stop_grace_period"]) > gateway_graceful_timeout()
    send = float(defaults["WEBHOOK_CONNECT_TIMEOUT"]) + float(defaults["WEBHOOK_READ_TIMEOUT"])
    assert seconds(services["dispatcher"]["stop_grace_period"]) > send
