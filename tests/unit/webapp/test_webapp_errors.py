"""Plain-word errors, the status summary and the settings, without a server."""

from __future__ import annotations

from typing import Any

import pytest
from tritonclient.utils import InferenceServerException

from webapp.backend import TritonBackend, summarize_stats, to_class_scores, to_faq_matches
from webapp.errors import UserError, translate
from webapp.settings import WebAppSettings


def test_connection_errors_mean_server_down() -> None:
    for exc in (
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
        InferenceServerException("failed to connect to all addresses", status="StatusCode.UNAVAILABLE"),
    ):
        error = translate(exc, url="h:1", model="m", kind="image")
        assert (error.code, error.status_code) == ("server_down", 503)
        assert error.message.startswith("The scoring server is not reachable at h:1.")
    error = translate(InferenceServerException("bad input", status="400"), url="h", model="m", kind="text")
    assert error.code != "server_down"


def test_model_not_ready_and_unknown_model() -> None:
    for text in (
        "Request for unknown model: 'faq_match' is not found",
        "Request for unknown model: 'faq_match' version 1 is not at ready state",
    ):
        exc = InferenceServerException(text, status="400")
        error = translate(exc, url="h", model="faq_match", kind="text")
        assert (error.code, error.status_code) == ("model_not_ready", 503)
        assert "faq_match is not ready" in error.message
        assert error.detail and text in error.detail


def test_restricted_api_without_key() -> None:
    exc = InferenceServerException("This API is restricted, expecting header 'api-key'", status="401")
    error = translate(exc, url="h", model="m", kind="text")
    assert error.code == "unauthorized"
    assert "--api-key" in error.message


def test_image_and_text_rejections_keep_the_reason() -> None:
    exc = InferenceServerException("in ensemble 'e', IMAGE[0]: empty input: no image bytes were sent", "400")
    image = translate(exc, url="h", model="e", kind="image")
    assert (image.code, image.status_code) == ("image_rejected", 422)
    assert image.message == "The image was rejected: IMAGE[0]: empty input: no image bytes were sent."
    exc = InferenceServerException("text too long for model", "400")
    text = translate(exc, url="h", model="f", kind="text")
    assert text.message == "The question was rejected: text too long for model."


def test_other_exceptions_are_not_hidden() -> None:
    error = translate(KeyError("FAQ_ID"), url="h", model="faq_match", kind="text")
    assert error.code == "server_error"
    assert "FAQ_ID" in error.message


def test_summarize_stats_sums_versions_and_averages() -> None:
    entries = [
        {
            "name": "faq_match",
            "version": "1",
            "last_inference": 10,
            "inference_stats": {"success": {"count": 2, "ns": 8_000_000}, "fail": {"count": 1, "ns": 5}},
        },
        {
            "name": "faq_match",
            "version": "2",
            "last_inference": 30,
            "inference_stats": {"success": {"count": 2, "ns": 4_000_000}, "fail": {"count": 0, "ns": 0}},
        },
        {"name": "idle", "version": "1", "last_inference": 0, "inference_stats": {}},
    ]
    stats = summarize_stats(entries)
    assert stats["faq_match"] == {"success": 4, "fail": 1, "last_inference_ms": 30, "avg_ms": 3.0}
    assert stats["idle"]["avg_ms"] is None


def test_client_results_are_adapted_whatever_their_shape() -> None:
    class Match:
        faq_id, score, question, answer = 7, 0.25, b"q", "a"

    matches = to_faq_matches([Match(), {"faq_id": 8, "score": 0.5, "question": "x", "answer": "y"}])
    assert [m.faq_id for m in matches] == [7, 8]
    assert matches[0].question == "q"
    scores = to_class_scores([{"class_id": 967, "label": b"espresso", "score": 0.8}])
    assert scores[0].label == "espresso"


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBAPP_TRITON_URL", "https://scoring.example:8443")
    monkeypatch.setenv("WEBAPP_API_KEY", "k1")
    monkeypatch.setenv("WEBAPP_MAX_UPLOAD_BYTES", "2048")
    settings = WebAppSettings()
    endpoint = settings.endpoint()
    assert endpoint.address == "scoring.example:8443"
    assert endpoint.use_ssl
    assert endpoint.headers() == {"api-key": "k1"}
    assert settings.max_upload_bytes == 2048
    assert "k1" not in repr(settings)


