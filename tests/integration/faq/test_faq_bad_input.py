"""Bad input to ``faq_match``: a clear error each time, and the server stays ready."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from faq.client import MODEL_NAME, ask
from faq.specs import MAX_BATCH_SIZE, MAX_TEXT_BYTES
from serving.client import Endpoint

GOOD_QUESTION = "how do I remove a specific item from an array?"


def _text_tensor(endpoint: Endpoint, texts: list[bytes]):
    data = np.array([[t] for t in texts], dtype=object)
    tensor = endpoint.module().InferInput("TEXT", list(data.shape), "BYTES")
    tensor.set_data_from_numpy(data)
    return tensor


def _fp32_tensor(endpoint: Endpoint):
    tensor = endpoint.module().InferInput("TEXT", [1, 1], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 1), np.float32))
    return tensor


def _flat_shape_tensor(endpoint: Endpoint):
    tensor = endpoint.module().InferInput("TEXT", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([GOOD_QUESTION.encode()], dtype=object))
    return tensor


def _wrong_name_tensor(endpoint: Endpoint):
    tensor = endpoint.module().InferInput("QUESTION", [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([[GOOD_QUESTION.encode()]], dtype=object))
    return tensor


ONE_MB = b"how do i remove an item from an array " * (2**20 // 38 + 1)

CASES: dict[str, tuple[Callable[[Endpoint], list], str]] = {
    "empty text": (lambda e: [_text_tensor(e, [b""])], "TEXT[0] is empty after cleaning"),
    "blank text": (lambda e: [_text_tensor(e, [b" \t\n "])], "TEXT[0] is empty after cleaning"),
    "markup only": (lambda e: [_text_tensor(e, [b"<p><br/></p>"])], "TEXT[0] is empty after cleaning"),
    "1 MB of text": (
        lambda e: [_text_tensor(e, [ONE_MB])],
        f"TEXT[0] is {len(ONE_MB)} bytes long; the limit is {MAX_TEXT_BYTES} bytes",
    ),
    "not UTF-8": (
        lambda e: [_text_tensor(e, [b"caf\xe9 \xff\xfe"])],
        "TEXT[0] is not valid UTF-8 (byte 0xe9 at offset 3)",
    ),
    "one bad row in a batch": (
        lambda e: [_text_tensor(e, [GOOD_QUESTION.encode(), b"\xc3\x28"])],
        "TEXT[1] is not valid UTF-8",
    ),
    "wrong dtype (FP32)": (lambda e: [_fp32_tensor(e)], "expects 'BYTES'"),
    "missing input": (lambda e: [], "missing required input(s) ['TEXT']"),
    "wrong input name": (lambda e: [_wrong_name_tensor(e)], "QUESTION"),
    "no batch dimension": (lambda e: [_flat_shape_tensor(e)], "shape"),
    "batch above the maximum": (
        lambda e: [_text_tensor(e, [GOOD_QUESTION.encode()] * (MAX_BATCH_SIZE + 1))],
        f"batch-size must be <= {MAX_BATCH_SIZE}",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_a_clear_error_and_server_stays_ready(endpoint: Endpoint, case: str) -> None:
    make_inputs, expected = CASES[case]
    client = endpoint.client()
    try:
        with pytest.raises(InferenceServerException) as info:
            client.infer(MODEL_NAME, make_inputs(endpoint))
        message = info.value.message()
        assert expected in message, message
        status = str(info.value.status())
        assert status in ("400", "StatusCode.INVALID_ARGUMENT"), status  # client error, not 500
        assert client.is_server_ready()
        assert client.is_model_ready(MODEL_NAME)
        (matches,) = ask(endpoint, [GOOD_QUESTION], client=client)
        assert "remov" in matches[0].question.lower() and "array" in matches[0].question.lower()
    finally:
        client.close()
