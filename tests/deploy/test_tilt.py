"""deploy/Tiltfile + tilt.yaml, checked without Tilt or a cluster.

The Tiltfile is Starlark: it runs here in starlark-go (the interpreter Tilt embeds) with Tilt's
built-ins replaced by recording stand-ins that keep Tilt's signatures. `kustomize()` returns the
real `kubectl kustomize` output of the path the Tiltfile names, and `read_yaml()` the real
tilt.yaml. The recorded calls must then be what Tilt would accept and what the brief asks for:
five images with live_update from existing files to the images' site-packages, the dev overlay
applied (trimmed and sized by tilt.yaml), gateway 8000 and notifier 8001 forwarded.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from .deploy_helpers import (
    DEPLOY,
    REPO,
    SITE_PACKAGES,
    TILT_SETTINGS,
    TILTFILE,
    dockerfile_path,
    dockerfile_stages,
    effective,
    exec_form,
    load_yaml,
    main_container,
    objects,
    render,
    run,
    service_names,
    tool,
)

starlark_go = pytest.importorskip("starlark_go", reason="starlark-go is in deploy/local/requirements-test.txt")

# Stand-ins for the Tilt built-ins the Tiltfile may call, with Tilt's parameter names.
PRELUDE = '''
CALLS = []

def _record(fn, **kw):
    CALLS.append(dict(fn = fn, **kw))

def _copy(value):
    if type(value) == "dict":
        return {k: _copy(v) for k, v in value.items()}
    if type(value) == "list":
        return [_copy(v) for v in value]
    return value

def read_yaml(path, default = None):
    _record("read_yaml", path = path)
    if path not in __FILES:
        if default != None:
            return default
        fail("read_yaml: no such file " + path)
    return _copy(__FILES[path])

def kustomize(pathToDir, kustomize_bin = None, flags = []):
    _record("kustomize", path = pathToDir)
    return "__kustomize__:" + pathToDir

def decode_yaml_stream(yaml):
    if not yaml.startswith("__kustomize__:"):
        fail("decode_yaml_stream: unexpected input")
    return _copy(__RENDERED[yaml[len("__kustomize__:"):]])

def encode_yaml_stream(objs):
    return {"__objects__": objs}

def k8s_yaml(yaml, allow_duplicates = False):
    _record("k8s_yaml", yaml = yaml)

def k8s_resource(workload = "", new_name = "", port_forwards = [], extra_pod_selectors = [], trigger_mode = 0,
                 resource_deps = [], objects = [], auto_init = True, pod_readiness = "", links = [], labels = [],
                 discovery_strategy = ""):
    _record("k8s_resource", workload = workload, port_forwards = port_forwards, resource_deps = resource_deps,
            labels = labels)

def sync(local_path, remote_path):
    return {"step": "sync", "local": local_path, "remote": remote_path}

def run(cmd, trigger = []):
    return {"step": "run", "cmd": cmd}

def fall_back_on(files):
    return {"step": "fall_back_on", "files": files if type(files) == "list" else [files]}

def docker_build(ref, context, build_args = {}, dockerfile = "Dockerfile", dockerfile_contents = "",
                 live_update = [], match_in_env_vars = False, ignore = [], only = [], entrypoint = [], target = "",
                 ssh = "", network = "", secret = "", extra_tag = "", container_args = None, cache_from = [],
                 pull = False, platform = "", extra_hosts = []):
    _record("docker_build", ref = ref, context = context, dockerfile = dockerfile, live_update = live_update,
            only = only, entrypoint = entrypoint, target = target)

# ext://restart_process
def docker_build_with_restart(ref, context, entrypoint, live_update, base_suffix = "-tilt_docker_build_with_restart_base",
                              restart_file = "/tmp/.restart-proc", trigger = [], exit_policy = "restart", **kwargs):
    _record("docker_build_with_restart", ref = ref, context = context, entrypoint = entrypoint,
            live_update = live_update, restart_file = restart_file, dockerfile = kwargs.get("dockerfile", "Dockerfile"),
            target = kwargs.get("target", ""), only = kwargs.get("only", []))

def allow_k8s_contexts(contexts):
    _record("allow_k8s_contexts", contexts = contexts)

def update_settings(max_parallel_updates = 3, k8s_upsert_timeout_secs = 30, suppress_unused_image_warnings = None):
    _record("update_settings", k8s_upsert_timeout_secs = k8s_upsert_timeout_secs)
'''
PRELUDE_LINES = PRELUDE.count("\n")
KNOWN_EXTENSIONS = {"ext://restart_process": {"docker_build_with_restart"}}


def tilt_path(path: str) -> Path:
    """Tilt resolves relative paths against the Tiltfile's directory."""
    return (TILTFILE.parent / path).resolve()


