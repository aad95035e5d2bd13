"""Build TensorRT engines (``tensorrt_plan``) from the image networks' ONNX files, on a GPU.

    python -m export.tensorrt_plans [--model resnet152_pytorch ...] [--repository build/model_repository_gpu]

Run it where the engines will serve (an engine is tied to the GPU model and the TensorRT
version): inside ``nvcr.io/nvidia/tritonserver:24.10-py3`` (TensorRT 10.5, ``trtexec`` under
``/usr/src/tensorrt/bin``) or any machine with ``trtexec`` or the ``tensorrt`` Python
package and an NVIDIA GPU. For each network it builds an FP16 engine with a dynamic batch
profile (1 / 4 / 8), writes it to ``build/artifacts/imaging/<network>.plan`` and replaces
the ``<network>_network`` model in the GPU repository (``make build-gpu`` output) with a
``platform: "tensorrt_plan"`` model of the same name and tensors, so the ensembles do not
change. Without a GPU or TensorRT it stops with a message saying what is missing.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as mc

from imaging.artifacts import SUBDIR, onnx_path, temporary_sibling
from imaging.networks import NETWORKS, Network
from imaging.specs import MAX_BATCH_SIZE, model_names, specs_for
from serving.modelspec import ModelSpec
from serving.paths import ARTIFACTS_DIR, BUILD_DIR
from serving.render import build_config, to_pbtxt

log = logging.getLogger(__name__)
PLAN_FILE_NAME = "model.plan"
GPU_REPOSITORY = BUILD_DIR / "model_repository_gpu"
TRTEXEC_CANDIDATES = ("/usr/src/tensorrt/bin/trtexec", "/opt/tensorrt/bin/trtexec")
OPT_BATCH = 4


class TensorRTUnavailable(RuntimeError):
    """No GPU, or neither trtexec nor the TensorRT Python package."""


@dataclass(frozen=True)
class Builder:
    kind: str  # "trtexec" or "python"
    trtexec: str | None = None


def gpu_present() -> bool:
    """An NVIDIA GPU the driver can see (``nvidia-smi -L`` lists one)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        result = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and "GPU" in result.stdout


def find_builder() -> Builder:
    """``trtexec`` (PATH, then the containers' usual places), else the ``tensorrt`` package."""
    trtexec = shutil.which("trtexec") or next((p for p in TRTEXEC_CANDIDATES if os.access(p, os.X_OK)), None)
    if trtexec:
        return Builder("trtexec", trtexec)
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        raise TensorRTUnavailable(
            "TensorRT not found: neither `trtexec` (PATH, /usr/src/tensorrt/bin) nor the `tensorrt` "
            "Python package. Run this inside nvcr.io/nvidia/tritonserver:24.10-py3 (or "
            "nvcr.io/nvidia/tensorrt) on a GPU machine. The CPU server does not need plans: "
            "`make build-gpu` alone gives the onnxruntime + TensorRT-accelerator variant."
        ) from None
    return Builder("python")


def shape_arg(network: Network, batch: int) -> str:
    return f"{network.input_name}:{'x'.join(str(d) for d in (batch, *network.input_dims))}"


def trtexec_command(
    trtexec: str, network: Network, onnx_file: Path, plan: Path, fp16: bool = True, workspace_mib: int = 4096
) -> list[str]:
    """The ``trtexec`` call: dynamic batch 1..8 (optimised for 4), FP16, fp32 I/O."""
    command = [
        trtexec,
        f"--onnx={onnx_file}",
        f"--saveEngine={plan}",
        f"--minShapes={shape_arg(network, 1)}",
        f"--optShapes={shape_arg(network, OPT_BATCH)}",
        f"--maxShapes={shape_arg(network, MAX_BATCH_SIZE)}",
        f"--memPoolSize=workspace:{workspace_mib}M",
        "--skipInference",
    ]
    if fp16:
        command.append("--fp16")
    return command


