"""k8s/ renders with the real Kustomize (kubectl) and meets the issue's requirements."""

from __future__ import annotations

import copy
import re
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils

from deploy import k8s, security
from serving.paths import REPO_ROOT

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Obj]]:
    return {overlay: k8s.render(overlay) for overlay in k8s.OVERLAYS}


def container(objects: list[Obj], name: str = "triton") -> Obj:
    containers = k8s.find(objects, "Deployment", "triton")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["triton", "front-door"]
    return next(c for c in containers if c["name"] == name)


def pod_spec(objects: list[Obj]) -> Obj:
    return k8s.find(objects, "Deployment", "triton")["spec"]["template"]["spec"]


def env_of(c: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in c["env"]}


@pytest.mark.parametrize("overlay", k8s.OVERLAYS)
@pytest.mark.parametrize("version", [k8s.KUBERNETES_VERSION, utils.latest_version()])
def test_every_object_validates(rendered: dict[str, list[Obj]], overlay: str, version: str) -> None:
    objects = rendered[overlay]
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(
        [
            "Namespace",
            "ConfigMap",
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "ServiceMonitor",
            "Ingress",
            "NetworkPolicy",
        ]
    )
    assert k8s.validate(objects, version) == []


def test_validation_is_strict(rendered: dict[str, list[Obj]]) -> None:
    """The checks above are not vacuous: unknown fields and bad CRD fields are reported."""
    objects = copy.deepcopy(rendered["gpu"])
    container(objects)["livenessProbe"]["httpGett"] = {"path": "/"}
    k8s.find(objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"] = "two"
    monitor = k8s.find(objects, "ServiceMonitor")
    monitor["spec"]["endpoints"][0]["interval"] = "15 seconds"
    monitor["spec"]["endpoint"] = []
    problems = [str(p) for p in k8s.validate(objects)]
    assert any(p.startswith("Deployment/triton") and "httpGett" in p for p in problems), problems
    assert any(p.startswith("HorizontalPodAutoscaler/triton") for p in problems), problems
    assert sum(p.startswith("ServiceMonitor/triton") for p in problems) == 2, problems


def test_the_pinned_version_is_supported_by_the_validator() -> None:
    assert k8s.KUBERNETES_VERSION == "1.30.0"
    assert "1.30" in [utils.major_minor(v) for v in utils.all_versions()]
    with pytest.raises(kubernetes_validate.ValidationError):  # and the validator really checks
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"ports": "80"}},
            k8s.KUBERNETES_VERSION,
            strict=True,
        )


@pytest.mark.parametrize("overlay", k8s.OVERLAYS)
def test_security_args_come_from_deploy_security(rendered: dict[str, list[Obj]], overlay: str) -> None:
    c = container(rendered[overlay])
    args = c["args"]
    expected = security.kubernetes_security_args()
    start = args.index(expected[0])
    assert args[start : start + len(expected)] == expected
    assert not any(a.startswith("--model-control-mode=") and a != "--model-control-mode=none" for a in args)
    env = env_of(c)
    for var, key in (
        (security.API_KEY_ENV, security.SECRET_API_KEY),
        (security.ADMIN_KEY_ENV, security.SECRET_ADMIN_KEY),
    ):
        ref = env[var]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": security.SECRET_NAME, "key": key}
    # no key value is written into the manifests
    assert all("$(" in a for a in args if "restricted" in a)


