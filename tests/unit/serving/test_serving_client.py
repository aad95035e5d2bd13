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
        (InferenceServerException("This API is restricted, expecting header 'api-key'", "401"), Unauthorized),
        (InferenceServerException("restricted", "StatusCode.UNAUTHENTICATED"), Unauthorized),
        (InferenceServerException("Request for unknown model: 'x' is not found", "400"), NotReady),
        (
            InferenceServerException("Request for unknown model: 'x' is not found", "StatusCode.NOT_FOUND"),
            NotReady,
        ),
        (InferenceServerException("Stub process 'faq_preprocess_0_0' is not healthy.", "500"), NotReady),
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