def execute_tiltfile(settings: dict | None = None) -> list[dict]:
    """Run deploy/Tiltfile; returns the recorded built-in calls."""
    starlark_go.configure_starlark(allow_global_reassign=True, allow_recursion=True, allow_set=True)
    source = TILTFILE.read_text()
    # load() of Tilt extensions: the stand-ins above define what they export.
    for match in re.finditer(r"^load\(\s*'([^']+)'\s*,\s*(.*)\)\s*$", source, re.M):
        names = set(re.findall(r"'([^']+)'", match.group(2)))
        assert match.group(1) in KNOWN_EXTENSIONS and names <= KNOWN_EXTENSIONS[match.group(1)], match.group(0)
    source = re.sub(r"^load\(.*\)\s*$", "", source, flags=re.M)
    tilt_yaml = "../tilt.yaml"
    files = {tilt_yaml: settings if settings is not None else load_yaml(TILT_SETTINGS)}
    rendered = {}
    for path in re.findall(r"kustomize\(\s*'([^']+)'", source):
        directory = tilt_path(path)
        assert directory.is_dir(), f"Tiltfile kustomize({path!r}): {directory} does not exist"
        name = directory.name if directory.parent.name == "overlays" else None
        assert name == "dev", f"the Tiltfile should apply the dev overlay, not {directory}"
        rendered[path] = render("dev")
    interpreter = starlark_go.Starlark(globals={"__FILES": files, "__RENDERED": rendered})
    # One module: Starlark freezes a module's globals once it has run (CALLS must stay appendable).
    # Error line numbers are the Tiltfile's plus PRELUDE_LINES.
    interpreter.exec(PRELUDE + source, filename=f"{TILTFILE} (+{PRELUDE_LINES} prelude lines)")
    return interpreter.get("CALLS")


def calls(recorded, fn):
    return [c for c in recorded if c["fn"] == fn]


def applied_objects(recorded) -> list[dict]:
    (k8s_yaml,) = calls(recorded, "k8s_yaml")
    return k8s_yaml["yaml"]["__objects__"]


def builds(recorded) -> dict[str, dict]:
    return {c["ref"]: c for c in calls(recorded, "docker_build") + calls(recorded, "docker_build_with_restart")}


@pytest.fixture(scope="module")
def settings() -> dict:
    return load_yaml(TILT_SETTINGS)


@pytest.fixture(scope="module")
def recorded(settings):
    return execute_tiltfile(copy.deepcopy(settings))


def test_reads_tilt_yaml(recorded):
    reads = [c["path"] for c in calls(recorded, "read_yaml")]
    assert reads and all(tilt_path(p) == TILT_SETTINGS for p in reads), reads


def test_tilt_yaml_describes_the_dev_overlay(settings):
    deployments = objects(render("dev"), "Deployment")
    assert set(settings["services"]) == set(deployments), "tilt.yaml services = the dev overlay's Deployments"
    for name, svc in settings["services"].items():
        container = main_container(deployments[name])
        assert container["image"].split(":")[0] == f"taskqueue/{svc['image']}", name
        ports = {p["containerPort"] for p in container["ports"]}
        assert svc["metrics_port"] in ports, f"{name}: metrics_port {svc['metrics_port']} not in {ports}"
        for forward in svc.get("port_forwards", []):
            assert int(str(forward).split(":")[-1]) in ports, f"{name}: forwards to a port the pod does not open"
        assert isinstance(svc["replicas"], int) and svc["replicas"] >= 0
    statefulsets = objects(render("dev"), "StatefulSet")
    assert set(settings.get("dependencies", {})) <= set(statefulsets)


def test_builds_the_five_images(recorded):
    built = builds(recorded)
    assert set(built) == {f"taskqueue/{s}" for s in service_names()}
    for ref, build in built.items():
        service = ref.split("/")[1]
        assert tilt_path(build["context"]) == REPO, f"{ref}: build context must be the repository root"
        dockerfile = tilt_path(build["dockerfile"])
        assert dockerfile == dockerfile_path(service), f"{ref}: {dockerfile}"
        assert build["target"] == "dev" and "dev" in dockerfile_stages(dockerfile)
        image_entrypoint = exec_form(effective(dockerfile, service, "ENTRYPOINT"))
        assert build["entrypoint"] == image_entrypoint, f"{ref}: restart wrapper must run the image's ENTRYPOINT"
        for path in build["only"]:
            assert (REPO / path).exists(), f"{ref}: only={path} does not exist"


