"""Release the FAQ matcher as a new numbered version, and roll it out or back without downtime.

    python -m faq.release new [--data DIR]     # train, compare, write version N, promote if not worse
    python -m faq.release list                 # every version: when, from what, how good, serving?
    python -m faq.release rollback             # back to the version that served before
    python -m faq.release promote N            # serve version N (a rejected one too, on purpose)

``new`` trains the served recipe (:mod:`faq.model`) on a data set (the shipped one by default)
and writes it as version N of ``faq_classifier`` and ``faq_postprocess`` (model, FAQ table,
provenance) in the model repository. It is promoted only if it is not worse than the version
serving now: both are measured on held-out duplicates of the new data that neither was trained
on (the candidate's recipe trained without them; the serving model as it is, minus every text its
provenance says it saw); where fewer than :data:`MIN_SHARED` such questions remain, the figures
each recorded on its own held-out split are compared instead. Worse means Acc@1 or Acc@3 lower by
more than ``--tolerance`` and by more than chance (one-sided 95%: on shared questions, McNemar's
sign of the questions one model gets and the other misses; on separate splits, the binomial
error of both). The report says which comparison decided and why.

Promotion switches ``faq_match`` under traffic (:func:`serving.versions.switch`) on the server
that ``python -m serving serve`` runs on the same repository, or only writes the configs when
none runs. Nothing is written when the data cannot be read or trained on.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from faq.specs import CLASSIFIER_FILE, MODEL_NAME, PROVENANCE_FILE, TABLE_FILE, TEXT, TOP_K
from serving.paths import MODEL_REPOSITORY_DIR
from serving.versions import (
    VersionError,
    history,
    next_version,
    on_disk,
    pin_served,
    previous,
    running_loader,
    served,
    switch,
)

CLASSIFIER, POSTPROCESS = "faq_classifier", "faq_postprocess"
MIN_SHARED = 50  # held-out questions both models never saw, for a side-by-side comparison
ONNX_FILE = "model.onnx"  # what the classifier's version folder calls the ONNX file (serving.render)
app = typer.Typer(add_completion=False, help=__doc__, no_args_is_help=True)


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str
    candidate: dict[str, float]
    serving: dict[str, float]


Z = 1.645  # one-sided 95%: a loss smaller than this many standard errors may be noise


def _hits(top: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """Per question: is the true original first (acc1), among the first three (acc3)?"""
    return {"acc1": top[:, 0] == truth, "acc3": (top[:, :3] == truth[:, None]).any(1)}


def _served_top3(classifier: Path, postprocess: Path, texts: list[str]) -> np.ndarray:
    """The three best originals of a served version's own files for cleaned ``texts``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(classifier / ONNX_FILE), providers=["CPUExecutionProvider"])
    faq_ids = np.asarray(json.loads((postprocess / TABLE_FILE).read_text())["faq_id"])
    scores = session.run(None, {TEXT: np.array(texts, dtype=object).reshape(-1, 1)})[0]
    scores = scores[:, : len(faq_ids)]  # a last column, where there is one, is the scope's
    return faq_ids[np.argsort(-scores, axis=1, kind="stable")[:, :3]]


def _paired_worse(mine: np.ndarray, theirs: np.ndarray, tolerance: float) -> bool:
    """On the same questions: the serving model right where the candidate is wrong more often
    than the reverse, by more than ``tolerance`` of them and more than chance (McNemar's sign)."""
    losses, wins = int((theirs & ~mine).sum()), int((mine & ~theirs).sum())
    return losses - wins > max(tolerance * len(mine), Z * np.sqrt(losses + wins))


def _unpaired_worse(mine: dict, theirs: dict, key: str, tolerance: float) -> bool:
    """On two different held-out sets: lower by more than ``tolerance`` and than chance."""
    p, n1, n2 = (mine[key] + theirs[key]) / 2, mine.get("n", 1), theirs.get("n", 1)
    return theirs[key] - mine[key] > max(tolerance, Z * np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2)))


