"""The Azure ML scoring scripts of the FAQ baselines: init()/run() as azmlinfsrv calls them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from faq.data import FaqDataset, load_dataset
from faq.specs import TOP_K
from perf.baseline import models
from perf.baseline.server import SCRIPTS


@pytest.fixture(scope="module")
def small_dataset() -> FaqDataset:
    """Ten originals of the shipped data set and their duplicates (fast to train on)."""
    ds = load_dataset()
    keep = ds.originals["faq_id"].iloc[:10]
    originals = ds.originals[ds.originals["faq_id"].isin(keep)].reset_index(drop=True)
    duplicates = ds.duplicates[ds.duplicates["faq_id"].isin(keep)].reset_index(drop=True)
    return FaqDataset(originals=originals, duplicates=duplicates)


@pytest.fixture(scope="module")
def model_root(tmp_path_factory: pytest.TempPathFactory, small_dataset: FaqDataset) -> Path:
    root = tmp_path_factory.mktemp("baseline_models")
    models.prepare("faq_sklearn", root, ds=small_dataset)
    models.prepare("faq_pairwise", root, ds=small_dataset, max_features=100, max_iter=10)
    return root


def load_script(path: Path) -> ModuleType:
    """Load a scoring script by path, the way azmlinfsrv does (module name ``entry_module``)."""
    spec = importlib.util.spec_from_file_location(f"entry_module_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("kind", ["faq_sklearn", "faq_pairwise"])
def test_init_and_run_answer_top_k(
    kind: str, model_root: Path, small_dataset: FaqDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_root / kind))
    script = load_script(SCRIPTS[kind])
    script.init()
    original = small_dataset.originals.iloc[3]
    result = script.run(json.dumps({"question": original["question"]}))
    assert set(result) == {"faq_id", "score", "question", "answer"}
    assert all(len(v) == TOP_K for v in result.values())
    assert result["score"] == sorted(result["score"], reverse=True)
    assert set(result["faq_id"]) <= set(small_dataset.originals["faq_id"])
    by_id = small_dataset.originals.set_index("faq_id")
    for faq_id, question, answer in zip(result["faq_id"], result["question"], result["answer"], strict=True):
        assert by_id.loc[faq_id, "question"] == question and by_id.loc[faq_id, "answer"] == answer
    if kind == "faq_sklearn":  # the original's own wording must come first for our pipeline
        assert result["faq_id"][0] == original["faq_id"]
    json.dumps(result)  # what azmlinfsrv sends back must be JSON


@pytest.mark.parametrize("body", ["not json", "{}", '{"question": ""}', '{"question": 3}', "[1]"])
def test_bad_requests_get_400(body: str, model_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_root / "faq_sklearn"))
    script = load_script(SCRIPTS["faq_sklearn"])
    script.init()
    response = script.run(body)
    assert response.status_code == 400
    error = json.loads(response.get_data())["error"]
    assert error.startswith("body is not JSON") if body == "not json" else "question" in error


def test_init_refuses_a_folder_without_a_faq_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import joblib

    joblib.dump({"kind": "resnet"}, tmp_path / models.MODEL_FILE)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path))
    script = load_script(SCRIPTS["faq_pairwise"])
    with pytest.raises(RuntimeError, match="'resnet', not one of"):
        script.init()


def test_init_needs_the_model_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZUREML_MODEL_DIR", raising=False)
    script = load_script(SCRIPTS["faq_sklearn"])
    with pytest.raises(RuntimeError, match="AZUREML_MODEL_DIR"):
        script.init()


def test_prepare_reuses_a_model_while_inputs_are_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def counting_fit(kind: str, ds: FaqDataset, **options: object) -> dict:
        calls.append(kind)  # the caching is under test, not the training
        return {"kind": kind, "model": None, "originals": None}

    monkeypatch.setattr(models, "fit", counting_fit)
    monkeypatch.setattr(models, "load_dataset", lambda: None)
    first = models.prepare("faq_sklearn", tmp_path)
    second = models.prepare("faq_sklearn", tmp_path)
    assert first == second and calls == ["faq_sklearn"]
    models.prepare("faq_sklearn", tmp_path, force=True)
    assert calls == ["faq_sklearn", "faq_sklearn"]
    stamp = json.loads((first / models.FINGERPRINT_FILE).read_text())
    assert stamp["fingerprint"] == models.fingerprint("faq_sklearn")
    assert models.load(first)["kind"] == "faq_sklearn"
    assert models.fingerprint("faq_sklearn", options={"x": 1}) != stamp["fingerprint"]
