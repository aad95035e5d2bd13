"""The FAQ model specs: one ensemble, K set once, artifacts named after the data they came from."""

from __future__ import annotations

from faq import specs
from faq.specs import MATCH, MODELS, POSTPROCESS, PREPROCESS, TOP_K
from serving.render import validate


def test_faq_match_interface_is_the_published_one() -> None:
    assert MATCH.kind == "ensemble" and MATCH.max_batch_size > 0
    assert [(t.name, t.data_type, t.dims) for t in MATCH.inputs] == [("TEXT", "TYPE_STRING", (1,))]
    assert [(t.name, t.data_type, t.dims) for t in MATCH.outputs] == [
        ("FAQ_ID", "TYPE_INT64", (TOP_K,)),
        ("SCORE", "TYPE_FP32", (TOP_K,)),
        ("FAQ_QUESTION", "TYPE_STRING", (TOP_K,)),
        ("FAQ_ANSWER", "TYPE_STRING", (TOP_K,)),
        ("MATCHED", "TYPE_BOOL", (1,)),  # an addition: the first four are unchanged for old clients
    ]


def test_top_k_and_text_limit_reach_the_python_models_as_parameters() -> None:
    assert POSTPROCESS.parameters["TOP_K"] == str(TOP_K)
    assert PREPROCESS.parameters["MAX_TEXT_BYTES"] == str(specs.MAX_TEXT_BYTES)


def test_specs_validate_and_every_step_batches_dynamically() -> None:
    validate(MODELS)
    for spec in MODELS:
        if spec.kind != "ensemble":
            assert spec.dynamic_batching is not None, spec.name
            assert spec.max_batch_size >= MATCH.max_batch_size


def test_artifacts_are_under_the_data_fingerprint() -> None:
    fp = specs.fingerprint()
    assert len(fp) == 12 and fp == specs.fingerprint()  # stable
    assert f"faq/{fp}" == specs.ARTIFACT_DIR
    assert POSTPROCESS.extra_files[specs.TABLE_FILE].startswith(specs.ARTIFACT_DIR)


def test_fingerprint_changes_with_the_data(tmp_path, monkeypatch) -> None:
    import shutil

    import faq
    import faq.data

    for name in faq.data.FILES:
        shutil.copy(faq.data.DEFAULT_DATA_DIR / name, tmp_path / name)
    monkeypatch.setattr(faq, "DATASET_DIR", tmp_path)
    same = specs.fingerprint()
    (tmp_path / faq.data.FILES[0]).write_bytes(b"changed")
    assert specs.fingerprint() != same