def test_live_update_syncs_python_sources(recorded):
    for ref, build in builds(recorded).items():
        service = ref.split("/")[1]
        steps = build["live_update"]
        assert steps and steps[0]["step"] == "fall_back_on", f"{ref}: fall_back_on must come first"
        for f in steps[0]["files"]:
            assert tilt_path(f).exists(), f"{ref}: fall_back_on {f} does not exist"
        syncs = {tilt_path(s["local"]): s["remote"] for s in steps if s["step"] == "sync"}
        assert syncs.get(REPO / "shared") == f"{SITE_PACKAGES}/shared", f"{ref}: shared/ sync"
        assert syncs.get(REPO / "services" / service / service) == f"{SITE_PACKAGES}/{service}", f"{ref}: sources sync"
        for local in syncs:
            assert local.exists(), f"{ref}: sync from missing {local}"
        if "restart_file" in build:
            assert not build["restart_file"].startswith("/tmp/"), "/tmp is an emptyDir in the pods: it hides the file"


def test_applies_the_dev_overlay_sized_by_tilt_yaml(recorded, settings, tmp_path):
    objs = applied_objects(recorded)
    dev = render("dev")
    autoscalers = {"HorizontalPodAutoscaler", "ScaledObject", "TriggerAuthentication"}
    expected = {(o["kind"], o["metadata"]["name"]) for o in dev
                if settings.get("autoscaling") or o["kind"] not in autoscalers}
    assert {(o["kind"], o["metadata"]["name"]) for o in objs} == expected
    deployments = objects(objs, "Deployment")
    assert set(deployments) == {n for n, s in settings["services"].items() if s.get("enabled", True)}
    for name, dep in deployments.items():
        assert dep["spec"]["replicas"] == settings["services"][name]["replicas"], name
        # live_update writes into site-packages; everything else about the pod stays locked down
        sc = main_container(dep)["securityContext"]
        assert sc["readOnlyRootFilesystem"] is False and sc["allowPrivilegeEscalation"] is False
    images_used = {c["image"].split(":")[0] for o in objs if o["kind"] in ("Deployment", "Job", "StatefulSet")
                   for c in o["spec"]["template"]["spec"]["containers"]}
    for ref in builds(recorded):
        assert ref in images_used, f"Tilt refuses an image no object uses: {ref}"
    # what Tilt sends to the cluster still passes the strict schema check
    manifest = tmp_path / "tilt.yaml"
    manifest.write_text(yaml.safe_dump_all(objs))
    proc = run([tool("kubernetes-validate"), "--strict", "--quiet", "--no-warn", str(manifest)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_port_forwards_and_resources(recorded, settings):
    resources = {c["workload"]: c for c in calls(recorded, "k8s_resource")}
    workloads = {o["metadata"]["name"] for o in applied_objects(recorded)
                 if o["kind"] in ("Deployment", "StatefulSet", "Job")}
    for name in resources:
        assert name in workloads, f"k8s_resource({name!r}) names no workload Tilt deploys"
    assert resources["gateway"]["port_forwards"] == ["8000:8000"]
    assert resources["notifier"]["port_forwards"] == ["8001:8001"]
    for name, svc in settings["services"].items():
        assert resources[name]["port_forwards"] == svc.get("port_forwards", [])
        assert "taskqueue-migrate" in resources[name]["resource_deps"]
    assert "postgres" in resources["taskqueue-migrate"]["resource_deps"]


def test_settings_drive_the_tiltfile(settings):
    """Disable services and switch autoscaling on: the Tiltfile follows tilt.yaml."""
    changed = copy.deepcopy(settings)
    for name in ("worker-low", "worker-default", "worker-high", "worker-critical", "notifier"):
        changed["services"][name]["enabled"] = False
    changed["autoscaling"] = True
    changed["services"]["scheduler"]["replicas"] = 2
    recorded = execute_tiltfile(changed)
    built = set(builds(recorded))
    assert built == {"taskqueue/gateway", "taskqueue/scheduler", "taskqueue/dispatcher"}
    objs = applied_objects(recorded)
    assert set(objects(objs, "Deployment")) == {"gateway", "scheduler", "dispatcher"}
    assert set(objects(objs, "ScaledObject")) == {"dispatcher"}
    assert set(objects(objs, "HorizontalPodAutoscaler")) == {"gateway"}
    assert "replicas" not in objects(objs, "Deployment")["gateway"]["spec"], "autoscaled: the HPA owns replicas"
    assert objects(objs, "Deployment")["scheduler"]["spec"]["replicas"] == 2  # no autoscaler: tilt.yaml decides
    assert not [o for o in objs if o["metadata"]["name"].startswith("worker-")]


def test_tiltfile_is_documented():
    readme = (DEPLOY / "README.md").read_text()
    assert "tilt up -f deploy/Tiltfile" in readme
    assert "tilt up -f deploy/Tiltfile" in TILTFILE.read_text()
    assert "deploy/Tiltfile" in TILT_SETTINGS.read_text()
