"""Triton Python model ``faq_preprocess``: raw question bytes -> cleaned text for the classifier.

Cleaning is :func:`faq.data.clean_text`, the very function the model was trained with, so the
served model sees text exactly as in training. Input checks answer *per request*: in a dynamic
batch, a request with bad text gets its own INVALID_ARG error and the others are answered.

* bytes must be valid UTF-8 (decoded strictly: no silent replacement characters);
* at most ``MAX_TEXT_BYTES`` bytes (a config parameter set from ``faq.specs``), checked before
  decoding so that 1 MB of text costs nothing;
* text that is empty after cleaning (blank, or only markup) is an error: there is no question
  to match, and any ranking would be noise.
"""

from __future__ import annotations

import json

import numpy as np
import triton_python_backend_utils as pb_utils

from faq.text import clean_text


class InputError(ValueError):
    """A request whose text cannot be matched; the message goes back to the client."""


def clean_request(texts: np.ndarray, max_bytes: int) -> np.ndarray:
    """Validate and clean one request's ``[n, 1]`` array of bytes; raise :class:`InputError`."""
    cleaned = []
    for row, raw in enumerate(texts.ravel().tolist()):  # dims [1]: element i is row i
        if isinstance(raw, str):  # defensive: the backend hands TYPE_STRING over as bytes
            raw = raw.encode("utf-8")
        if len(raw) > max_bytes:
            raise InputError(f"TEXT[{row}] is {len(raw)} bytes long; the limit is {max_bytes} bytes")
        try:
            text = raw.decode("utf-8", errors="strict")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"TEXT[{row}] is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
            ) from None
        clean = clean_text(text)
        if not clean:
            raise InputError(f"TEXT[{row}] is empty after cleaning; send a question with some words")
        cleaned.append(clean.encode("utf-8"))
    return np.array(cleaned, dtype=object).reshape(texts.shape)


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.max_bytes = int(params["MAX_TEXT_BYTES"])

    def execute(self, requests: list) -> list:
        responses = []
        for request in requests:
            texts = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy()
            try:
                cleaned = clean_request(texts, self.max_bytes)
            except InputError as exc:
                error = pb_utils.TritonError(str(exc), pb_utils.TritonError.INVALID_ARG)
                responses.append(pb_utils.InferenceResponse(error=error))
                continue
            responses.append(
                pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("CLEAN_TEXT", cleaned)])
            )
        return responses
