"""The web app's HTTP API against a fake Triton: limits, plain-word errors, response shapes."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from tritonclient.utils import InferenceServerException

from webapp.app import STATIC_DIR, create_app
from webapp.backend import ClassScore, FaqMatch, TritonBackend
from webapp.errors import translate
from webapp.settings import WebAppSettings

PNG_HEADER = b"\x89PNG\r\n\x1a\n"


def _raise(exc: BaseException):
    def hook(*_: object) -> object:
        raise exc

    return hook


# -- the page ---------------------------------------------------------------------------


def test_page_and_its_assets_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        response = client.get(asset)
        assert response.status_code == 200, asset
    assert 'src="/static/app.js"' in page.text
    assert 'href="/static/style.css"' in page.text


def test_page_loads_nothing_from_other_hosts() -> None:
    """Works offline: no CDN, no web font, no absolute URL in what the browser loads."""
    for path in Path(STATIC_DIR).iterdir():
        text = path.read_text()
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.IGNORECASE), path.name
        assert "@import" not in text, path.name


def test_config_tells_the_page_its_models_and_limits(client: TestClient) -> None:
    body = client.get("/api/config").json()
    assert [m["name"] for m in body["image_models"]] == [
        "efficientnet_lite0",
        "resnet152_pytorch",
        "resnet152_tensorflow",
    ]
    notes = {m["name"]: m["note"] for m in body["image_models"]}
    assert "random weights" in notes["resnet152_pytorch"].lower()
    assert "meaningless" in notes["resnet152_tensorflow"].lower()
    assert body["max_upload_bytes"] == 4096
    assert body["max_question_chars"] == 100
    assert body["faq_model"] == "faq_match"


def test_api_key_stays_on_the_server(fake_backend) -> None:
    settings = WebAppSettings(triton_url="fake:8000", api_key="s3cret-key")
    client = TestClient(create_app(settings, fake_backend))
    for url in ("/", "/api/config", "/api/status", "/static/app.js"):
        assert "s3cret-key" not in client.get(url).text


# -- FAQ --------------------------------------------------------------------------------


def test_faq_returns_ranked_matches_and_latency(client: TestClient, fake_backend) -> None:
    response = client.post("/api/faq", json={"text": "  remove an item from an array  "})
    assert response.status_code == 200
    body = response.json()
    assert fake_backend.asked == ["remove an item from an array"]
    assert body["model"] == "faq_match"
    assert [m["faq_id"] for m in body["matches"]] == [100, 101, 102, 103, 104]
    assert set(body["matches"][0]) == {"faq_id", "score", "question", "answer", "matched"}
    assert body["matched"] is True and body["latency_ms"] >= 0


def test_no_good_match_gives_three_suggestions(client: TestClient, fake_backend) -> None:
    fake_backend.ask_hook = lambda text: [
        FaqMatch(faq_id=i, score=0.05, question=f"q{i}", answer="a", matched=False) for i in range(5)
    ]
    body = client.post("/api/faq", json={"text": "how do I boil an egg"}).json()
    assert body["matched"] is False and [m["faq_id"] for m in body["matches"]] == [0, 1, 2]


def test_faq_empty_question_does_not_reach_triton(client: TestClient, fake_backend) -> None:
    body = client.post("/api/faq", json={"text": "   "}).json()
    assert body["matches"] == []
    assert fake_backend.asked == []


def test_faq_text_too_long_is_refused_in_plain_words(client: TestClient, fake_backend) -> None:
    response = client.post("/api/faq", json={"text": "x" * 101})
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "text_too_long"
    assert error["message"] == (
        "Your question is too long (101 characters): the limit is 100 characters. Shorten it and try again."
    )
    assert fake_backend.asked == []
    # exactly at the limit is fine
    assert client.post("/api/faq", json={"text": "x" * 100}).status_code == 200


def test_faq_oversized_body_is_cut_off_before_parsing(client: TestClient, fake_backend) -> None:
    # a short question padded with 100 kB of other JSON: only the body limit can stop it
    big = b'{"text": "hi", "padding": "' + b"y" * 100_000 + b'"}'
    declared = client.post("/api/faq", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "text_too_long"

    def chunks():  # no Content-Length: counted while it streams
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    streamed = client.post("/api/faq", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "text_too_long"
    assert fake_backend.asked == []


def test_faq_malformed_request_gets_a_plain_message(client: TestClient, fake_backend) -> None:
    for content in (b"not json", b'{"question": "hi"}', b'{"text": 5}'):
        response = client.post("/api/faq", content=content, headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert response.json()["error"]["message"] == 'Send the question as JSON: {"text": "your question"}.'
    assert fake_backend.asked == []


def test_faq_model_not_ready_is_503(client: TestClient, fake_backend) -> None:
    exc = InferenceServerException("Request for unknown model: 'faq_match' is not found", status="400")
    fake_backend.ask_hook = _raise(translate(exc, url="fake:8000", model="faq_match", kind="text"))
    response = client.post("/api/faq", json={"text": "hello there"})
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "model_not_ready"
    assert error["message"].startswith("The model faq_match is not ready on the scoring server")


# -- images -----------------------------------------------------------------------------


def test_classify_runs_every_image_ensemble(client: TestClient, fake_backend) -> None:
    image = PNG_HEADER + b"\0" * 100
    response = client.post("/api/classify", files={"image": ("cup.png", image, "image/png")})
    assert response.status_code == 200
    body = response.json()
    assert sorted(fake_backend.classified) == sorted(
        (m, len(image)) for m in ("efficientnet_lite0", "resnet152_pytorch", "resnet152_tensorflow")
    )
    assert [r["model"] for r in body["results"]] == [
        "efficientnet_lite0",
        "resnet152_pytorch",
        "resnet152_tensorflow",
    ]
    for result in body["results"]:
        assert result["ok"] is True and result["error"] is None
        assert len(result["top"]) == 5
        assert result["top"][0] == {"class_id": 967, "label": "label0", "score": 0.5}
        assert result["latency_ms"] >= 0
    assert body["file"] == {"name": "cup.png", "bytes": len(image), "content_type": "image/png"}
    assert "error" not in body


def test_upload_over_the_limit_never_reaches_triton(client: TestClient, fake_backend) -> None:
    too_big = b"\0" * 4097
    response = client.post("/api/classify", files={"image": ("big.png", too_big, "image/png")})
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "upload_too_large"
    assert error["message"] == "The file is too large: images up to 4 KB are accepted."
    assert fake_backend.classified == []
    # exactly at the limit passes
    ok = client.post("/api/classify", files={"image": ("ok.png", b"\0" * 4096, "image/png")})
    assert ok.status_code == 200


def test_huge_upload_is_refused_from_its_declared_length(client: TestClient, fake_backend) -> None:
    body = b"--b\r\nContent-Disposition: form-data; name=image; filename=x\r\n\r\n" + b"\0" * 200_000
    response = client.post(
        "/api/classify", content=body, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "upload_too_large"

    def chunks():
        for i in range(0, len(body), 8192):
            yield body[i : i + 8192]

    streamed = client.post(
        "/api/classify", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "upload_too_large"
    assert fake_backend.classified == []


def test_missing_or_empty_file_is_a_plain_400(client: TestClient, fake_backend) -> None:
    missing = client.post("/api/classify", data={"other": "x"})
    assert missing.status_code == 400
    assert "Choose an image file" in missing.json()["error"]["message"]
    empty = client.post("/api/classify", files={"image": ("e.png", b"", "image/png")})
    assert empty.status_code == 400
    assert empty.json()["error"]["message"] == "The file is empty: choose an image file."
    assert fake_backend.classified == []


def test_garbage_rejected_by_every_model_gives_one_clear_error(client: TestClient, fake_backend) -> None:
    def reject(model: str, _: bytes) -> list[ClassScore]:
        exc = InferenceServerException(
            f"in ensemble '{model}', IMAGE[0]: not a recognised image (accepted formats: JPEG, PNG)",
            status="400",
        )
        raise translate(exc, url="fake:8000", model=model, kind="image")

    fake_backend.classify_hook = reject
    response = client.post("/api/classify", files={"image": ("junk.bin", b"garbage" * 10, "application/x")})
    assert response.status_code == 422
    body = response.json()
    expected = "The image was rejected: IMAGE[0]: not a recognised image (accepted formats: JPEG, PNG)."
    assert body["error"]["code"] == "image_rejected"
    assert body["error"]["message"] == expected
    assert [r["error"]["message"] for r in body["results"]] == [expected] * 3


def test_one_model_down_leaves_the_others(client: TestClient, fake_backend) -> None:
    def some_fail(model: str, image: bytes) -> list[ClassScore]:
        if model == "resnet152_tensorflow":
            exc = InferenceServerException(
                "Request for unknown model: 'resnet152_tensorflow' is not found", status="400"
            )
            raise translate(exc, url="fake:8000", model=model, kind="image")
        return [ClassScore(1, "goldfish", 0.9)]

    fake_backend.classify_hook = some_fail
    response = client.post("/api/classify", files={"image": ("a.png", b"abc", "image/png")})
    assert response.status_code == 200
    results = {r["model"]: r for r in response.json()["results"]}
    assert results["efficientnet_lite0"]["ok"] and results["resnet152_pytorch"]["ok"]
    failed = results["resnet152_tensorflow"]
    assert not failed["ok"] and failed["error"]["code"] == "model_not_ready"
    assert "not ready" in failed["error"]["message"]


# -- status -----------------------------------------------------------------------------


def test_status_lists_the_page_models_first(client: TestClient) -> None:
    body = client.get("/api/status").json()
    assert body["server"] == {"url": "fake:8000", "reachable": True, "live": True, "ready": True}
    assert [m["name"] for m in body["models"]] == [
        "faq_match",
        "efficientnet_lite0",
        "resnet152_pytorch",
        "resnet152_tensorflow",
    ]
    assert body["models"][0]["stats"]["avg_ms"] == 4.2


# -- a real tritonclient against a port where nothing listens ---------------------------


def _dead_backend_client(free_port: int) -> TestClient:
    settings = WebAppSettings(triton_url=f"localhost:{free_port}", timeout_s=2)
    return TestClient(create_app(settings, TritonBackend(settings)))


def test_server_down_status_says_so(unused_port: int) -> None:
    response = _dead_backend_client(unused_port).get("/api/status")
    assert response.status_code == 503
    body = response.json()
    assert body["server"]["reachable"] is False
    assert body["error"]["code"] == "server_down"
    assert body["error"]["message"].startswith(
        f"The scoring server is not reachable at localhost:{unused_port}."
    )
    assert all(m["ready"] is False and m["state"] == "UNKNOWN" for m in body["models"])