class FakeTritonClient:
    """Answers like tritonclient.http's InferenceServerClient does, from canned JSON."""

    def __init__(self, restricted_index: bool = False) -> None:
        self.restricted_index = restricted_index
        self.headers_seen: list[dict[str, str] | None] = []

    def is_server_live(self, headers: Any = None) -> bool:
        self.headers_seen.append(headers)
        return True

    def is_server_ready(self, headers: Any = None) -> bool:
        return False

    def get_model_repository_index(self, headers: Any = None) -> list[dict[str, str]]:
        if self.restricted_index:
            raise InferenceServerException("This API is restricted, expecting header 'api-key'", "403")
        return [
            {"name": "faq_match", "version": "1", "state": "READY"},
            {"name": "faq_tfidf", "version": "1", "state": "READY"},
            {"name": "resnet152_tensorflow", "version": "1", "state": "UNAVAILABLE", "reason": "load failed"},
        ]

    def get_inference_statistics(self, headers: Any = None) -> dict[str, Any]:
        return {
            "model_stats": [
                {
                    "name": "faq_match",
                    "version": "1",
                    "last_inference": 5,
                    "inference_stats": {"success": {"count": 4, "ns": 20_000_000}, "fail": {"count": 0}},
                }
            ]
        }

    def is_model_ready(self, name: str, headers: Any = None) -> bool:
        return name == "faq_match"

    def close(self) -> None:
        pass


def test_status_from_health_index_and_statistics(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = TritonBackend(WebAppSettings(triton_url="h:8000", api_key="k"))
    fake = FakeTritonClient()
    monkeypatch.setattr(backend, "_client", lambda: fake)
    status = backend.status()
    assert status["server"] == {"url": "h:8000", "reachable": True, "live": True, "ready": False}
    models = {m["name"]: m for m in status["models"]}
    assert models["faq_match"]["ready"] and models["faq_match"]["stats"]["avg_ms"] == 5.0
    assert models["resnet152_tensorflow"] == {
        "name": "resnet152_tensorflow",
        "role": "image",
        "ready": False,
        "state": "UNAVAILABLE",
        "reason": "load failed",
        "stats": None,
    }
    assert models["efficientnet_lite0"]["state"] == "NOT LOADED"
    assert [c["name"] for c in status["components"]] == ["faq_tfidf"]
    assert fake.headers_seen == [{"api-key": "k"}]


def test_status_survives_a_restricted_repository_api(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = TritonBackend(WebAppSettings(triton_url="h:8000"))
    monkeypatch.setattr(backend, "_client", lambda: FakeTritonClient(restricted_index=True))
    status = backend.status()
    assert status["models"][0]["ready"] is True
    assert status["index_error"] and "API key" in status["index_error"]


def test_image_client_errors_become_plain_words(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clients' error types, not their wording, choose the sentence."""
    import imaging.client as image_client
    from serving.client import NotReady, RejectedInput, Unreachable

    backend = TritonBackend(WebAppSettings(triton_url="h:8000"))
    cases = {
        RejectedInput("IMAGE[0]: not a recognised image (accepted formats: JPEG, PNG)", "400"): (
            "image_rejected",
            "The image was rejected: IMAGE[0]: not a recognised image (accepted formats: JPEG, PNG).",
        ),
        NotReady("Request for unknown model: 'efficientnet_lite0' is not found", "400"): (
            "model_not_ready",
            None,
        ),
        Unreachable("[Errno 111] Connection refused"): ("server_down", None),
    }
    for raised, (code, message) in cases.items():

        def fail(*_: object, exc: BaseException = raised, **__: object) -> None:
            raise exc

        monkeypatch.setattr(image_client, "classify", fail)
        with pytest.raises(UserError) as info:
            backend.classify("efficientnet_lite0", b"x")
        assert info.value.code == code
        if message:
            assert info.value.message == message