def judge(
    candidate: dict, repository: Path, serving: dict[str, int], ds: object, tolerance: float
) -> Verdict:
    """Compare the candidate (its provenance) with the serving version (its folders in
    ``repository``), as the module docstring says."""
    from export.faq_onnx import held_out_split, text_hash
    from faq.model import FaqModel

    classifier = repository / CLASSIFIER / str(serving[CLASSIFIER])
    postprocess = repository / POSTPROCESS / str(serving[POSTPROCESS])
    recorded = postprocess / PROVENANCE_FILE  # absent in a version built before releases kept it
    incumbent = json.loads(recorded.read_text()) if recorded.exists() else {}
    seen = set(incumbent.get("trained_on", []))
    if (split := held_out_split(ds)) is None:  # type: ignore[arg-type]
        reason = "not promoted: the data has too few duplicates to measure it on (promote it by hand)"
        return Verdict(False, reason, {}, incumbent.get("held_out") or {})
    train, test = split
    shared = test[[text_hash(t) not in seen for t in test["text"]]]
    if len(shared) >= MIN_SHARED:
        texts, truth = list(shared["text"]), shared["faq_id"].to_numpy()
        recipe = FaqModel.fit(ds, train)  # type: ignore[arg-type]
        order = np.argsort(-recipe.predict_proba_clean(texts), axis=1, kind="stable")[:, :3]
        mine_hits = _hits(recipe.faq_ids[order], truth)
        theirs_hits = _hits(_served_top3(classifier, postprocess, texts), truth)
        mine = {k: float(v.mean()) for k, v in mine_hits.items()}
        theirs = {k: float(v.mean()) for k, v in theirs_hits.items()}
        worse = [k for k in mine_hits if _paired_worse(mine_hits[k], theirs_hits[k], tolerance)]
        basis = f"on {len(shared)} held-out questions of the new data that neither model was trained on"
    else:
        mine, theirs = candidate["held_out"], incumbent.get("held_out") or {"acc1": 0.0, "acc3": 0.0, "n": 1}
        worse = [k for k in ("acc1", "acc3") if _unpaired_worse(mine, theirs, k, tolerance)]
        basis = (
            f"on each model's own held-out split (only {len(shared)} new held-out questions were "
            f"unseen by the serving model, fewer than {MIN_SHARED})"
        )
    figures = ", ".join(f"{k} {mine[k]:.3f} vs {theirs[k]:.3f}" for k in ("acc1", "acc3"))
    if worse:
        reason = f"not promoted: {' and '.join(worse)} below the serving one's beyond chance and tolerance"
    else:
        reason = f"promoted: not worse than the serving version (tolerance {tolerance:.3f}, one-sided 95%)"
    return Verdict(not worse, f"{reason}; {figures} {basis}", mine, theirs)


def write_version(repository: Path, built: Path, version: int, serving: dict[str, int]) -> None:
    """Put the files of ``built`` (what ``export.faq_onnx.write_model`` wrote) into version folder
    ``version`` of each step, beside the same generated ``model.py`` the serving version has."""
    files = {
        CLASSIFIER: {CLASSIFIER_FILE: ONNX_FILE},
        POSTPROCESS: {TABLE_FILE: TABLE_FILE, PROVENANCE_FILE: PROVENANCE_FILE},
    }
    for model, names in files.items():
        folder, staging = repository / model / str(version), repository / model / f".{version}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        shim = repository / model / str(serving[model]) / "model.py"
        if shim.exists():
            shutil.copy2(shim, staging / "model.py")
        for source, target in names.items():
            shutil.copy2(built / source, staging / target)
        staging.rename(folder)  # Triton sees the folder whole or not at all


def register(
    ds: object, repository: Path, source: str, tolerance: float, data: Path | None = None
) -> tuple[int, Verdict, dict]:
    """Train on ``ds`` (read from ``data``, None: the shipped set), compare with the serving
    version, write the next version folders (not served yet); returns (version, verdict,
    provenance)."""
    from export.faq_onnx import write_model
    from faq.scope import off_topic_for, user_questions

    current = pin_served(repository, MODEL_NAME)
    version = next_version(repository, [CLASSIFIER, POSTPROCESS])
    users = user_questions() if data is None else []
    with tempfile.TemporaryDirectory(prefix="faq-release-") as scratch:
        provenance = write_model(ds, Path(scratch), source, off_topic_for(data), users)  # type: ignore[arg-type]
        verdict = judge(provenance, repository, current, ds, tolerance)
        write_version(repository, Path(scratch), version, current)
    return version, verdict, provenance


