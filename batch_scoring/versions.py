"""Model versions: immutable prefixes, one pointer, a gate before it moves, and a rollback.

``models/v=<id>/`` holds a version's ONNX files and its manifest; ``models/manifest.json`` is the
pointer, a copy of the serving version's manifest, replaced in one write. Scoring reads it once
per run and follows the blob names inside it, which all lie in that version's prefix, so a
training that lands during a run changes nothing the run reads.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime

from batch_scoring.model import pooled
from batch_scoring.schema import MODEL_MANIFEST
from batch_scoring.storage import Container, MissingBlob

VERSION_MANIFEST = "v={version}/" + MODEL_MANIFEST


def new_version() -> str:
    """Sortable by time, unique across concurrent trainings."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def serving(models: Container) -> dict | None:
    """The serving version's manifest (None before the first training)."""
    try:
        return json.loads(models.read_bytes(MODEL_MANIFEST))
    except MissingBlob:
        return None


def gate(candidate: dict, current: dict | None, tolerance: float = 0.02) -> tuple[bool, str]:
    """Whether ``candidate`` may replace ``current``, and why. Compared side by side: each new
    model's held-out readings were also scored by the serving model of the same series."""
    if candidate["errors"]:
        return False, f"{len(candidate['errors'])} series failed to train"
    if not candidate["models"]:
        return False, "no model was trained"
    if current is None:
        return True, "the first version"
    pairs = [
        e["metrics"] for e in candidate["models"].values() if e.get("metrics") and "serving" in e["metrics"]
    ]
    if not pairs:
        return True, "no labelled held-out readings that both versions scored"
    new, old = pooled(pairs), pooled(m["serving"] for m in pairs)
    verdict = (
        f"F1 {new['f1']:.3f} against the serving version's {old['f1']:.3f} on the same held-out readings"
    )
    if new["f1"] < old["f1"] - tolerance:
        return False, f"{verdict}: worse by more than {tolerance}"
    return True, verdict


def publish(models: Container, manifest: dict) -> None:
    """Point scoring at ``manifest``'s version (one write of the pointer)."""
    models.write_bytes(MODEL_MANIFEST, json.dumps(manifest, indent=1).encode())


def versions(models: Container) -> list[str]:
    """Every version written, oldest first (refused ones included: they are kept, not served)."""
    names = models.list("v=")
    return sorted({n.split("/")[0].removeprefix("v=") for n in names if n.endswith("/" + MODEL_MANIFEST)})


def rollback(models: Container, to: str | None = None) -> dict:
    """Serve version ``to``, or the one the serving version replaced; returns its manifest."""
    current = serving(models)
    target = to or (current or {}).get("previous")
    if not target:
        raise ValueError("no earlier version to roll back to")
    try:
        manifest = json.loads(models.read_bytes(VERSION_MANIFEST.format(version=target)))
    except MissingBlob:
        raise ValueError(f"no version {target!r} (have: {', '.join(versions(models)) or 'none'})") from None
    if not manifest.get("gate", {}).get("passed", True) and to is None:
        raise ValueError(f"version {target} was refused by the gate; name it to serve it anyway")
    publish(models, {**manifest, "previous": (current or {}).get("version")})
    return manifest
