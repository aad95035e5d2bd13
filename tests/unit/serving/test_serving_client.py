"""The clients' one error taxonomy: what tritonclient and the transport raise, sorted by kind."""

from __future__ import annotations

import pytest
from tritonclient.utils import InferenceServerException

from serving.client import (
    NotReady,
    RejectedInput,
    ServerError,
    Unauthorized,
    Unreachable,
    error_from,
)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ConnectionRefusedError(111, "Connection refused"), Unreachable),
        (TimeoutError("timed out"), Unreachable),
        (
            InferenceServerException("failed to connect to all addresses", "StatusCode.UNAVAILABLE"),
            Unreachable,
        ),
        (InferenceServerException("Deadline Exceeded", "StatusCode.DEADLINE_EXCEEDED"), Unreachable),
        # the front door's own page while Triton restarts (what tritonclient makes of its HTML)
        (
            InferenceServerException(
                "an exception occurred in the client while decoding the response", "502"
            ),
            Unreachable,
        ),
        (InferenceServerException("<html><body><h1>504 Gateway Time-out</h1>", "504"), Unreachable),
        (InferenceServerException("This API is restricted, expecting header 'api-key'", "401"), Unauthorized),
        (InferenceServerException("restricted", "StatusCode.UNAUTHENTICATED"), Unauthorized),
        (InferenceServerException("Request for unknown model: 'x' is not found", "400"), NotReady),
        (
            InferenceServerException("Request for unknown model: 'x' has no available versions", "400"),
            NotReady,
        ),
        (
            InferenceServerException("Request for unknown model: 'x' is not found", "StatusCode.NOT_FOUND"),
            NotReady,
        ),
        (InferenceServerException("Stub process 'faq_preprocess_0_0' is not healthy.", "500"), NotReady),
        (InferenceServerException("in ensemble 'x', Exceeds maximum queue size", "503"), NotReady),
        (
            InferenceServerException("in ensemble 'faq_match', TEXT[0] is empty after cleaning", "400"),
            RejectedInput,
        ),
        (InferenceServerException("TEXT[0] is empty", "StatusCode.INVALID_ARGUMENT"), RejectedInput),
        (InferenceServerException("faq_postprocess failed (RuntimeError: ...)", "500"), ServerError),
        (KeyError("FAQ_ID"), ServerError),
    ],
)
def test_every_failure_has_one_kind(exc: BaseException, kind: type) -> None:
    assert type(error_from(exc, "faq_match")) is kind


def test_the_ensemble_prefix_is_dropped_and_the_status_kept() -> None:
    error = error_from(
        InferenceServerException("in ensemble 'faq_match', TEXT[0] is empty", "400"), "faq_match"
    )
    assert (error.message, error.status, error.model) == ("TEXT[0] is empty", "400", "faq_match")


@pytest.fixture()
def flaky(monkeypatch: pytest.MonkeyPatch) -> list[BaseException | None]:
    """``serving.client._infer_once`` raising the queued errors, then answering; no real sleeping."""
    import serving.client as client

    queue: list[BaseException | None] = []

    def once(*args: object) -> dict:
        error = queue.pop(0) if queue else None
        if error is not None:
            raise error
        return {"Y": "answer"}

    monkeypatch.setattr(client, "_infer_once", once)
    monkeypatch.setattr(client.time, "sleep", lambda s: None)
    return queue


def test_a_restart_is_ridden_through(flaky: list) -> None:
    from serving.client import Endpoint, infer

    flaky += [Unreachable("refused"), NotReady("Stub process 'x' is not healthy", "500"), None]
    assert infer(Endpoint(), "m", {}, ["Y"], retry_s=30) == {"Y": "answer"}
    assert flaky == []


def test_a_client_mistake_is_never_retried(flaky: list) -> None:
    from serving.client import Endpoint, infer

    flaky += [RejectedInput("TEXT[0] is empty", "400"), None]
    with pytest.raises(RejectedInput):
        infer(Endpoint(), "m", {}, ["Y"], retry_s=30)
    assert flaky == [None]


def test_retries_stop_within_the_bound_and_say_so(flaky: list, monkeypatch: pytest.MonkeyPatch) -> None:
    import serving.client as client

    clock = iter(range(0, 1000, 1))
    monkeypatch.setattr(client.time, "monotonic", lambda: float(next(clock)))
    flaky += [Unreachable("refused")] * 50
    with pytest.raises(Unreachable, match=r"refused \(gave up after \d+ attempts in \d+ s\)"):
        client.infer(client.Endpoint(), "m", {}, ["Y"], retry_s=5)
    assert len(flaky) > 40  # bounded: a handful of attempts, not all fifty
