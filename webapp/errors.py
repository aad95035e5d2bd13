"""Turn what goes wrong between the page and Triton into plain words for the person using it.

tritonclient reports a stopped server as a socket error, an unknown model as "[400] Request
for unknown model", and a bad image as the Python backend's exception wrapped in the
ensemble's and the instance's names. The page shows one sentence that says what happened and
what to do, with Triton's own reason where it helps (an image's), and keeps the raw text as
``detail`` for whoever debugs it.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from typing import Any

from tritonclient.utils import InferenceServerException

try:  # the gRPC client reports transport errors through status codes
    import grpc
except ImportError:  # pragma: no cover - grpcio ships with tritonclient[all]
    grpc = None  # type: ignore[assignment]


@dataclass
class UserError(Exception):
    """An error the page shows as it is: ``message`` is for people, ``code`` for the page's logic."""

    code: str
    message: str
    status_code: int = 400
    detail: str | None = None

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail:
            body["detail"] = self.detail
        return body


SERVER_DOWN = "server_down"
MODEL_NOT_READY = "model_not_ready"
IMAGE_REJECTED = "image_rejected"
TEXT_TOO_LONG = "text_too_long"
UPLOAD_TOO_LARGE = "upload_too_large"
UNAUTHORIZED = "unauthorized"
BAD_REQUEST = "bad_request"
SERVER_ERROR = "server_error"


def server_down(url: str, detail: str | None = None) -> UserError:
    return UserError(
        SERVER_DOWN,
        f"The scoring server is not reachable at {url}. Start it with `make serve`, "
        "or check the Triton URL the web app was given.",
        503,
        detail,
    )


def text_too_long(length: int | None, limit: int) -> UserError:
    got = f" ({length} characters)" if length is not None else ""
    return UserError(
        TEXT_TOO_LONG,
        f"Your question is too long{got}: the limit is {limit} characters. Shorten it and try again.",
        413,
    )


def upload_too_large(limit: int, size: int | None = None) -> UserError:
    got = f" ({human_bytes(size)})" if size is not None else ""
    return UserError(
        UPLOAD_TOO_LARGE,
        f"The file is too large{got}: images up to {human_bytes(limit)} are accepted.",
        413,
    )


def human_bytes(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} bytes"


# Transport failures: the server is not there (refused, reset, timed out, name unknown).
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, socket.gaierror, OSError)
_UNAVAILABLE_WORDS = ("failed to connect", "connection refused", "unavailable", "connect failed", "deadline")
# How Triton says a model is missing or not loaded (HTTP and gRPC word it alike).
_NOT_READY_WORDS = ("unknown model", "not at ready state", "is not ready", "no available versions")
# Wrappers Triton puts around a Python-backend exception; the reason is what follows the last one.
_WRAPPER_RE = re.compile(
    r"(?:in ensemble '[^']*',\s*)|(?:Failed to process the request\(s\) for model instance '[^']*',\s*)"
    r"|(?:Failed to process the request\(s\) for model '[^']*'[^,]*,\s*)|(?:message:\s*)",
    re.IGNORECASE,
)
_STATUS_PREFIX_RE = re.compile(r"^\s*\[(?:StatusCode\.)?[\w.]+\]\s*")
_EXC_NAME_RE = re.compile(r"^(?:[\w.]+(?:Error|Exception)):\s*")
# What the image preprocessing step puts before the reason ("invalid image input: image 0: ...").
_IMAGE_PREFIX_RE = re.compile(r"^(?:invalid image input:\s*)?(?:image \d+:\s*)?", re.IGNORECASE)


def triton_reason(exc: BaseException) -> str:
    """Triton's own reason, without the status prefix and the ensemble/instance wrappers."""
    text = exc.message() if isinstance(exc, InferenceServerException) else str(exc)
    text = _STATUS_PREFIX_RE.sub("", text or "").strip()
    parts = [p for p in _WRAPPER_RE.split(text) if p and p.strip()]
    reason = parts[-1].strip() if parts else text
    reason = _EXC_NAME_RE.sub("", reason).strip()
    reason = _IMAGE_PREFIX_RE.sub("", reason).strip().rstrip(".")
    return reason or "no reason given"


def _status(exc: InferenceServerException) -> str:
    status = exc.status()
    return str(status or "")


def is_server_down(exc: BaseException) -> bool:
    """True when no server answered (as opposed to a server that answered with an error)."""
    if isinstance(exc, InferenceServerException):
        status = _status(exc)
        text = (exc.message() or "").lower()
        if "UNAVAILABLE" in status or "DEADLINE_EXCEEDED" in status:
            return True
        return not status and any(word in text for word in _UNAVAILABLE_WORDS)
    if grpc is not None and isinstance(exc, grpc.RpcError):  # pragma: no cover - defensive
        return True
    return isinstance(exc, _TRANSPORT_ERRORS)


def translate(exc: BaseException, *, url: str, model: str, kind: str) -> UserError:
    """Map an exception from a Triton call on ``model`` to a :class:`UserError`.

    ``kind`` says what was sent (``"image"`` or ``"text"``): a 400 from the model itself
    means that input was rejected, and the reason is worth showing.
    """
    if isinstance(exc, UserError):
        return exc
    raw = str(exc) or type(exc).__name__
    if is_server_down(exc):
        return server_down(url, raw)
    if not isinstance(exc, InferenceServerException):
        return UserError(
            SERVER_ERROR, f"Something went wrong while asking {model}: {raw}", 502, f"{type(exc).__name__}"
        )
    status = _status(exc)
    text = (exc.message() or "").lower()
    if status in ("401", "403", "StatusCode.UNAUTHENTICATED", "StatusCode.PERMISSION_DENIED") or (
        "restricted" in text and "header" in text
    ):
        return UserError(
            UNAUTHORIZED,
            "The scoring server refused the request: it needs an API key. "
            "Start the web app with --api-key (or WEBAPP_API_KEY).",
            502,
            raw,
        )
    if any(words in text for words in _NOT_READY_WORDS):
        return UserError(
            MODEL_NOT_READY,
            f"The model {model} is not ready on the scoring server (not loaded, or still loading). "
            "Check `make status`.",
            503,
            raw,
        )
    reason = triton_reason(exc)
    if kind == "image":
        return UserError(IMAGE_REJECTED, f"The image was rejected: {reason}.", 422, raw)
    if kind == "text":
        return UserError(BAD_REQUEST, f"The question was rejected: {reason}.", 422, raw)
    return UserError(SERVER_ERROR, f"{model} failed: {reason}.", 502, raw)
