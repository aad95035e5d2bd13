"""Numbered model versions in a Triton repository, and switching an ensemble between them under
traffic with no failed request and no request that mixes versions.

A release of an ensemble writes version folder ``<step>/<n>/`` into each step it changes. Which
version serves is written in the configs themselves (``version_policy: specific`` on each step,
``model_version`` on the ensemble's steps), so a server that restarts serves what was promoted.
A switch goes in three phases; each config is written to disk before Triton is asked to load it
(after the ensemble is loaded once with the serving versions pinned, should it still say "latest"):

1. every changed step gets both versions (``specific [old, new]``): the old one keeps serving;
2. the ensemble pins the new versions: every request that enters it from then on runs wholly on
   them, while requests already inside the old ensemble finish on the old versions;
3. after ``drain_s``, every changed step keeps only the new version, and Triton unloads the old one
   once its in-flight requests are done.

If a load fails, the previous configs are written back and loaded again: the version that was
serving goes on serving, and the error says what Triton refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

Loader = Callable[[str], None]
"""Asks the running server to load a model from the repository (None: no server to tell)."""
HISTORY_FILE = "releases.json"  # in the ensemble's folder, beside config.pbtxt (Triton ignores it)
DRAIN_S = 5.0  # longer than a request spends in the ensemble (queue timeouts are 1 s)


class VersionError(RuntimeError):
    """A version that does not exist, or a switch that Triton refused (the old one still serves)."""


def read_config(repository: Path, model: str) -> mc.ModelConfig:
    return text_format.Parse((repository / model / "config.pbtxt").read_text(), mc.ModelConfig())


def write_config(repository: Path, config: mc.ModelConfig) -> None:
    """Atomically: a server (re)starting at any moment reads either the old or the new config."""
    path = repository / config.name / "config.pbtxt"
    temporary = path.with_name(".config.pbtxt.tmp")
    temporary.write_text(text_format.MessageToString(config))
    os.replace(temporary, path)


def on_disk(repository: Path, model: str) -> list[int]:
    """The version folders of ``model``, in order."""
    folder = repository / model
    return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())


def served(repository: Path, ensemble: str) -> dict[str, int]:
    """The version of each step the ensemble's config pins (the newest on disk where it says -1)."""
    config = read_config(repository, ensemble)
    return {
        step.model_name: step.model_version
        if step.model_version > 0
        else on_disk(repository, step.model_name)[-1]
        for step in config.ensemble_scheduling.step
    }


def pin_served(repository: Path, ensemble: str) -> dict[str, int]:
    """Write down what serves now, explicitly (step policies and ensemble pins), before a new
    version folder appears: Triton's default policy would otherwise serve the newest folder at
    the next start, promoted or not. Only configs change; the server needs no load."""
    current = served(repository, ensemble)
    for model, version in current.items():
        write_config(repository, _keep(repository, model, [version]))
    write_config(repository, _pin(repository, ensemble, current))
    return current


def restore(repository: Path, ensemble: str) -> None:
    """After a re-render (``make build``): serve again what the history says was promoted last."""
    if entries := history(repository, ensemble):
        versions = {m: int(v) for m, v in entries[-1]["versions"].items()}
        for model, version in versions.items():
            write_config(repository, _keep(repository, model, [version]))
        write_config(repository, _pin(repository, ensemble, versions))


def next_version(repository: Path, models: list[str]) -> int:
    """One number for a release across all the steps it changes: above every existing folder."""
    return 1 + max((v for model in models for v in on_disk(repository, model)), default=0)


def _keep(repository: Path, model: str, versions: list[int]) -> mc.ModelConfig:
    config = read_config(repository, model)
    config.version_policy.specific.ClearField("versions")
    config.version_policy.specific.versions.extend(sorted(set(versions)))
    return config


def _pin(repository: Path, ensemble: str, versions: dict[str, int]) -> mc.ModelConfig:
    config = read_config(repository, ensemble)
    for step in config.ensemble_scheduling.step:
        if step.model_name in versions:
            step.model_version = versions[step.model_name]
    return config


def switch(
    repository: Path,
    ensemble: str,
    target: dict[str, int],
    load: Loader | None = None,
    drain_s: float = DRAIN_S,
    note: str = "",
) -> dict[str, int]:
    """Serve ``target`` (step -> version) through ``ensemble``; returns what served before."""
    before = served(repository, ensemble)
    if not history(repository, ensemble):
        record(repository, ensemble, before, "serving before the first switch")
    unknown = [f"{m} {v}" for m, v in target.items() if m not in before or v not in on_disk(repository, m)]
    if unknown:
        raise VersionError(f"{ensemble}: no such step version: {', '.join(unknown)}")
    changed = {m: v for m, v in target.items() if before[m] != v}
    originals = [read_config(repository, m) for m in [ensemble, *changed]]
    try:
        # The loaded ensemble may still say "latest" (-1): Triton reloads an ensemble with its
        # steps, and "latest" would pick up each step's new version one step at a time.
        _apply(repository, _pin(repository, ensemble, before), load)
        for model, version in changed.items():
            _apply(repository, _keep(repository, model, [before[model], version]), load)
        _apply(repository, _pin(repository, ensemble, target), load)
    except Exception as exc:  # the old versions are all still loaded: put everything back
        for config in originals:
            write_config(repository, config)
            if load is not None:
                with contextlib.suppress(Exception):  # already failing: report the first error
                    load(config.name)
        raise VersionError(f"{ensemble}: switching to {target} failed, {before} still serves: {exc}") from exc
    time.sleep(drain_s if load and changed else 0)
    for model, version in changed.items():  # the new versions serve; a failure here only leaves
        _apply(repository, _keep(repository, model, [version]), load)  # an old version loaded
    record(repository, ensemble, served(repository, ensemble), note)
    return before


def _apply(repository: Path, config: mc.ModelConfig, load: Loader | None) -> None:
    write_config(repository, config)
    if load is not None:
        load(config.name)


def running_loader(repository: Path) -> Loader | None:
    """The load call of the server that ``python -m serving serve`` runs on ``repository`` (its
    state file holds the admin key), or None when none runs there."""
    from serving.paths import read_state
    from serving.triton import Ports, TritonServer, pid_alive

    state = read_state()
    if (
        not state
        or state.get("repository") != str(repository.resolve())
        or not pid_alive(state["triton_pid"])
    ):
        return None
    return TritonServer(repository, Ports(state["triton_http"]), admin_key=state["admin_key"]).load


def history(repository: Path, ensemble: str) -> list[dict]:
    """Every switch of ``ensemble``, oldest first: when, to which versions, and why."""
    path = repository / ensemble / HISTORY_FILE
    return json.loads(path.read_text()) if path.exists() else []


def record(repository: Path, ensemble: str, versions: dict[str, int], note: str) -> None:
    entries = history(repository, ensemble)
    entries.append(
        {"at": datetime.now(UTC).isoformat(timespec="seconds"), "versions": versions, "note": note}
    )
    path = repository / ensemble / HISTORY_FILE
    temporary = path.with_name(f".{HISTORY_FILE}.tmp")
    temporary.write_text(json.dumps(entries, indent=1))
    os.replace(temporary, path)


def previous(repository: Path, ensemble: str) -> dict[str, int]:
    """What served before the current versions (the target of a rollback)."""
    current = served(repository, ensemble)
    for entry in reversed(history(repository, ensemble)):
        if entry["versions"] != {m: current[m] for m in entry["versions"]}:
            return {m: int(v) for m, v in entry["versions"].items()}
    raise VersionError(f"{ensemble}: no earlier version to roll back to")
