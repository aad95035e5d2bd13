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
each recorded on its own held-out split are compared instead. Not worse means Acc@1 and Acc@3 at
most ``--tolerance`` below. The report says which comparison decided and why.

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

from faq.specs import CLASSIFIER_FILE, MODEL_NAME, PROVENANCE_FILE, TABLE_FILE, TOP_K
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


def _accuracy(session_file: Path, table_file: Path, texts: list[str], truth: np.ndarray) -> dict[str, float]:
    """Acc@1/Acc@3 of a served version's own files on cleaned ``texts``; an original it does not
    know counts as a miss."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(session_file), providers=["CPUExecutionProvider"])
    faq_ids = np.asarray(json.loads(table_file.read_text())["faq_id"])
    scores = session.run(None, {"TEXT": np.array(texts, dtype=object).reshape(-1, 1)})[0]
    top = faq_ids[np.argsort(-scores, axis=1, kind="stable")[:, :3]]
    return {"acc1": float((top[:, 0] == truth).mean()), "acc3": float((top == truth[:, None]).any(1).mean())}


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
        proba = recipe.predict_proba_clean(texts)
        top = recipe.faq_ids[np.argsort(-proba, axis=1, kind="stable")[:, :3]]
        mine = {
            "acc1": float((top[:, 0] == truth).mean()),
            "acc3": float((top == truth[:, None]).any(1).mean()),
        }
        theirs = _accuracy(classifier / ONNX_FILE, postprocess / TABLE_FILE, texts, truth)
        basis = f"on {len(shared)} held-out questions of the new data that neither model was trained on"
    else:
        mine, theirs = candidate["held_out"], incumbent.get("held_out") or {"acc1": 0.0, "acc3": 0.0}
        basis = (
            f"on each model's own held-out split (only {len(shared)} new held-out questions were "
            f"unseen by the serving model, fewer than {MIN_SHARED})"
        )
    worse = [k for k in ("acc1", "acc3") if mine[k] < theirs[k] - tolerance]
    figures = ", ".join(f"{k} {mine[k]:.3f} vs {theirs[k]:.3f}" for k in ("acc1", "acc3"))
    if worse:
        reason = f"not promoted: {' and '.join(worse)} more than {tolerance:.3f} below the serving version's"
    else:
        reason = f"promoted: not worse than the serving version (tolerance {tolerance:.3f})"
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


def register(ds: object, repository: Path, source: str, tolerance: float) -> tuple[int, Verdict, dict]:
    """Train on ``ds``, compare with the serving version, write the next version folders (not
    served yet); returns (version, verdict, provenance)."""
    from export.faq_onnx import write_model

    current = pin_served(repository, MODEL_NAME)
    version = next_version(repository, [CLASSIFIER, POSTPROCESS])
    with tempfile.TemporaryDirectory(prefix="faq-release-") as scratch:
        provenance = write_model(ds, Path(scratch), source)  # type: ignore[arg-type]
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
    version, verdict, provenance = register(ds, repository, str(data or "shipped data set"), tolerance)
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
