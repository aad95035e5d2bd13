"""The load tests' request bodies, built without importing locust (its gevent patching)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perf import payloads


def test_triton_binary_body_carries_raw_image_bytes() -> None:
    payload = b"\xff\xd8\xff\xe0" + b"x" * 1000
    body, json_size = payloads.triton_binary_body("IMAGE", payload, batched=True)
    header = json.loads(body[:json_size])
    (tensor,) = header["inputs"]
    assert tensor["name"] == "IMAGE" and tensor["shape"] == [1, 1] and tensor["datatype"] == "BYTES"
    assert tensor["parameters"]["binary_data_size"] == len(payload) + 4
    assert body[json_size + 4 :] == payload


def _faq_workload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, questions: list[str]) -> None:
    workload = tmp_path / "w.json"
    workload.write_text(json.dumps({"questions": questions, "image_files": []}))
    monkeypatch.setenv(payloads.WORKLOAD_ENV, str(workload))


def test_triton_faq_bodies_are_what_tritonclient_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _faq_workload(tmp_path, monkeypatch, ["how do i clone an object?", "naïve question"])
    bodies = payloads.triton_bodies("faq")
    assert len(bodies) == 2
    body, headers = bodies[1]
    json_size = int(headers["Inference-Header-Content-Length"])
    header = json.loads(body[:json_size])
    assert header["parameters"] == {"binary_data_output": True}
    (tensor,) = header["inputs"]
    assert tensor["name"] == "TEXT" and tensor["shape"] == [1, 1]
    assert body[json_size + 4 :] == "naïve question".encode()
    assert headers["Accept-Encoding"] == "identity"


def test_azml_bodies_from_workload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = tmp_path / "a.jpg"
    image.write_bytes(b"\xff\xd8\xff")
    workload = tmp_path / "w.json"
    workload.write_text(json.dumps({"questions": ["q1", "q2"], "image_files": [str(image)]}))
    monkeypatch.setenv(payloads.WORKLOAD_ENV, str(workload))
    faq = payloads.azml_bodies("faq")
    assert [json.loads(b) for b, _ in faq] == [{"question": "q1"}, {"question": "q2"}]
    (img, headers) = payloads.azml_bodies("image")[0]
    assert json.loads(img) == {"image": "/9j/"}
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept-Encoding"] == "identity"