def build_with_python_api(
    network: Network, onnx_file: Path, plan: Path, fp16: bool, workspace_mib: int
) -> None:
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):  # implicit in TensorRT 10
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    definition = builder.create_network(flags)
    parser = trt.OnnxParser(definition, logger)
    if not parser.parse_from_file(str(onnx_file)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT cannot parse {onnx_file}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    dims = network.input_dims
    profile.set_shape(network.input_name, (1, *dims), (OPT_BATCH, *dims), (MAX_BATCH_SIZE, *dims))
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(definition, config)
    if engine is None:
        raise RuntimeError(f"TensorRT failed to build an engine for {onnx_file}")
    plan.write_bytes(bytes(engine))


def plan_path(artifacts_dir: Path, network: Network) -> Path:
    return Path(artifacts_dir) / SUBDIR / f"{network.name}.plan"


def build_plan(
    network: Network,
    builder: Builder,
    artifacts_dir: Path = ARTIFACTS_DIR,
    fp16: bool = True,
    workspace_mib: int = 4096,
) -> Path:
    onnx_file = onnx_path(artifacts_dir, network.name)
    if not onnx_file.is_file():
        raise FileNotFoundError(f"{onnx_file} is missing: run `make build-gpu` (it exports) first")
    plan = plan_path(artifacts_dir, network)
    tmp = temporary_sibling(plan)
    try:
        if builder.kind == "trtexec":
            assert builder.trtexec is not None
            command = trtexec_command(builder.trtexec, network, onnx_file, tmp, fp16, workspace_mib)
            log.info("building %s: %s", network.name, " ".join(command))
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                output = result.stdout[-3000:] + result.stderr
                raise RuntimeError(f"trtexec failed for {network.name}:\n{output}")
        else:
            log.info("building %s with the TensorRT Python API", network.name)
            build_with_python_api(network, onnx_file, tmp, fp16, workspace_mib)
        os.replace(tmp, plan)
    finally:
        tmp.unlink(missing_ok=True)
    return plan


def plan_config(spec: ModelSpec) -> mc.ModelConfig:
    """The GPU config of an image network model, as a ``tensorrt_plan`` model.

    Same name, tensors, batching, instances and warm-up as the onnxruntime rendering; no
    ONNX Runtime parameters or accelerator (the engine already is TensorRT, FP16).
    """
    if spec.kind != "onnx":
        raise ValueError(f"{spec.name} is not an ONNX network model")
    config = build_config(spec, "gpu")
    config.ClearField("backend")
    config.ClearField("optimization")
    for key in ("intra_op_thread_count", "inter_op_thread_count"):
        if key in config.parameters:
            del config.parameters[key]
    config.platform = "tensorrt_plan"
    config.default_model_filename = PLAN_FILE_NAME
    return config


def write_plan_model(
    spec: ModelSpec, plan: Path, repository: Path, artifacts_dir: Path = ARTIFACTS_DIR
) -> Path:
    """Replace ``<repository>/<spec.name>`` by the plan model (config, ``1/model.plan``, extras)."""
    model_dir = Path(repository) / spec.name
    if model_dir.exists():
        shutil.rmtree(model_dir)
    version = model_dir / "1"
    version.mkdir(parents=True)
    (model_dir / "config.pbtxt").write_text(to_pbtxt(plan_config(spec)))
    shutil.copy2(plan, version / PLAN_FILE_NAME)
    for name, relative in spec.extra_files.items():
        shutil.copy2(Path(artifacts_dir) / relative, version / name)
    return model_dir


def network_spec(network: Network) -> ModelSpec:
    _, net_name, _ = model_names(network)
    return next(spec for spec in specs_for(network) if spec.name == net_name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", action="append", choices=sorted(NETWORKS), help="network (repeatable)")
    parser.add_argument("--repository", type=Path, default=GPU_REPOSITORY, help="GPU model repository")
    parser.add_argument("--artifacts", type=Path, default=ARTIFACTS_DIR)
    parser.add_argument("--no-fp16", dest="fp16", action="store_false", help="build an FP32 engine")
    parser.add_argument("--workspace-mib", type=int, default=4096)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if not gpu_present():
            raise TensorRTUnavailable(
                "no NVIDIA GPU visible (`nvidia-smi -L` lists none): TensorRT engines are built on "
                "the GPU that will run them. Nothing was changed."
            )
        builder = find_builder()
    except TensorRTUnavailable as exc:
        log.error("%s", exc)
        return 2
    for name in args.model or list(NETWORKS):
        network = NETWORKS[name]
        plan = build_plan(network, builder, args.artifacts, args.fp16, args.workspace_mib)
        if args.repository.is_dir():
            model_dir = write_plan_model(network_spec(network), plan, args.repository, args.artifacts)
            log.info("wrote %s (platform tensorrt_plan)", model_dir)
        else:
            log.info("wrote %s; no repository at %s to update (run `make build-gpu`)", plan, args.repository)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