@app.command()
def new(
    data: Annotated[Path | None, typer.Option(help="a folder of FAQ data (default: the shipped set)")] = None,
    repository: Annotated[Path, typer.Option(help="model repository")] = MODEL_REPOSITORY_DIR,
    tolerance: Annotated[
        float, typer.Option(help="how far below the serving Acc@1/Acc@3 still counts as not worse")
    ] = 0.01,
    promote: Annotated[bool, typer.Option(help="promote when the comparison allows it")] = True,
) -> None:
    """Train, compare, write the next version, and promote it if it is not worse."""
    from faq.own_data import read_faq

    try:
        ds = read_faq(data)
        if len(ds.originals) < TOP_K:
            raise ValueError(f"{len(ds.originals)} usable originals; answering with {TOP_K} needs {TOP_K}")
    except (OSError, ValueError) as exc:
        typer.echo(f"cannot release from {data or 'the shipped data set'}: {exc}", err=True)
        raise typer.Exit(1) from None
    version, verdict, provenance = register(ds, repository, str(data or "shipped data set"), tolerance, data)
    held = provenance["held_out"]
    figures = f"held-out Acc@1 {held['acc1']:.3f} Acc@3 {held['acc3']:.3f}" if held else "no held-out figures"
    typer.echo(f"version {version}: {len(ds.originals)} originals, {figures}")
    typer.echo(f"version {version} {verdict.reason}")
    if not (verdict.promote and promote):
        raise typer.Exit(2)
    _switch(repository, {CLASSIFIER: version, POSTPROCESS: version}, f"release {version}: {verdict.reason}")


def _switch(repository: Path, target: dict[str, int], note: str) -> None:
    load = running_loader(repository)
    try:
        before = switch(repository, MODEL_NAME, target, load, note=note)
    except VersionError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    where = "on the running server" if load else "in the repository (no server runs on it)"
    typer.echo(f"{MODEL_NAME} now serves {served(repository, MODEL_NAME)} {where}; before: {before}")


@app.command()
def rollback(
    repository: Annotated[Path, typer.Option(help="model repository")] = MODEL_REPOSITORY_DIR,
) -> None:
    """Serve again the versions that served before the current ones."""
    try:
        target = previous(repository, MODEL_NAME)
    except VersionError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    _switch(repository, target, "rollback")


@app.command(name="promote")
def promote_version(
    version: int, repository: Annotated[Path, typer.Option(help="model repository")] = MODEL_REPOSITORY_DIR
) -> None:
    """Serve version ``version`` of the classifier and its FAQ table, whatever its comparison said."""
    _switch(repository, {CLASSIFIER: version, POSTPROCESS: version}, f"promoted {version} by hand")


@app.command(name="list")
def list_versions(
    repository: Annotated[Path, typer.Option(help="model repository")] = MODEL_REPOSITORY_DIR,
) -> None:
    """Every version on disk with its provenance, and which one serves."""
    serving = served(repository, MODEL_NAME)[POSTPROCESS]
    for version in on_disk(repository, POSTPROCESS):
        path = repository / POSTPROCESS / str(version) / PROVENANCE_FILE
        info = json.loads(path.read_text()) if path.exists() else {}
        held = info.get("held_out", {})
        figures = f"Acc@1 {held['acc1']:.3f} Acc@3 {held['acc3']:.3f}" if held else "no provenance"
        mark = "*" if version == serving else " "
        when, originals = info.get("created_at", "?"), info.get("originals", "?")
        typer.echo(
            f"{mark} {version:>3}  {when:25}  {originals:>5} originals  {figures}  {info.get('source', '')}"
        )
    for entry in history(repository, MODEL_NAME)[-5:]:
        typer.echo(f"  {entry['at']}  {entry['versions']}  {entry['note']}")


if __name__ == "__main__":
    app()
