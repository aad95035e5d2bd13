"""A real Triton 2.51 server started with the Kubernetes Deployment's own security flags.

The flags are read from the rendered gpu overlay (``kubectl kustomize``) and the ``$(ENV)``
references are replaced by keys, as the kubelet does from the Secret: what is tested is what
the cluster would run. The repository is a tiny one rendered here with ``serving.render``
(an ONNX model served by the project's ONNX Runtime runner, and an ensemble over it), so the
test does not depend on the FAQ or image artifacts.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from onnx import TensorProto, helper
from tritonclient.utils import InferenceServerException

from deploy import k8s, security
from deploy.versions import container_release
from serving.client import Endpoint, Unauthorized, error_from
from serving.modelspec import EnsembleStep, ModelSpec, TensorSpec
from serving.render import validate, write_model
from serving.triton import Ports, TritonServer

TEST_ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"

DOUBLE = ModelSpec(
    name="double",
    kind="onnx",
    max_batch_size=8,
    inputs=(TensorSpec("x", "TYPE_FP32", (4,)),),
    outputs=(TensorSpec("y", "TYPE_FP32", (4,)),),
    artifact="double.onnx",
    exporter="tests:unused",
)
PIPELINE = ModelSpec(
    name="pipeline",
    kind="ensemble",
    max_batch_size=8,
    inputs=(TensorSpec("INPUT", "TYPE_FP32", (4,)),),
    outputs=(TensorSpec("OUTPUT", "TYPE_FP32", (4,)),),
    steps=(EnsembleStep("double", {"x": "INPUT"}, {"y": "OUTPUT"}),),
)


@dataclass(frozen=True)
class Running:
    server: TritonServer
    api_key: str
    admin_key: str
    args: list[str]


def manifest_security_args(api_key: str, admin_key: str) -> list[str]:
    """The Deployment's restriction flags with the Secret's values substituted."""
    deployment = k8s.find(k8s.render("gpu"), "Deployment", "triton")
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "triton"]
    wanted = ("--http-restricted-api=", "--grpc-restricted-protocol=", "--model-control-mode=")
    args = [a for a in container["args"] if a.startswith(wanted)]
    values = {security.API_KEY_ENV: api_key, security.ADMIN_KEY_ENV: admin_key}
    substituted = [re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], a) for a in args]
    assert substituted == security.server_security_args(api_key, admin_key)
    return substituted


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("restricted")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["y"])],
        "double",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, root / "double.onnx")
    repository = root / "repository"
    repository.mkdir()
    validate([DOUBLE, PIPELINE])
    for spec in (DOUBLE, PIPELINE):
        write_model(spec, "cpu", repository, artifacts_dir=root)
    api_key, admin_key = security.new_key(), security.new_key()
    args = manifest_security_args(api_key, admin_key)
    TEST_ARTIFACTS.mkdir(exist_ok=True)
    server = TritonServer(
        repository, Ports.free(), log_path=TEST_ARTIFACTS / "triton-restricted.log", extra_args=args
    )
    with server:
        yield Running(server, api_key, admin_key, args)


def _inputs(module: object) -> list[object]:
    data = np.arange(8, dtype=np.float32).reshape(2, 4)
    tensor = module.InferInput("INPUT", list(data.shape), "FP32")  # type: ignore[attr-defined]
    tensor.set_data_from_numpy(data)
    return [tensor]


def _get(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_inference_without_key_is_refused(running: Running) -> None:
    endpoint = Endpoint(url=running.server.http_url)  # no key
    with pytest.raises(InferenceServerException) as info:
        endpoint.client().infer("pipeline", _inputs(httpclient), headers=endpoint.headers())
    assert info.value.status() == "403"
    assert security.API_KEY_HEADER in info.value.message()
    assert isinstance(error_from(info.value, "pipeline"), Unauthorized)  # what every client reports


def test_inference_with_a_wrong_key_is_refused(running: Running) -> None:
    endpoint = Endpoint(url=running.server.http_url, api_key=security.new_key())
    with pytest.raises(InferenceServerException) as info:
        endpoint.client().infer("pipeline", _inputs(httpclient), headers=endpoint.headers())
    assert info.value.status() == "403"


def test_inference_with_the_key_is_answered(running: Running) -> None:
    endpoint = Endpoint(url=running.server.http_url, api_key=running.api_key)
    result = endpoint.client().infer("pipeline", _inputs(httpclient), headers=endpoint.headers())
    expected = 2 * np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT"), expected)


def test_grpc_is_restricted_the_same_way(running: Running) -> None:
    without = Endpoint(url=running.server.grpc_url, protocol="grpc")
    with pytest.raises(InferenceServerException):
        without.client().infer("pipeline", _inputs(grpcclient), headers=without.headers())
    endpoint = Endpoint(url=running.server.grpc_url, protocol="grpc", api_key=running.api_key)
    result = endpoint.client().infer("pipeline", _inputs(grpcclient), headers=endpoint.headers())
    assert result.as_numpy("OUTPUT")[1, 3] == 14.0


def test_health_is_open_for_probes(running: Running) -> None:
    base = f"http://{running.server.http_url}"
    assert _get(f"{base}/v2/health/live") == 200
    assert _get(f"{base}/v2/health/ready") == 200
    assert _get(f"{base}/v2/models/pipeline/ready") == 200


def test_metadata_needs_the_key_and_reports_the_containers_release(running: Running) -> None:
    base = f"http://{running.server.http_url}"
    assert _get(f"{base}/v2") == 403
    client = Endpoint(url=running.server.http_url, api_key=running.api_key).client()
    metadata = client.get_server_metadata(headers={security.API_KEY_HEADER: running.api_key})
    # the Dockerfile's base image is the container of this very server release
    assert container_release(metadata["version"]) == "24.10"
    dockerfile = (Path(k8s.REPO_ROOT) / "deploy" / "Dockerfile").read_text()
    assert f"FROM nvcr.io/nvidia/tritonserver:{container_release(metadata['version'])}-py3" in dockerfile


def test_model_repository_api_is_not_exposed(running: Running) -> None:
    base = f"http://{running.server.http_url}"
    client_headers = {security.API_KEY_HEADER: running.api_key}
    # neither without a key nor with the client key
    assert _get(f"{base}/v2/models/stats") == 403
    assert _get(f"{base}/v2/models/stats", client_headers) == 403
    client = httpclient.InferenceServerClient(running.server.http_url)
    for headers in ({}, client_headers):
        with pytest.raises(InferenceServerException) as info:
            client.get_model_repository_index(headers=headers)
        assert info.value.status() == "403"
        with pytest.raises(InferenceServerException):
            client.unload_model("double", headers=headers)
    # the admin key lists models but cannot load or unload them (--model-control-mode=none)
    admin = {security.ADMIN_KEY_HEADER: running.admin_key}
    assert {m["name"] for m in client.get_model_repository_index(headers=admin)} == {"double", "pipeline"}
    with pytest.raises(InferenceServerException):
        client.unload_model("double", headers=admin)
    assert client.is_model_ready("double")
