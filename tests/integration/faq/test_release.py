"""A new FAQ version rolled out and rolled back on a real server under steady load: no request
fails, and every answer comes wholly from the old or wholly from the new version (the versions
differ in their originals, so a request mixing a classifier with another version's FAQ table
would fail or answer with ids and scores that neither version gives). A version that Triton
cannot load leaves the serving one in place."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from export.build_repository import build
from faq.data import FaqDataset, load_dataset
from faq.release import CLASSIFIER, ONNX_FILE, POSTPROCESS, register
from faq.specs import MODEL_NAME, OUTPUTS, TEXT
from serving.client import ClientError, Endpoint, infer
from serving.triton import Ports, TritonServer
from serving.versions import VersionError, previous, served, switch

QUESTIONS = [
    "how do I remove a specific item from an array",
    "why does 0.1 + 0.2 not equal 0.3 in js",
    "how to check if a key exists in an object",
    "what is the difference between let and var",
]


def answer(endpoint: Endpoint, client: object, question: str) -> tuple:
    data = {TEXT: np.array([[question.encode()]], dtype=object)}
    out = infer(endpoint, MODEL_NAME, data, list(OUTPUTS), client=client, timeout_s=30)
    ids, scores, questions, answers, matched = (out[name][0] for name in OUTPUTS)
    return (
        tuple(ids.tolist()),
        tuple(np.round(scores, 4).tolist()),
        tuple(questions.tolist()),
        tuple(answers.tolist()),
        bool(matched[0]),
    )


class Load:
    """Each question in turn, from two threads, every answer kept."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint, self.running = endpoint, True
        self.answers: list[tuple[str, tuple]] = []
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self.loop, daemon=True) for _ in range(2)]

    def loop(self) -> None:
        client, n = self.endpoint.client(), 0
        while self.running:
            question = QUESTIONS[n % len(QUESTIONS)]
            n += 1
            try:
                self.answers.append((question, answer(self.endpoint, client, question)))
            except ClientError as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.running = False
        for thread in self.threads:
            thread.join(timeout=60)


def without_one_original(ds: FaqDataset) -> FaqDataset:
    dropped = int(ds.originals["faq_id"].iloc[-1])
    return FaqDataset(
        ds.originals[ds.originals["faq_id"] != dropped].reset_index(drop=True),
        ds.duplicates[ds.duplicates["faq_id"] != dropped].reset_index(drop=True),
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    repository = tmp_path_factory.mktemp("release") / "repository"
    build("cpu", repository, only=[MODEL_NAME], with_steps=True)
    log = repository.parent / "triton.log"
    with TritonServer(repository, Ports.free(), log_path=log, admin_key="release-test-key") as server:
        yield server


def test_a_release_and_its_rollback_under_load_never_fail_or_mix_versions(server: TritonServer) -> None:
    repository, endpoint = Path(server.model_repository), Endpoint(server.http_url)
    client = endpoint.client()
    old = {q: answer(endpoint, client, q) for q in QUESTIONS}
    version, verdict, provenance = register(
        without_one_original(load_dataset()), repository, "test", tolerance=1.0
    )
    assert version == 2 and verdict.promote and provenance["originals"] == len(load_dataset().originals) - 1
    assert served(repository, MODEL_NAME)[CLASSIFIER] == 1  # written, not served yet
    with Load(endpoint) as load:
        time.sleep(2)
        switch(repository, MODEL_NAME, {CLASSIFIER: 2, POSTPROCESS: 2}, server.load, note="test release")
        time.sleep(2)
        new = {q: answer(endpoint, client, q) for q in QUESTIONS}
        switch(repository, MODEL_NAME, previous(repository, MODEL_NAME), server.load, note="test rollback")
        time.sleep(2)
    assert load.failures == []
    assert any(old[q] != new[q] for q in QUESTIONS)  # the versions answer differently
    seen = {"old": 0, "new": 0}
    for question, got in load.answers:
        assert got in (old[question], new[question]), (question, got)
        seen["old" if got == old[question] else "new"] += 1
    assert seen["new"] > 0 and seen["old"] > 0, seen
    assert {q: answer(endpoint, client, q) for q in QUESTIONS} == old  # rolled back
    assert served(repository, MODEL_NAME)[CLASSIFIER] == 1


def test_a_version_that_cannot_load_leaves_the_serving_one_answering(server: TritonServer) -> None:
    repository, endpoint = Path(server.model_repository), Endpoint(server.http_url)
    client = endpoint.client()
    before, expected = served(repository, MODEL_NAME), {q: answer(endpoint, client, q) for q in QUESTIONS}
    version, _, _ = register(load_dataset(), repository, "test", tolerance=1.0)
    (repository / CLASSIFIER / str(version) / ONNX_FILE).write_bytes(b"not an ONNX model")
    with pytest.raises(VersionError, match="still serves"):
        switch(repository, MODEL_NAME, {CLASSIFIER: version, POSTPROCESS: version}, server.load, drain_s=1)
    assert served(repository, MODEL_NAME) == before
    assert {q: answer(endpoint, client, q) for q in QUESTIONS} == expected