@pytest.mark.parametrize(("overlay", "repository"), [("gpu", "/models/gpu"), ("cpu", "/models/cpu")])
def test_repository_is_the_images(rendered: dict[str, list[Obj]], overlay: str, repository: str) -> None:
    c = container(rendered[overlay])
    assert "--model-repository=$(MODEL_REPOSITORY)" in c["args"]
    assert env_of(c)["MODEL_REPOSITORY"]["value"] == repository
    dockerfile = (REPO_ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(rf"^COPY \S+ {repository}$", dockerfile, re.M)
    assert c["image"].startswith("myregistry.azurecr.io/triton-scoring-stack:")
    assert not c["image"].endswith(":latest")


def test_gpu_placement_and_resources(rendered: dict[str, list[Obj]]) -> None:
    spec = pod_spec(rendered["gpu"])
    c = container(rendered["gpu"])
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert spec["nodeSelector"] == {"kubernetes.azure.com/agentpool": "gpunp"}
    assert {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"} in spec["tolerations"]
    script = (REPO_ROOT / "deploy" / "aks_create.sh").read_text()
    assert "GPU_POOL=${GPU_POOL:-gpunp}" in script and "--node-taints sku=gpu:NoSchedule" in script


def test_cpu_overlay_has_no_gpu(rendered: dict[str, list[Obj]]) -> None:
    spec = pod_spec(rendered["cpu"])
    assert "nvidia.com/gpu" not in str(container(rendered["cpu"])["resources"])
    assert "tolerations" not in spec


@pytest.mark.parametrize("overlay", k8s.OVERLAYS)
def test_requests_equal_limits(rendered: dict[str, list[Obj]], overlay: str) -> None:
    resources = container(rendered[overlay])["resources"]
    assert resources["requests"] == resources["limits"]
    assert {"cpu", "memory"} <= set(resources["requests"])


@pytest.mark.parametrize(("overlay", "min_startup_s"), [("gpu", 900), ("cpu", 300)])
def test_probes(rendered: dict[str, list[Obj]], overlay: str, min_startup_s: int) -> None:
    c = container(rendered[overlay])
    for probe in (c["livenessProbe"], c["readinessProbe"]):  # the deep check, not /v2/health/*
        command = probe["exec"]["command"]
        assert command[:3] == ["python3", "-m", "serving.health"]
        timeout = float(command[command.index("--timeout") + 1])
        assert probe["timeoutSeconds"] > timeout  # the ensembles are probed at once, each bounded
    names = {e["name"] for e in c["env"]}
    assert {"TRITON_API_KEY", "TRITON_ADMIN_KEY"} <= names  # what serving.health sends
    startup = c["startupProbe"]
    assert startup["httpGet"]["path"].startswith("/v2/health/")
    assert startup["periodSeconds"] * startup["failureThreshold"] >= min_startup_s
    assert "health" in security.OPEN_APIS  # probes send no key


@pytest.mark.parametrize("overlay", k8s.OVERLAYS)
def test_a_new_image_rolls_out_and_back_without_downtime(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    """A model version is an image tag: `kubectl set image` rolls it out, `kubectl rollout undo`
    back. A new pod takes traffic only once the deep check passes (and has for a while); an old
    one goes only after, and keeps serving until the endpoints have let it go."""
    spec = k8s.find(rendered[overlay], "Deployment", "triton")["spec"]
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert (
        spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        and spec["strategy"]["rollingUpdate"]["maxSurge"] >= 1
    )
    assert spec["minReadySeconds"] >= 5 and spec["revisionHistoryLimit"] >= 2
    assert container(rendered[overlay])["readinessProbe"]["exec"]["command"][2] == "serving.health"
    grace = spec["template"]["spec"]["terminationGracePeriodSeconds"]
    for name in ("triton", "front-door"):
        wait = container(rendered[overlay], name)["lifecycle"]["preStop"]["exec"]["command"]
        assert wait[0] == "sleep" and 5 <= int(wait[1]) < grace / 2


@pytest.mark.parametrize("overlay", k8s.OVERLAYS)
def test_shm_and_non_root(rendered: dict[str, list[Obj]], overlay: str) -> None:
    spec = pod_spec(rendered[overlay])
    c = container(rendered[overlay])
    volumes = {v["name"]: v for v in spec["volumes"]}
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/dev/shm")
    assert volumes[mount["name"]]["emptyDir"]["medium"] == "Memory"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 1000
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert spec["automountServiceAccountToken"] is False


@pytest.mark.parametrize("overlay", k8s.OVERLAYS)
def test_selectors_match_the_pods(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objects = rendered[overlay]
    deployment = k8s.find(objects, "Deployment", "triton")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = k8s.find(objects, "Service", "triton")

    def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    assert matches(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    assert matches(service["spec"]["selector"], pod_labels)
    assert matches(k8s.find(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], pod_labels)
    assert matches(k8s.find(objects, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"], pod_labels)
    monitor = k8s.find(objects, "ServiceMonitor")
    assert matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} == {"metrics"} <= service_ports
    container_ports = {
        p["name"]: p["containerPort"]
        for name in ("triton", "front-door")
        for p in container(objects, name)["ports"]
    }
    assert container_ports == {"http": 8000, "grpc": 8001, "metrics": 8002}
    assert {p["name"] for p in container(objects, "front-door")["ports"]} == {"http", "grpc"}
    for rule in k8s.find(objects, "NetworkPolicy")["spec"]["ingress"]:
        assert {p["port"] for p in rule["ports"]} <= set(container_ports)


def _adapter_metric() -> str:
    values = yaml.safe_load((REPO_ROOT / "k8s" / "monitoring" / "prometheus-adapter-values.yaml").read_text())
    (rule,) = values["rules"]["custom"]
    assert "nv_inference_queue_duration_us" in rule["metricsQuery"]
    assert "nv_inference_request_success" in rule["metricsQuery"]
    return rule["name"]["as"]


@pytest.mark.parametrize(("overlay", "types"), [("gpu", ["Pods"]), ("cpu", ["Pods", "Resource"])])
def test_hpa(rendered: dict[str, list[Obj]], overlay: str, types: list[str]) -> None:
    hpa = k8s.find(rendered[overlay], "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "triton"}
    metrics = hpa["spec"]["metrics"]
    assert [m["type"] for m in metrics] == types
    assert metrics[0]["pods"]["metric"]["name"] == _adapter_metric()
    if overlay == "cpu":
        assert metrics[1]["resource"]["name"] == "cpu"
        assert metrics[1]["resource"]["target"]["type"] == "Utilization"
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    assert "replicas" not in k8s.find(rendered[overlay], "Deployment")["spec"]  # the HPA owns it


def test_pdb_never_blocks_a_drain_forever(rendered: dict[str, list[Obj]]) -> None:
    pdb = k8s.find(rendered["gpu"], "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1" and pdb["spec"]["maxUnavailable"] == 1


def test_ingress_tls_redirect_and_routed_paths(rendered: dict[str, list[Obj]]) -> None:
    ingress = k8s.find(rendered["gpu"], "Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/ssl-redirect"] == "true"
    (tls,) = ingress["spec"]["tls"]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] in tls["hosts"] and tls["secretName"]
    paths = [p["path"] for p in rule["http"]["paths"]]
    assert paths == ["/v2/models", "/v2/health"]
    for p in rule["http"]["paths"]:
        assert p["pathType"] == "Prefix"
        assert p["backend"]["service"] == {"name": "triton", "port": {"name": "http"}}
    # model-repository, shared memory, trace and logging endpoints are not routed at all
    for admin_path in (
        "/v2/repository/index",
        "/v2/systemsharedmemory/status",
        "/v2/trace/setting",
        "/v2/logging",
        "/v2/cudasharedmemory/status",
    ):
        assert not any(admin_path == p or admin_path.startswith(p + "/") for p in paths)


def test_network_policy_defaults_to_deny(rendered: dict[str, list[Obj]]) -> None:
    policy = k8s.find(rendered["gpu"], "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    sources = [rule["from"][0] for rule in policy["spec"]["ingress"]]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}} in sources
    egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert egress_ports == {53}


def _selects(selector: Obj | None, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics for ``matchLabels`` (an empty selector selects all)."""
    assert not (selector or {}).get("matchExpressions"), "extend _selects for matchExpressions"
    return all(labels.get(k) == v for k, v in (selector or {}).get("matchLabels", {}).items())


def _admits(policy: Obj, namespace: str, pod: dict[str, str], ns_labels: dict[str, str], port: str) -> bool:
    """Whether ``policy`` lets a pod (its namespace and labels) reach the selected pods on ``port``.

    A peer with only a podSelector means pods of the policy's own namespace; a peer with only a
    namespaceSelector means every pod of the matching namespaces (NetworkPolicy semantics).
    """
    for rule in policy["spec"].get("ingress", []):
        if port not in {p["port"] for p in rule.get("ports", [])}:
            continue
        for peer in rule["from"]:
            if "namespaceSelector" in peer:
                in_namespace = _selects(peer["namespaceSelector"], ns_labels)
            else:
                in_namespace = namespace == policy["metadata"]["namespace"]
            if in_namespace and _selects(peer.get("podSelector"), pod):
                return True
    return False


@pytest.mark.parametrize("overlay", k8s.OVERLAYS)
def test_network_policy_admits_exactly_the_documented_clients(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    """Who may connect, read from the rendered policy (labels injected into selectors once broke it)."""
    objects = rendered[overlay]
    policy = k8s.find(objects, "NetworkPolicy")
    triton_labels = k8s.find(objects, "Deployment", "triton")["spec"]["template"]["metadata"]["labels"]
    assert _selects(policy["spec"]["podSelector"], triton_labels)
    here = {"kubernetes.io/metadata.name": "triton"}
    client = {"app": "my-service", "triton-client": "true"}
    for port in ("http", "grpc"):
        assert _admits(policy, "triton", client, here, port), port
        assert not _admits(policy, "triton", {"app": "my-service"}, here, port), port
        assert not _admits(policy, "other", client, {"kubernetes.io/metadata.name": "other"}, port), port
    ingress = {"kubernetes.io/metadata.name": "ingress-nginx"}
    assert _admits(policy, "ingress-nginx", {"app": "controller"}, ingress, "http")
    assert not _admits(policy, "ingress-nginx", {"app": "controller"}, ingress, "grpc")
    monitoring = {"kubernetes.io/metadata.name": "monitoring"}
    assert _admits(policy, "monitoring", {"app": "prometheus"}, monitoring, "metrics")
    assert not _admits(policy, "monitoring", {"app": "prometheus"}, monitoring, "http")


def test_namespace_enforces_restricted_pod_security(rendered: dict[str, list[Obj]]) -> None:
    ns = k8s.find(rendered["gpu"], "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert all(
        o["metadata"].get("namespace") == ns["metadata"]["name"]
        for o in rendered["gpu"]
        if o["kind"] != "Namespace"
    )


def test_render_cli_writes_valid_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    result = CliRunner().invoke(k8s.app, ["render", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for overlay in k8s.OVERLAYS:
        docs = [d for d in yaml.safe_load_all((tmp_path / f"{overlay}.yaml").read_text()) if d]
        assert len(docs) == 9
    result = CliRunner().invoke(k8s.app, ["validate", str(tmp_path / "gpu.yaml")])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("overlay", k8s.OVERLAYS)
def test_clients_reach_triton_only_through_the_front_door(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    """The sidecar runs the very file `make serve` runs, with every variable it reads set, and
    points at the ports Triton listens on, on loopback only; the deep check goes to Triton."""
    import re

    from serving.front_door import CONFIG, MAX_BODY_BYTES, FrontDoor
    from serving.health import FRONT_DOOR_CHECK

    objects = rendered[overlay]
    triton, door = container(objects), container(objects, "front-door")
    args = triton["args"]
    assert "--http-address=127.0.0.1" in args and "--grpc-address=127.0.0.1" in args
    env = {e["name"]: e["value"] for e in door["env"]}
    assert (
        f"--http-port={env['TRITON_HTTP_PORT']}" in args and f"--grpc-port={env['TRITON_GRPC_PORT']}" in args
    )
    assert set(re.findall(r"\$\{(\w+)\}", CONFIG.read_text())) == set(env)
    assert env["FRONT_DOOR_ADDRESS"] == "0.0.0.0" and env["TRITON_ADDRESS"] == "127.0.0.1"
    # the same limits as `make serve` and the container's entrypoint use (three copies, one value)
    assert env["MAX_BODY_BYTES"] == str(MAX_BODY_BYTES)
    assert env["FRONT_DOOR_REQUEST_TIMEOUT"] == FrontDoor.request_timeout
    (volume,) = [v for v in pod_spec(objects)["volumes"] if v["name"] == "front-door"]
    config_map = k8s.find(objects, "ConfigMap", volume["configMap"]["name"])
    assert config_map["data"] == {"haproxy.cfg": CONFIG.read_text()}
    assert door["command"] == ["haproxy", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
    assert door["image"] == "haproxy:2.6.12" and door["securityContext"]["readOnlyRootFilesystem"] is True
    for probe in (triton["livenessProbe"], triton["readinessProbe"]):
        assert f"localhost:{env['TRITON_HTTP_PORT']}" in probe["exec"]["command"]
    assert triton["startupProbe"]["httpGet"]["port"] == int(env["FRONT_DOOR_HTTP_PORT"])
    # the front door's own check, answered by HAProxy without Triton (not a TCP connect)
    assert door["livenessProbe"]["httpGet"] == {"path": FRONT_DOOR_CHECK, "port": "http"}
    assert f"monitor-uri {FRONT_DOOR_CHECK}\n" in CONFIG.read_text()
