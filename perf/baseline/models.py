"""Train the FAQ models the baseline scoring scripts load, as Azure ML would register them: each
saved with joblib into its own model folder, reused while the data and the code it was trained
from are unchanged (the pairwise model takes minutes to train)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import joblib

from faq.data import FaqDataset, load_dataset
from serving.paths import REPO_ROOT

log = logging.getLogger(__name__)

MODEL_FILE, FINGERPRINT_FILE = "model.joblib", "fingerprint.json"
KINDS = ("faq_pairwise", "faq_sklearn")


def fingerprint(kind: str, options: dict[str, Any] | None = None) -> str:
    """The data set and the FAQ pipeline's code (``faq.specs.fingerprint``), the pairwise
    model's own code, and the training options."""
    from faq.specs import fingerprint as pipeline

    code = (REPO_ROOT / "faq" / "baseline.py").read_text() if kind == "faq_pairwise" else ""
    parts = (kind, pipeline(), code, json.dumps(options or {}, sort_keys=True))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def fit(kind: str, ds: FaqDataset, **options: Any) -> dict[str, Any]:
    """The object a scoring script loads: the fitted model and the originals to answer with."""
    if kind == "faq_pairwise":
        from faq.baseline import PairwiseBaseline

        model: Any = PairwiseBaseline.fit(ds, ds.duplicates, **options)
    elif kind == "faq_sklearn":
        from faq.model import FaqModel

        model = FaqModel.fit(ds)
    else:
        raise ValueError(f"unknown baseline model {kind!r}; choose from {KINDS}")
    originals = ds.originals.set_index("faq_id")[["question", "answer"]]
    return {"kind": kind, "model": model, "originals": originals}


def prepare(
    kind: str, root: Path, *, ds: FaqDataset | None = None, force: bool = False, **options: Any
) -> Path:
    """Return ``root/kind`` holding a trained model, training it only when needed (always for
    a data set ``ds`` given here, which the fingerprint does not cover)."""
    folder, stamp = Path(root) / kind, Path(root) / kind / FINGERPRINT_FILE
    wanted = fingerprint(kind, options) if ds is None else None
    kept = stamp.exists() and (folder / MODEL_FILE).exists() and json.loads(stamp.read_text())
    if not force and wanted and kept and kept.get("fingerprint") == wanted:
        log.info("reusing %s from %s", kind, folder)
        return folder
    log.info("training %s%s", kind, " (minutes on 2 cores)" if kind == "faq_pairwise" else "")
    payload = fit(kind, ds if ds is not None else load_dataset(), **options)
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(payload, folder / MODEL_FILE)
    stamp.write_text(json.dumps({"fingerprint": wanted, "kind": kind, "options": options}))
    return folder


def load(model_dir: Path) -> dict[str, Any]:
    return joblib.load(Path(model_dir) / MODEL_FILE)
