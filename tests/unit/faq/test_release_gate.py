"""The promotion gate: side by side on held-out questions neither model saw when there are
enough, on each model's recorded held-out figures otherwise; a worse model is not promoted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from export.faq_onnx import write_model
from faq.data import FaqDataset, load_dataset
from faq.release import CLASSIFIER, POSTPROCESS, judge, write_version

SERVING = {CLASSIFIER: 1, POSTPROCESS: 1}


def serving_repository(tmp_path: Path, ds: FaqDataset) -> Path:
    repository = tmp_path / "repository"
    for model in SERVING:
        (repository / model).mkdir(parents=True)
    write_model(ds, tmp_path / "built", "test")
    write_version(repository, tmp_path / "built", 1, {CLASSIFIER: 0, POSTPROCESS: 0})  # no model.py
    return repository


@pytest.fixture(scope="module")
def shipped() -> FaqDataset:
    return load_dataset()


def test_the_same_data_again_is_judged_on_recorded_figures_and_promoted(
    tmp_path: Path, shipped: FaqDataset
) -> None:
    repository = serving_repository(tmp_path, shipped)
    candidate = write_model(shipped, tmp_path / "candidate", "test")
    verdict = judge(candidate, repository, SERVING, shipped, tolerance=0.0)
    assert verdict.promote and "own held-out split" in verdict.reason
    assert verdict.candidate == verdict.serving


def test_a_model_trained_on_scrambled_labels_is_not_promoted(tmp_path: Path, shipped: FaqDataset) -> None:
    repository = serving_repository(tmp_path, shipped)
    labels = np.random.default_rng(0).permutation(shipped.duplicates["faq_id"].to_numpy())
    scrambled = FaqDataset(shipped.originals, shipped.duplicates.assign(faq_id=labels))
    candidate = write_model(scrambled, tmp_path / "candidate", "test")
    verdict = judge(candidate, repository, SERVING, scrambled, tolerance=0.01)
    assert not verdict.promote and verdict.reason.startswith("not promoted: acc1")
    assert verdict.candidate["acc1"] < verdict.serving["acc1"] - 0.01


def test_new_duplicates_the_serving_model_never_saw_are_compared_side_by_side(
    tmp_path: Path, shipped: FaqDataset
) -> None:
    older = FaqDataset(shipped.originals, shipped.duplicates.iloc[::2].reset_index(drop=True))
    repository = serving_repository(tmp_path, older)
    candidate = write_model(shipped, tmp_path / "candidate", "test")
    verdict = judge(candidate, repository, SERVING, shipped, tolerance=0.01)
    assert "neither model was trained on" in verdict.reason
    assert verdict.promote, verdict.reason  # more duplicates: at least as good on unseen wordings
