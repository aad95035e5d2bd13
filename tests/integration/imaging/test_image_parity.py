"""ONNX Runtime against each framework on real photos: within 1e-4 on probabilities.

The exports are cached under build/artifacts (shared with the repository build), so each
ResNet-152 is exported at most once per checkout. The Keras side runs in ``.venv-tf``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from export.build_repository import ensure_artifacts
from export.resnet_keras import export as export_keras
from export.resnet_keras import keras_model_path, run_in_tf_venv
from imaging.artifacts import onnx_path, read_provenance
from imaging.labels import DOMESTIC_CAT_IDS, ESPRESSO_ID
from imaging.networks import NETWORKS, Network
from imaging.postprocess import softmax
from imaging.preprocess import decode_image, normalize, prepare_rgb, preprocess_batch
from imaging.samples import sample_bytes
from imaging.specs import MODELS
from serving.paths import ARTIFACTS_DIR

pytestmark = pytest.mark.slow
PHOTOS = ("coffee", "chelsea")
PROBABILITY_ATOL = 1e-4


def exported(network: Network) -> Path:
    """The network's ONNX file, exported now if the cache does not have it."""
    ensure_artifacts([s for s in MODELS if s.name == f"{network.name}_network"], ARTIFACTS_DIR)
    return onnx_path(ARTIFACTS_DIR, network.name)


def run_onnx(path: Path, network: Network, batch: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run([network.output_name], {network.input_name: batch})
    return out


def photos(network: Network) -> np.ndarray:
    return preprocess_batch([sample_bytes(name) for name in PHOTOS], network.preprocess)


def torch_parity(name: str) -> tuple[np.ndarray, np.ndarray]:
    network = NETWORKS[name]
    path = exported(network)
    info = read_provenance(ARTIFACTS_DIR, name)
    if name == "efficientnet_lite0":
        from export.efficientnet import model_from_provenance
    else:
        from export.resnet_torch import model_from_provenance
    model = model_from_provenance(info)
    batch = photos(network)
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).numpy()
    got = run_onnx(path, network, batch)
    # logits: relative to their scale (a random ResNet-152 reaches ~1e8)
    scale = float(np.abs(expected).max())
    assert float(np.abs(got - expected).max()) <= 1e-4 * max(scale, 1.0)
    p_expected, p_got = softmax(expected), softmax(got)
    diff = float(np.abs(p_got - p_expected).max())
    logit_diff = float(np.abs(got - expected).max())
    print(f"{name}: max |p_onnx - p_torch| = {diff:.2e}, max |logit diff| = {logit_diff:.2e}")
    assert diff <= PROBABILITY_ATOL
    # dynamic batch: one image alone gives what it gave inside the batch
    np.testing.assert_allclose(run_onnx(path, network, batch[:1]), got[:1], rtol=1e-4, atol=1e-4 * scale)
    return p_expected, p_got


def test_efficientnet_onnx_matches_pytorch_on_real_photos() -> None:
    p_torch, p_onnx = torch_parity("efficientnet_lite0")
    for probs in (p_torch, p_onnx):
        assert int(probs[0].argmax()) == ESPRESSO_ID  # coffee.png
        assert int(probs[1].argmax()) in DOMESTIC_CAT_IDS  # chelsea.png


def test_resnet152_pytorch_onnx_matches_pytorch_on_real_photos() -> None:
    p_torch, p_onnx = torch_parity("resnet152_pytorch")
    np.testing.assert_array_equal(p_torch.argmax(axis=1), p_onnx.argmax(axis=1))


def test_resnet152_keras_onnx_matches_keras_on_real_photos(tmp_path: Path) -> None:
    network = NETWORKS["resnet152_tensorflow"]
    path = exported(network)
    keras_file = keras_model_path(ARTIFACTS_DIR)
    if not keras_file.is_file():  # an ONNX file without its Keras model: export both again
        info = read_provenance(ARTIFACTS_DIR, network.name)
        weights = None if info["weights"] == "random" else info.get("weights_path", "imagenet")
        export_keras(ARTIFACTS_DIR, weights, int(info.get("seed", 0)))
    pixels = np.stack([prepare_rgb(decode_image(sample_bytes(n)), network.preprocess) for n in PHOTOS])
    np.save(tmp_path / "pixels.npy", pixels)
    run_in_tf_venv(
        ["reference", "--model-file", str(keras_file), "--pixels", str(tmp_path / "pixels.npy"),
         "--output", str(tmp_path / "reference.npz")],
        timeout=900,
    )  # fmt: skip
    reference = np.load(tmp_path / "reference.npz")
    ours = np.stack([normalize(p, network.preprocess) for p in pixels])
    # our caffe preprocessing is Keras' preprocess_input
    np.testing.assert_allclose(ours, reference["preprocessed"], atol=1e-4)
    got = run_onnx(path, network, ours)
    expected = reference["probabilities"]
    diff = float(np.abs(got - expected).max())
    print(f"resnet152_tensorflow: max |p_onnx - p_keras| = {diff:.2e}")
    assert got.shape == expected.shape == (2, 1000)
    assert diff <= PROBABILITY_ATOL
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))
