"""The image ensembles' Python steps on the shared stand-in: same pixels and top-k as the clients."""

from __future__ import annotations

import numpy as np
import pytest

from ensembles.testing import Request, TritonError, TritonModelException, load_model, texts
from imaging.networks import NETWORKS
from imaging.postprocess import top_k
from imaging.preprocess import CONFIGS, preprocess_bytes
from imaging.samples import sample_bytes
from imaging.specs import CLASS_ID, LABEL, PIXELS, SCORE, SCORES, specs_for

NETWORK = NETWORKS["efficientnet_lite0"]
PRE, _, POST, _ = specs_for(NETWORK)


def test_preprocess_gives_the_clients_pixels_for_every_image() -> None:
    model = load_model(PRE)
    photos = [sample_bytes("coffee"), sample_bytes("chelsea")]
    first, second = model.execute([Request(IMAGE=texts(photos[0])), Request(IMAGE=texts(*photos))])
    assert first.error is None and second.error is None
    recipe = CONFIGS[NETWORK.preprocess.name]
    np.testing.assert_array_equal(first.outputs[PIXELS][0], preprocess_bytes(photos[0], recipe))
    assert second.outputs[PIXELS].shape == (2, *recipe.shape)


@pytest.mark.parametrize(("data", "reason"), [(b"", "IMAGE[0]"), (b"not an image", "IMAGE[0]")])
def test_a_bad_image_is_invalid_arg_and_fails_alone(data: bytes, reason: str) -> None:
    model = load_model(PRE)
    good, bad = model.execute([Request(IMAGE=texts(sample_bytes("coffee"))), Request(IMAGE=texts(data))])
    assert good.error is None
    assert bad.error.code == TritonError.INVALID_ARG and bad.error.message.startswith(reason)


def test_preprocess_refuses_a_recipe_that_does_not_fit_its_output() -> None:
    from dataclasses import replace

    wrong = replace(PRE, parameters={**PRE.parameters, "PREPROCESS": "nope"})
    with pytest.raises(TritonModelException, match="PREPROCESS='nope'"):
        load_model(wrong)


def test_postprocess_matches_top_k_over_a_dynamic_batch(tmp_path) -> None:
    (tmp_path / "1").mkdir()
    model = load_model(POST, tmp_path / "1")
    rng = np.random.default_rng(3)
    scores = [rng.standard_normal((n, 1000)).astype(np.float32) for n in (1, 3)]
    responses = model.execute([Request(**{SCORES: s}) for s in scores])
    for response, batch in zip(responses, scores, strict=True):
        ids, probabilities = top_k(batch, 5, NETWORK.outputs_logits)
        np.testing.assert_array_equal(response.outputs[CLASS_ID], ids)
        np.testing.assert_allclose(response.outputs[SCORE], probabilities)
        assert response.outputs[LABEL].shape == ids.shape
