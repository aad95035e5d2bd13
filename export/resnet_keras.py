"""Export ``keras.applications.ResNet152`` to ONNX with tf2onnx, in the TensorFlow venv.

TensorFlow 2.21 needs protobuf >= 6, which tritonclient 2.51 forbids, so TensorFlow lives in
``.venv-tf``. This module is both sides of that boundary:

* in the serving venv, :func:`export` (the repository build's exporter) runs this same module
  in ``.venv-tf`` as a subprocess;
* in ``.venv-tf`` it does the work::

    .venv-tf/bin/python -m export.resnet_keras export [--weights imagenet|PATH] [--artifacts DIR]
    .venv-tf/bin/python -m export.resnet_keras reference --pixels P.npy --output OUT.npz

``--weights imagenet`` downloads Keras' ImageNet weights (needs internet); ``PATH`` loads a
local ``.h5``/``.weights.h5`` file. Without weights the network is randomly initialised
(seeded) and its predictions are MEANINGLESS; the logs and the provenance file say so.
The Keras model itself is saved next to the ONNX file (``.keras``) so the parity test can
run the very same network. Only numpy, Pillow and the standard library are imported at
module level: the serving venv has no TensorFlow.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from imaging.artifacts import (
    RANDOM,
    SUBDIR,
    atomic_write_bytes,
    onnx_path,
    random_weights_banner,
    temporary_sibling,
    write_provenance,
)
from imaging.networks import RESNET152_TENSORFLOW
from serving.paths import ARTIFACTS_DIR, REPO_ROOT

log = logging.getLogger(__name__)
NETWORK = RESNET152_TENSORFLOW
OPSET = 17
DEFAULT_SEED = 0
WEIGHTS_ENV = "RESNET152_TENSORFLOW_WEIGHTS"
TF_PYTHON_ENV = "TF_PYTHON"  # override the interpreter of the TensorFlow venv
EXPORT_TIMEOUT_S = 1800
_IN_TF_VENV = "_RESNET_KERAS_IN_TF_VENV"


class TensorFlowVenvError(RuntimeError):
    """``.venv-tf`` is missing or the export inside it failed."""


def keras_model_path(artifacts_dir: Path) -> Path:
    return Path(artifacts_dir) / SUBDIR / f"{NETWORK.name}.keras"


def tf_python() -> Path:
    """The TensorFlow venv's interpreter (``$TF_PYTHON`` or ``.venv-tf/bin/python``)."""
    return Path(os.environ.get(TF_PYTHON_ENV) or REPO_ROOT / ".venv-tf" / "bin" / "python")


def tf_environment() -> dict[str, str]:
    """Run the checkout's code in .venv-tf without installing it there; keep TF quiet and on CPU."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env[_IN_TF_VENV] = "1"  # stops a venv without TensorFlow from delegating to itself forever
    return env


def run_in_tf_venv(args: list[str], timeout: float = EXPORT_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run ``python -m export.resnet_keras ARGS`` in .venv-tf; raise with its output on failure."""
    python = tf_python()
    if not python.is_file():
        raise TensorFlowVenvError(
            f"the TensorFlow venv is missing ({python}): run `make setup` (scripts/setup.sh) "
            f"or point ${TF_PYTHON_ENV} at a Python with tensorflow, keras and tf2onnx"
        )
    command = [str(python), "-m", "export.resnet_keras", *args]
    log.info("running in the TensorFlow venv: %s", " ".join(command))
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=tf_environment(), capture_output=True, text=True, timeout=timeout
    )
    for line in result.stderr.splitlines():
        if line.startswith(("INFO", "WARNING", "ERROR")):
            log.info("[.venv-tf] %s", line)
    if result.returncode != 0:
        raise TensorFlowVenvError(
            f"{' '.join(command)} failed with code {result.returncode}:\n{result.stderr[-4000:]}"
        )
    return result


def export(artifacts_dir: Path = ARTIFACTS_DIR, weights: str | None = None, seed: int = DEFAULT_SEED) -> Path:
    """The repository build's exporter: run the export inside .venv-tf."""
    weights = weights or os.environ.get(WEIGHTS_ENV) or None
    args = ["export", "--artifacts", str(Path(artifacts_dir).resolve()), "--seed", str(seed)]
    if weights:
        args += ["--weights", weights if weights == "imagenet" else str(Path(weights).resolve())]
    else:
        log.warning(random_weights_banner(NETWORK.name))
    run_in_tf_venv(args)
    return onnx_path(artifacts_dir, NETWORK.name)


# ---- everything below runs inside .venv-tf ----------------------------------------------------


def _build_keras_model(weights: str | None, seed: int) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    # classifier_activation="softmax" (the default): the ONNX model outputs probabilities
    return keras.applications.ResNet152(weights=weights, include_top=True)


