"""The web app's JSON API on the real server, over gRPC as well as HTTP (no browser)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from imaging.samples import sample_bytes
from serving.triton import TritonServer


@pytest.fixture(scope="module")
def grpc_webapp(triton_server: TritonServer, image_models: tuple[str, ...], webapp_class) -> Iterator:
    """The same app talking gRPC to Triton's gRPC port."""
    app = webapp_class(
        triton_server.grpc_url, "webapp-grpc", "--protocol", "grpc", image_models=image_models
    ).start()
    yield app
    app.stop()


@pytest.mark.parametrize("which", ["webapp", "grpc_webapp"])
def test_api_answers_over_both_protocols(request: pytest.FixtureRequest, which: str, image_models) -> None:
    app = request.getfixturevalue(which)
    with httpx.Client(base_url=app.url, timeout=120) as client:
        status = client.get("/api/status")
        assert status.status_code == 200, status.text
        body = status.json()
        assert body["server"]["live"] and body["server"]["ready"]
        ready = {m["name"]: m["ready"] for m in body["models"]}
        assert ready == dict.fromkeys(("faq_match", *image_models), True)

        faq = client.post("/api/faq", json={"text": "js remove item from array"})
        assert faq.status_code == 200, faq.text
        assert len(faq.json()["matches"]) == 5

        coffee = {"image": ("coffee.png", sample_bytes("coffee"), "image/png")}
        image = client.post("/api/classify", files=coffee)
        assert image.status_code == 200, image.text
        results = {r["model"]: r for r in image.json()["results"]}
        assert set(results) == set(image_models)
        assert results["efficientnet_lite0"]["top"][0]["label"] == "espresso"


def test_oversized_upload_never_reaches_triton(webapp, triton_server: TritonServer) -> None:
    """Triton's own statistics prove the refused upload was never sent to it."""
    import tritonclient.http as httpclient

    triton = httpclient.InferenceServerClient(triton_server.http_url)

    def requests_seen() -> int:
        stats = triton.get_inference_statistics("efficientnet_lite0")["model_stats"]
        counts = [s["inference_stats"][kind]["count"] for s in stats for kind in ("success", "fail")]
        return sum(counts)

    before = requests_seen()
    with httpx.Client(base_url=webapp.url, timeout=60) as client:
        limit = client.get("/api/config").json()["max_upload_bytes"]
        too_big = {"image": ("big.png", b"\0" * (limit + 1), "image/png")}
        response = client.post("/api/classify", files=too_big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "upload_too_large"
    assert requests_seen() == before
    triton.close()
