"""Check a rendered model repository against what the 24.10 container can load.

The local server and the venv's ONNX Runtime are newer or different from the container's:
``onnx`` 1.22 writes IR version 13 by default, while the native ``onnxruntime`` backend of
Triton 24.10 (ONNX Runtime 1.19.2) loads IR <= 10 and default-domain opset <= 21 (checked
here against the onnxruntime 1.19.2 wheel). A repository that loads locally can therefore
fail in the container. This check reads every ``config.pbtxt`` and ``model.onnx`` and says so
before an image is built.

    python -m deploy.repository_check build/model_repository_gpu build/model_repository_cpu_container
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import onnx
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

CONTAINER_ORT_VERSION = "1.19.2"
MAX_IR_VERSION = 10
MAX_OPSET = {"": 21, "ai.onnx": 21, "ai.onnx.ml": 5}
# Backends and platforms in nvcr.io/nvidia/tritonserver:24.10-py3 that this project uses.
CONTAINER_BACKENDS = frozenset({"python", "onnxruntime", "tensorrt", "ensemble"})


@dataclass(frozen=True)
class Finding:
    model: str
    message: str

    def __str__(self) -> str:
        return f"{self.model}: {self.message}"


def check_onnx(path: Path, model: str) -> list[Finding]:
    """IR version and opsets of one ONNX file (the graph only; weights are not loaded)."""
    proto = onnx.load(str(path), load_external_data=False)
    findings = []
    if proto.ir_version > MAX_IR_VERSION:
        findings.append(
            Finding(
                model,
                f"{path.name} has ONNX IR version {proto.ir_version}; ONNX Runtime "
                f"{CONTAINER_ORT_VERSION} loads <= {MAX_IR_VERSION} "
                f"(set model.ir_version = {MAX_IR_VERSION} when exporting)",
            )
        )
    for opset in proto.opset_import:
        limit = MAX_OPSET.get(opset.domain)
        if limit is not None and opset.version > limit:
            findings.append(
                Finding(
                    model,
                    f"{path.name} uses opset {opset.version} of "
                    f"'{opset.domain or 'ai.onnx'}'; ONNX Runtime {CONTAINER_ORT_VERSION} "
                    f"supports <= {limit}",
                )
            )
    return findings


def check_repository(repository: Path) -> list[Finding]:
    """Every problem the 24.10 container would have with ``repository``."""
    findings: list[Finding] = []
    configs = sorted(repository.glob("*/config.pbtxt"))
    if not configs:
        return [Finding(str(repository), "no models (no */config.pbtxt); build the repository first")]
    names = {c.parent.name for c in configs}
    for config_path in configs:
        model = config_path.parent.name
        try:
            config = text_format.Parse(config_path.read_text(), mc.ModelConfig())
        except text_format.ParseError as exc:
            findings.append(Finding(model, f"config.pbtxt does not parse: {exc}"))
            continue
        backend = config.backend or config.platform
        if backend not in CONTAINER_BACKENDS:
            findings.append(Finding(model, f"backend/platform {backend!r} is not in the 24.10 container set"))
        for step in config.ensemble_scheduling.step:
            if step.model_name not in names:
                missing = step.model_name
                findings.append(Finding(model, f"ensemble step model {missing!r} is not in the repository"))
        versions = [d for d in config_path.parent.iterdir() if d.is_dir() and d.name.isdigit()]
        if backend != "ensemble" and not versions:
            findings.append(Finding(model, "no version folder"))
        for onnx_file in sorted(config_path.parent.glob("*/*.onnx")):
            findings.extend(check_onnx(onnx_file, model))
    return findings


def main(argv: list[str] | None = None) -> None:
    repositories = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    if not repositories:
        sys.exit("usage: python -m deploy.repository_check REPOSITORY...")
    failed = False
    for repository in repositories:
        findings = check_repository(repository)
        for finding in findings:
            print(f"{repository}: {finding}")
        if not findings:
            print(f"{repository}: loadable by the 24.10 container (backends, ONNX IR/opsets)")
        failed = failed or bool(findings)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