def _export_in_tf(artifacts_dir: Path, weights: str | None, seed: int) -> Path:
    import numpy as np
    import onnx
    import tensorflow as tf
    import tf2onnx

    if weights and weights != "imagenet" and not Path(weights).is_file():
        raise FileNotFoundError(f"Keras weights file {weights} does not exist")
    if not weights:
        log.warning(random_weights_banner(NETWORK.name))
    started = time.monotonic()
    model = _build_keras_model(weights, seed)

    keras_path = keras_model_path(artifacts_dir)
    tmp_keras = temporary_sibling(keras_path)
    try:
        model.save(tmp_keras)
        os.replace(tmp_keras, keras_path)
    finally:
        tmp_keras.unlink(missing_ok=True)

    size = NETWORK.preprocess.size
    signature = [tf.TensorSpec((None, size, size, 3), tf.float32, name=NETWORK.input_name)]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=OPSET)
    _rename_io(proto, NETWORK.input_name, NETWORK.output_name)
    onnx.checker.check_model(proto)
    destination = onnx_path(artifacts_dir, NETWORK.name)
    atomic_write_bytes(destination, proto.SerializeToString())

    info: dict[str, Any] = (
        {"weights": RANDOM, "seed": seed}
        if not weights
        else {
            "weights": "imagenet" if weights == "imagenet" else "keras-weights-file",
            "weights_path": weights,
        }
    )
    import keras

    info.update(
        framework=f"tensorflow {tf.__version__}, keras {keras.__version__}, tf2onnx {tf2onnx.__version__}",
        opset=OPSET,
        outputs="probabilities",
        keras_model=keras_path.name,
    )
    write_provenance(artifacts_dir, NETWORK.name, info)

    import onnxruntime as ort

    x = np.random.default_rng(0).uniform(-120, 150, (2, size, size, 3)).astype(np.float32)
    expected = model.predict_on_batch(x)
    session = ort.InferenceSession(str(destination), providers=["CPUExecutionProvider"])
    (got,) = session.run([NETWORK.output_name], {NETWORK.input_name: x})
    log.info(
        "%s: exported in %.0f s; ONNX Runtime vs Keras max |p diff| = %.2e (batch 2)",
        NETWORK.name,
        time.monotonic() - started,
        float(np.abs(got - expected).max()),
    )
    return destination


def _rename_io(proto: Any, input_name: str, output_name: str) -> None:
    """Give the graph the tensor names the Triton config uses (tf2onnx keeps Keras' names)."""
    if len(proto.graph.input) != 1 or len(proto.graph.output) != 1:
        raise RuntimeError("expected a single-input, single-output Keras model")
    renames = {proto.graph.input[0].name: input_name, proto.graph.output[0].name: output_name}
    for old, new in renames.items():
        if old == new:
            continue
        for node in proto.graph.node:
            node.input[:] = [new if name == old else name for name in node.input]
            node.output[:] = [new if name == old else name for name in node.output]
    proto.graph.input[0].name = input_name
    proto.graph.output[0].name = output_name


def _reference_in_tf(model_file: Path, pixels_file: Path, output: Path) -> None:
    """Keras' own preprocessing and prediction for uint8 RGB pixels (N, H, W, 3) -> npz."""
    import keras
    import numpy as np

    pixels = np.load(pixels_file)
    preprocessed = keras.applications.resnet.preprocess_input(pixels.astype(np.float32))
    model = keras.models.load_model(model_file, compile=False)
    probabilities = model.predict_on_batch(preprocessed)
    np.savez(output, preprocessed=np.asarray(preprocessed), probabilities=np.asarray(probabilities))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="export ResNet152 to ONNX (needs TensorFlow)")
    exp.add_argument("--weights", help="'imagenet' (downloads) or a Keras weights file; default: random")
    exp.add_argument("--artifacts", type=Path, default=ARTIFACTS_DIR, help="artifacts folder")
    exp.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed for random weights")
    ref = sub.add_parser("reference", help="Keras preprocess_input + predict on uint8 pixels (parity)")
    ref.add_argument("--model-file", type=Path, default=keras_model_path(ARTIFACTS_DIR))
    ref.add_argument("--pixels", type=Path, required=True, help=".npy uint8 (N, H, W, 3) RGB")
    ref.add_argument("--output", type=Path, required=True, help=".npz with preprocessed, probabilities")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    try:
        import tensorflow  # noqa: F401
    except ImportError:
        if os.environ.get(_IN_TF_VENV):
            raise TensorFlowVenvError(f"{sys.executable} cannot import tensorflow") from None
        log.info("TensorFlow is not importable here: delegating to the TensorFlow venv")
        forwarded = list(argv if argv is not None else sys.argv[1:])
        result = run_in_tf_venv(forwarded)
        sys.stdout.write(result.stdout)
        return
    if args.command == "export":
        path = _export_in_tf(args.artifacts, args.weights, args.seed)
        print(f"wrote {path}")
    else:
        _reference_in_tf(args.model_file, args.pixels, args.output)


if __name__ == "__main__":
    main()
