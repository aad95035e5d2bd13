"""The deep check's probe inputs, without a server."""

from __future__ import annotations

from serving import health


def test_probes_are_a_question_and_a_real_jpeg() -> None:
    assert health.probe_payload("TEXT") == health.QUESTION
    jpeg = health.probe_payload("IMAGE")
    assert jpeg is not None and jpeg[:2] == b"\xff\xd8" and jpeg.endswith(b"\xff\xd9")
    assert health.probe_payload("SOMETHING_ELSE") is None
