"""Switching an ensemble between numbered versions: the order of config writes and loads that
keeps every request wholly on one version, the way back when Triton refuses a load, and the
history a rollback reads. Triton itself is stood in for by a loader that records what it saw."""

from __future__ import annotations

from pathlib import Path

import pytest

from faq.specs import MODELS
from serving.render import build_config, to_pbtxt
from serving.versions import (
    VersionError,
    history,
    next_version,
    on_disk,
    pin_served,
    previous,
    read_config,
    restore,
    served,
    switch,
)

STEPS = ["faq_preprocess", "faq_classifier", "faq_postprocess"]


@pytest.fixture()
def repository(tmp_path: Path) -> Path:
    for spec in MODELS:
        (tmp_path / spec.name / "1").mkdir(parents=True)
        (tmp_path / spec.name / "config.pbtxt").write_text(to_pbtxt(build_config(spec, "cpu")))
    return tmp_path


def add_version(
    repository: Path, version: int, models: tuple[str, ...] = ("faq_classifier", "faq_postprocess")
) -> None:
    for model in models:
        (repository / model / str(version)).mkdir()


class Recorder:
    """A loader that notes each load with what the config on disk said at that moment."""

    def __init__(self, repository: Path, refuse: str = "") -> None:
        self.repository, self.refuse, self.loads = repository, refuse, []

    def __call__(self, model: str) -> None:
        config = read_config(self.repository, model)
        if config.platform == "ensemble":
            seen = {s.model_name: s.model_version for s in config.ensemble_scheduling.step}
        else:
            seen = list(config.version_policy.specific.versions)
        self.loads.append((model, seen))
        if model == self.refuse:
            raise RuntimeError(f"Triton refused {model}")


def test_without_pins_the_newest_folder_serves_and_pinning_writes_it_down(repository: Path) -> None:
    assert served(repository, "faq_match") == dict.fromkeys(STEPS, 1)
    pin_served(repository, "faq_match")
    add_version(repository, 2)
    assert served(repository, "faq_match") == dict.fromkeys(STEPS, 1)  # a new folder is not promoted
    assert list(read_config(repository, "faq_classifier").version_policy.specific.versions) == [1]
    assert next_version(repository, ["faq_classifier", "faq_postprocess"]) == 3


def test_a_switch_loads_both_versions_then_the_ensemble_then_drops_the_old_ones(repository: Path) -> None:
    pin_served(repository, "faq_match")
    add_version(repository, 2)
    loader = Recorder(repository)
    before = switch(repository, "faq_match", {"faq_classifier": 2, "faq_postprocess": 2}, loader, drain_s=0)
    assert before == dict.fromkeys(STEPS, 1)
    new = {"faq_preprocess": 1, "faq_classifier": 2, "faq_postprocess": 2}
    assert loader.loads == [
        ("faq_match", before),  # the serving versions pinned first, should it say "latest"
        ("faq_classifier", [1, 2]),
        ("faq_postprocess", [1, 2]),
        ("faq_match", new),
        ("faq_classifier", [2]),
        ("faq_postprocess", [2]),
    ]
    assert served(repository, "faq_match") == new
    assert [e["versions"] for e in history(repository, "faq_match")] == [before, new]
    assert previous(repository, "faq_match") == before


def test_a_refused_load_puts_every_config_back_and_the_old_version_serves(repository: Path) -> None:
    pin_served(repository, "faq_match")
    add_version(repository, 2)
    configs = {m: (repository / m / "config.pbtxt").read_text() for m in ("faq_match", *STEPS)}
    loader = Recorder(repository, refuse="faq_match")
    with pytest.raises(VersionError, match=r"still serves.*Triton refused faq_match"):
        switch(repository, "faq_match", {"faq_classifier": 2, "faq_postprocess": 2}, loader, drain_s=0)
    assert {m: (repository / m / "config.pbtxt").read_text() for m in configs} == configs
    assert loader.loads[-3:] == [
        ("faq_match", dict.fromkeys(STEPS, 1)),
        ("faq_classifier", [1]),
        ("faq_postprocess", [1]),
    ]
    assert served(repository, "faq_match") == dict.fromkeys(STEPS, 1)
    assert len(history(repository, "faq_match")) == 1  # only the starting point


def test_unknown_versions_and_a_rollback_with_no_past_are_refused(repository: Path) -> None:
    with pytest.raises(VersionError, match="no such step version: faq_classifier 7"):
        switch(repository, "faq_match", {"faq_classifier": 7}, drain_s=0)
    with pytest.raises(VersionError, match="no earlier version"):
        previous(repository, "faq_match")


def test_a_rollback_returns_and_a_rebuild_keeps_released_versions_serving(repository: Path) -> None:
    pin_served(repository, "faq_match")
    add_version(repository, 2)
    switch(repository, "faq_match", {"faq_classifier": 2, "faq_postprocess": 2}, drain_s=0)
    switch(repository, "faq_match", previous(repository, "faq_match"), drain_s=0, note="rollback")
    assert served(repository, "faq_match") == dict.fromkeys(STEPS, 1)
    assert previous(repository, "faq_match")["faq_classifier"] == 2
    switch(repository, "faq_match", previous(repository, "faq_match"), drain_s=0)
    for spec in MODELS:  # what write_model does to the configs on a re-render
        (repository / spec.name / "config.pbtxt").write_text(to_pbtxt(build_config(spec, "cpu")))
    restore(repository, "faq_match")
    assert served(repository, "faq_match")["faq_classifier"] == 2
    assert list(read_config(repository, "faq_postprocess").version_policy.specific.versions) == [2]
    assert on_disk(repository, "faq_classifier") == [1, 2]
