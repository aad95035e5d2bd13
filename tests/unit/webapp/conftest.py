"""A fake Triton behind the web app's Backend interface, and a TestClient on the app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from webapp.app import create_app
from webapp.backend import ClassScore, FaqMatch, build_status
from webapp.errors import UserError
from webapp.settings import WebAppSettings

IMAGE_MODELS = ("efficientnet_lite0", "resnet152_pytorch", "resnet152_tensorflow")


class FakeBackend:
    """Answers like Triton would; records every call so tests can prove what reached 'Triton'."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.classified: list[tuple[str, int]] = []
        self.classify_hook: Callable[[str, bytes], list[ClassScore]] | None = None
        self.ask_hook: Callable[[str], list[FaqMatch]] | None = None
        self.status_hook: Callable[[], dict[str, Any]] | None = None

    def status(self) -> dict[str, Any]:
        if self.status_hook:
            return self.status_hook()
        return build_status(
            url="fake:8000",
            live=True,
            ready=True,
            faq_model="faq_match",
            image_models=IMAGE_MODELS,
            model_ready={"faq_match": True, **dict.fromkeys(IMAGE_MODELS, True)},
            index=[{"name": n, "version": "1", "state": "READY"} for n in ("faq_match", *IMAGE_MODELS)],
            stats={"faq_match": {"success": 3, "fail": 0, "avg_ms": 4.2, "last_inference_ms": 1}},
        )

    def ask(self, text: str, top_k: int) -> list[FaqMatch]:
        self.asked.append(text)
        if self.ask_hook:
            return self.ask_hook(text)
        return [
            FaqMatch(faq_id=100 + i, score=0.9 / (i + 1), question=f"q{i}: {text}", answer=f"a{i}")
            for i in range(top_k)
        ]

    def classify(self, model: str, image: bytes) -> list[ClassScore]:
        self.classified.append((model, len(image)))
        if self.classify_hook:
            return self.classify_hook(model, image)
        return [ClassScore(class_id=967 - i, label=f"label{i}", score=0.5 / (i + 1)) for i in range(5)]


def raise_user_error(error: UserError) -> Callable[..., Any]:
    def hook(*_: Any) -> Any:
        raise error

    return hook


@pytest.fixture
def fake_backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def settings() -> WebAppSettings:
    return WebAppSettings(triton_url="fake:8000", max_upload_bytes=4096, max_question_chars=100)


@pytest.fixture
def client(settings: WebAppSettings, fake_backend: FakeBackend) -> TestClient:
    return TestClient(create_app(settings, fake_backend))


@pytest.fixture
def unused_port() -> int:
    """A port nothing listens on (taken from the kernel, then released)."""
    from serving.triton import free_ports

    return free_ports(1)[0]
