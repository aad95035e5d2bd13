"""Export ResNet-152 (PyTorch, torchvision layout) to ONNX with a dynamic batch dimension.

    python -m export.resnet_torch [--weights resnet152-394f9c45.pth] [--artifacts build/artifacts]

Without ``--weights`` (or ``$RESNET152_PYTORCH_WEIGHTS``) the network is randomly initialised
with a fixed seed: it serves, batches and benchmarks like the real one, but its predictions
are meaningless, and the export, the provenance file and the server log say so.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imaging.artifacts import (
    RANDOM,
    onnx_path,
    random_weights_banner,
    temporary_sibling,
    write_provenance,
)
from imaging.networks import RESNET152_PYTORCH
from imaging.resnet import load_torchvision_weights, resnet
from serving.paths import ARTIFACTS_DIR

log = logging.getLogger(__name__)
NETWORK = RESNET152_PYTORCH
WEIGHTS_ENV = "RESNET152_PYTORCH_WEIGHTS"
OPSET = 17
DEFAULT_SEED = 0


def build_model(weights: Path | None = None, seed: int = DEFAULT_SEED, depth: int = 152) -> torch.nn.Module:
    """ResNet-152 in eval mode: from a torchvision checkpoint, or seeded random weights."""
    torch.manual_seed(seed)
    model = resnet(depth)
    if weights is not None:
        load_torchvision_weights(model, weights)
    return model.eval()


def model_from_provenance(info: dict[str, Any]) -> torch.nn.Module:
    """Rebuild exactly the model an export (or :func:`describe`) used: the parity tests and the
    gpu-local network step build it this way."""
    if info["weights"] == RANDOM:
        return build_model(None, int(info["seed"]), int(info.get("depth", 152)))
    return build_model(Path(info["weights_path"]))


def weights_info(weights: Path | None = None, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """The provenance of the weights: a checkpoint (``$RESNET152_PYTORCH_WEIGHTS`` when none is
    given) with its SHA-256, or seeded random weights, announced loudly."""
    if weights is None and os.environ.get(WEIGHTS_ENV):
        weights = Path(os.environ[WEIGHTS_ENV])
    if weights is None:
        log.warning(random_weights_banner(NETWORK.name))
        return {"weights": RANDOM, "seed": seed}
    weights = Path(weights).resolve()
    return {"weights": "torchvision-checkpoint", "weights_path": str(weights), "sha256": _sha256(weights)}


def describe(artifacts_dir: Path = ARTIFACTS_DIR, weights: Path | None = None, depth: int = 152) -> Path:
    """Write only the provenance, for the gpu-local target, where the step builds the network
    from it in PyTorch (no ONNX file). ``depth`` other than 152 is a test stand-in, and says so."""
    info = {**weights_info(weights), "framework": f"torch {torch.__version__}", "outputs": "logits"}
    if depth != 152:
        info.update(depth=depth, note=f"ResNet-{depth}, a tiny stand-in for tests, not ResNet-152")
    return write_provenance(artifacts_dir, NETWORK.name, info)


def export_onnx(model: torch.nn.Module, destination: Path, input_name: str, output_name: str) -> None:
    """``torch.onnx.export`` (TorchScript exporter) with a dynamic batch, written atomically."""
    size = NETWORK.preprocess.size
    example = torch.zeros(1, 3, size, size)
    tmp = temporary_sibling(destination)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
            torch.onnx.export(
                model,
                (example,),
                str(tmp),
                input_names=[input_name],
                output_names=[output_name],
                dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,  # the dynamo exporter needs onnxscript, which is not installed
            )
        os.replace(tmp, destination)
    finally:
        tmp.unlink(missing_ok=True)


def export(
    artifacts_dir: Path = ARTIFACTS_DIR, weights: Path | None = None, seed: int = DEFAULT_SEED
) -> Path:
    """Write the ONNX file and its provenance under ``artifacts_dir`` (``imaging/`` there)."""
    info = weights_info(weights, seed)
    model = model_from_provenance(info)
    destination = onnx_path(artifacts_dir, NETWORK.name)
    destination.parent.mkdir(parents=True, exist_ok=True)
    log.info("exporting %s to %s (opset %d)", NETWORK.name, destination, OPSET)
    export_onnx(model, destination, NETWORK.input_name, NETWORK.output_name)
    info.update(framework=f"torch {torch.__version__}", opset=OPSET, outputs="logits")
    write_provenance(artifacts_dir, NETWORK.name, info)
    _check(destination, model)
    return destination


def _check(path: Path, model: torch.nn.Module) -> None:
    """A quick ONNX Runtime vs PyTorch check at batch 2 (the parity test does it on a photo)."""
    import onnxruntime as ort

    size = NETWORK.preprocess.size
    x = np.random.default_rng(0).standard_normal((2, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run([NETWORK.output_name], {NETWORK.input_name: x})
    diff = float(np.abs(got - expected).max())
    log.info("%s: ONNX Runtime vs PyTorch max |logit diff| = %.2e (batch 2)", NETWORK.name, diff)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", type=Path, help="torchvision resnet152-*.pth state_dict")
    parser.add_argument("--artifacts", type=Path, default=ARTIFACTS_DIR, help="artifacts folder")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed for random weights")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    path = export(args.artifacts, args.weights, args.seed)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
